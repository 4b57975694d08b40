"""Every bad parameter of the read API is a 400 with the stable error shape, an unauthenticated
request is 401/403 whatever its parameters, and no input makes a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from orcapulse_tiktok.platforms import CAPTURE_SOURCE_IDS, LEAD_STATUSES, PLATFORM_IDS

from tests.support.events import claims, json_body
from tests.support.leads import (
    LISTING_PARAMETERS,
    ReadApi,
    capture,
    integration_of,
    person,
    record_dynamodb_calls,
)

BAD_VALUES = {
    "platform": ["", "TikTok", "myspace", "tiktok,instagram", " tiktok", "tiktok\x00"],
    "capture_source": ["", "comment", "TIKTOK_DM", "tiktok_comment,tiktok_dm"],
    "status": ["", "archived", "New", "new "],
    "integration_id": ["", "tt_/../x", "a" * 65, "tt 123", "tt_é"],
    "since": ["", "yesterday", "2026-13-01T00:00:00Z", "2026-11-25T25:00:00Z", "1764057600", "2" * 65],
    "until": ["", "2026-02-30", "2026-11-25T08:00:00+25:00", "now"],
    "limit": ["", "0", "101", "-1", "abc", "1.5", "10.0", " 5", "+5", "1e2", "99999999999999999999", "٣"],
    "assignee": ["", " user-1", "user-1 ", "a" * 65, "user\x00", "line\nbreak"],
    "high_intent": ["", "True", "1", "yes", "false "],
    "label": ["", " vip", "vip ", "b" * 65, "tab\there"],
}
BAD_INTERACTION_VALUES = {"limit": ["", "0", "101", "-1", "abc", "1.5", " 5", "+5"]}


@pytest.fixture
def api(load_function, lambda_context, aws) -> ReadApi:
    return ReadApi(load_function("leads_query"), lambda_context)


def _error(response: dict[str, Any]) -> tuple[int, str]:
    body = json_body(response)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    return response["statusCode"], body["error"]["code"]


def test_every_bad_filter_value_is_400_invalid_parameter_and_reads_nothing(api):
    with record_dynamodb_calls() as calls:
        for name, values in BAD_VALUES.items():
            for value in values:
                response = api.get("/social-leads", {name: value})
                assert _error(response) == (400, "invalid_parameter"), (name, value)
                assert name in json_body(response)["error"]["message"], (name, value)
    assert calls == []


def test_unknown_filters_are_400_rather_than_ignored(api):
    # A misspelt filter must not silently widen a listing.
    for path, query in [
        ("/social-leads", {"plaform": "tiktok"}),
        ("/social-leads", {"status": "new", "page": "2"}),
        ("/integrations", {"status": "active"}),
    ]:
        response = api.get(path, query)
        assert _error(response) == (400, "invalid_parameter"), (path, query)
        assert "Unknown query parameter" in json_body(response)["error"]["message"]


def test_bad_interaction_paging_is_400_invalid_parameter_and_reads_nothing(api, aws):
    lead_id = person(capture("someone"))
    with record_dynamodb_calls() as calls:
        for name, values in BAD_INTERACTION_VALUES.items():
            for value in values:
                response = api.get(f"/social-leads/{lead_id}/interactions", {name: value})
                assert _error(response) == (400, "invalid_parameter"), (name, value)
        response = api.get(f"/social-leads/{lead_id}/interactions", {"status": "new"})
        assert _error(response) == (400, "invalid_parameter")
        assert "Unknown query parameter" in json_body(response)["error"]["message"]
    assert calls == []
    for limit in ("1", "100", "025"):
        assert api.get(f"/social-leads/{lead_id}/interactions", {"limit": limit})["statusCode"] == 200


def test_routes_without_filters_ignore_stray_parameters(api, aws):
    assert api.get("/platforms", {"x": "1"})["statusCode"] == 200
    assert api.get("/social-leads/ld_" + "0" * 26, {"expand": "all"})["statusCode"] == 404
    lead_id = person(capture("someone"))
    assert api.get(f"/social-leads/{lead_id}", {"_": "1712345678"})["statusCode"] == 200


def test_since_after_until_is_invalid_time_range(api):
    response = api.get("/social-leads", {"since": "2026-11-25T08:00:01Z", "until": "2026-11-25T08:00:00Z"})
    assert _error(response) == (400, "invalid_time_range")
    # Equal bounds are a valid (one-second) window.
    assert (
        api.get("/social-leads", {"since": "2026-11-25T08:00:00Z", "until": "2026-11-25T08:00:00Z"})[
            "statusCode"
        ]
        == 200
    )


def test_every_valid_enum_value_is_accepted(api):
    for name, values in (
        ("platform", PLATFORM_IDS),
        ("capture_source", CAPTURE_SOURCE_IDS),
        ("status", LEAD_STATUSES),
    ):
        for value in values:
            assert api.get("/social-leads", {name: value})["statusCode"] == 200, (name, value)
    for limit in ("1", "100", "025"):
        assert api.get("/social-leads", {"limit": limit})["statusCode"] == 200, limit
    for name, values in (
        ("high_intent", ("true", "false")),
        ("assignee", ("user-1", "auth0|5f7c8ec7")),
        ("label", ("vip", "a label")),
    ):
        for value in values:
            assert api.get("/social-leads", {name: value})["statusCode"] == 200, (name, value)
    for stamp in (
        "2026-11-25",
        "2026-11-25T08:00:00",
        "2026-11-25T08:00:00.123456+05:30",
        "2026-11-25T08:00Z",
    ):
        assert api.get("/social-leads", {"since": stamp})["statusCode"] == 200, stamp


@pytest.mark.parametrize(
    "path",
    [
        "/social-leads",
        "/social-leads/ld_" + "0" * 26,
        "/social-leads/ld_" + "0" * 26 + "/interactions",
        "/integrations",
        "/platforms",
    ],
)
def test_every_route_needs_a_user_and_a_workspace(api, path):
    assert _error(api.get(path, authorized=False)) == (401, "unauthorized")
    assert _error(api.get(path, jwt_claims={"iss": "x"})) == (401, "unauthorized")
    assert _error(api.get(path, workspace=None)) == (403, "workspace_required")
    assert _error(api.get(path, jwt_claims=claims(workspace="  "))) == (403, "workspace_required")
    # Authentication is answered before parameter validation.
    assert _error(api.get(path, {"limit": "0", "platform": "x"}, authorized=False)) == (401, "unauthorized")
    assert _error(api.get(path, {"limit": "0"}, workspace=None)) == (403, "workspace_required")


def test_an_unknown_route_is_404_in_the_error_shape(api):
    assert _error(api.get("/social-leads/a/b")) == (404, "route_not_found")
    assert _error(api.get("/social-leads/a/interactions/b")) == (404, "route_not_found")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    query=st.dictionaries(
        st.sampled_from([*LISTING_PARAMETERS, "x"]),
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(
                [
                    *PLATFORM_IDS,
                    *CAPTURE_SOURCE_IDS,
                    *LEAD_STATUSES,
                    "25",
                    "2026-11-25T08:00:00Z",
                    "true",
                    "false",
                    "user-1",
                ]
            ),
            st.from_regex(r"[0-9]{1,4}", fullmatch=True),
        ),
        max_size=5,
    )
)
def test_no_input_makes_a_5xx(api, query):
    response = api.get("/social-leads", query)
    assert response["statusCode"] in (200, 400), (query, response["body"])
    if response["statusCode"] == 400:
        assert _error(response)[1] in {"invalid_parameter", "invalid_cursor", "invalid_time_range"}


def test_integration_filter_values_reach_only_the_workspace(api, aws):
    mine = integration_of("ws-1")
    person(capture(workspace_id="ws-1", integration_id=mine))
    person(capture(workspace_id="ws-2"))
    theirs = integration_of("ws-2")
    _, body = api.leads(integration_id=theirs)
    assert body == {"items": [], "next_cursor": None}
    _, body = api.leads(integration_id=mine)
    assert len(body["items"]) == 1


@pytest.mark.parametrize("value", ["", " vip", "vip ", "\x85vip", "vip\x9f", "vip\n", "v\x00p", "x" * 65])
def test_labels_and_assignees_the_schema_refuses_the_server_refuses(value):
    import re

    from orcapulse_tiktok import schemas

    assert not (re.fullmatch(schemas.LABEL_PATTERN, value) and len(value) <= schemas.MAX_LABEL_LENGTH)
    with pytest.raises(ValueError, match="printable"):
        schemas._label(value)


@pytest.mark.parametrize("value", ["vip", "Hot lead", "ação", "x" * 64, "a\u00a0b"])
def test_printable_labels_are_accepted(value):
    from orcapulse_tiktok import schemas

    assert schemas._label(value) == value
