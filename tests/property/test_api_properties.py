"""The HTTP inputs a browser controls, fuzzed through the real handlers against moto: every query
parameter of GET /social-leads and GET /integrations, lead ids in the path, paging cursors
(random, tampered, or another workspace's), and the OAuth callback's query. No input makes a 5xx,
a 200 only ever shows the caller's own workspace with the filters applied, and a cursor that is
not exactly one this workspace received for this query is 400 invalid_cursor."""

from __future__ import annotations

import string
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from orcapulse_tiktok import clock
from orcapulse_tiktok.oauth_callback import CALLBACK_REASONS
from orcapulse_tiktok.platforms import CAPTURE_SOURCE_IDS, LEAD_STATUSES, PLATFORM_IDS

from tests.support.deployment import FRONTEND_URL
from tests.support.events import claims, http_event, json_body
from tests.support.leads import ReadApi, capture, integration_of, person, set_lifecycle, stored_leads

WS, OTHER = "ws-prop-1", "ws-prop-2"
BASE_MS = 1_790_000_000_000  # 2026-09-21T14:13:20Z
ASSIGNEES = ("user-ana", "user-bo")
LABELS = ("vip", "lisbon")
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
odd_text = st.one_of(
    any_text,
    st.text(st.characters(exclude_categories=[]), max_size=20),  # lone surrogates
    st.sampled_from(["", " ", "%00", "\x00", "a" * 2000, "tiktok,instagram", "../..", "null", "[]", "{}"]),
)


@pytest.fixture
def api(load_function, lambda_context, aws) -> ReadApi:
    return ReadApi(load_function("leads_query"), lambda_context)


@pytest.fixture
def seeded(aws):
    """People in two workspaces, two integrations each, through the capture path: commenters, DM
    senders and both, some high-intent, with every status, two assignees and labels."""
    for ws in (WS, OTHER):
        for n in range(2 * len(LEAD_STATUSES)):
            open_id = "open-id-alpha" if n % 2 else "open-id-beta"
            name = f"{ws}-person-{n}"
            at = BASE_MS + n * 60_000
            kinds = ("comment", "dm", "high_intent_comment")
            items = [
                capture(
                    name, workspace_id=ws, integration_id=integration_of(ws, open_id), kind=kind, at_ms=at + k
                )
                for k, kind in enumerate(kinds[: 1 + n % 3])
            ]
            lead_id = person(*items)
            status = LEAD_STATUSES[n % len(LEAD_STATUSES)]
            set_lifecycle(lead_id, status=status, assignee=ASSIGNEES[n % 2], labels=LABELS[: n % 3] or None)
    return stored_leads()


def _error_code(response: dict[str, Any]) -> str:
    body = json_body(response)
    assert set(body) == {"error"}, body
    return str(body["error"]["code"])


def _matches(lead: dict[str, Any], query: dict[str, str]) -> bool:
    for name in ("platform", "status", "integration_id", "assignee"):
        if name in query and lead[name] != query[name]:
            return False
    if "capture_source" in query and query["capture_source"] not in lead["capture_sources"]:
        return False
    if "high_intent" in query and lead["high_intent"] != (query["high_intent"] == "true"):
        return False
    if "label" in query and query["label"] not in lead["labels"]:
        return False
    active = clock.parse_iso(lead["last_activity_at"])
    if "since" in query and active < clock.parse_iso(query["since"]):
        return False
    return not ("until" in query and active > clock.parse_iso(query["until"]))


filter_values = {
    "platform": st.sampled_from(PLATFORM_IDS) | odd_text,
    "capture_source": st.sampled_from(CAPTURE_SOURCE_IDS) | odd_text,
    "status": st.sampled_from(LEAD_STATUSES) | odd_text,
    "integration_id": st.sampled_from([integration_of(WS), integration_of(OTHER), "tt_unknown"]) | odd_text,
    "since": st.sampled_from(["2026-09-21T14:20:00Z", "2026-09-21T16:20:00+02:00", "1970-01-01T00:00:00Z"])
    | odd_text,
    "until": st.sampled_from(["2026-09-21T14:25:00Z", "9999-12-31T23:59:59Z", "2026-09-21T14:13:20Z"])
    | odd_text,
    "limit": st.integers(-5, 200).map(str) | odd_text,
    "cursor": odd_text,
    "assignee": st.sampled_from([*ASSIGNEES, "nobody"]) | odd_text,
    "high_intent": st.sampled_from(["true", "false"]) | odd_text,
    "label": st.sampled_from([*LABELS, "none"]) | odd_text,
}
queries = st.fixed_dictionaries({}, optional=filter_values) | st.dictionaries(
    st.sampled_from([*filter_values, "x", "PLATFORM", "limit ", ""]) | any_text, odd_text, max_size=4
)


@FUZZ
@given(query=queries)
@example(query={"limit": "100", "since": "2026-09-21T00:00:00Z"})
@example(query={"platform": "\ud800", "cursor": "\udfff"})  # lone surrogates
def test_any_listing_query_is_200_of_own_filtered_leads_or_400(api, seeded, query):
    response = api.get("/social-leads", query, workspace=WS)
    assert response["statusCode"] in (200, 400), (query, response["body"])
    if response["statusCode"] == 400:
        assert _error_code(response) in {"invalid_parameter", "invalid_cursor", "invalid_time_range"}
        return
    body = json_body(response)
    assert len(body["items"]) <= int(query.get("limit", 25))
    for lead in body["items"]:
        assert lead["workspace_id"] == WS
        assert _matches(lead, query), (query, lead)


@FUZZ
@given(
    query=st.fixed_dictionaries({}, optional={"platform": st.sampled_from(PLATFORM_IDS) | odd_text})
    | st.dictionaries(any_text, odd_text, max_size=3)
)
def test_any_integrations_query_is_200_of_own_integrations_or_400(
    load_function, lambda_context, aws, tiktok, query
):
    from tests.support.connect import connect

    api = ReadApi(load_function("leads_query"), lambda_context)
    if not any(i["workspace_id"]["S"] == OTHER for i in aws.items("IntegrationsTable")):
        connect(load_function, lambda_context, tiktok, workspace=WS, open_id="open-id-alpha")
        connect(load_function, lambda_context, tiktok, workspace=OTHER, open_id="open-id-beta")
    response = api.get("/integrations", query, workspace=WS)
    assert response["statusCode"] in (200, 400), (query, response["body"])
    if response["statusCode"] == 400:
        assert _error_code(response) == "invalid_parameter"
        return
    items = json_body(response)["items"]
    assert {i["open_id"] for i in items} <= {"open-id-alpha"}
    assert not any("token" in key or "secret" in key for item in items for key in item)
    assert not [s for s in tiktok.state.issued if s in response["body"]]


@FUZZ
@given(lead_id=odd_text | st.from_regex(r"ld_[0-9a-f]{26}", fullmatch=True))
def test_any_lead_id_is_the_own_lead_or_404(api, seeded, lead_id):
    assume("/" not in lead_id)
    response = api.get(f"/social-leads/{lead_id}", workspace=WS)
    assert response["statusCode"] in (200, 404), (lead_id, response["body"])
    if response["statusCode"] == 200:
        assert json_body(response)["workspace_id"] == WS


def test_no_lead_of_another_workspace_is_ever_readable_by_id(api, seeded):
    for lead in seeded:
        for path in (f"/social-leads/{lead.lead_id}", f"/social-leads/{lead.lead_id}/interactions"):
            response = api.get(path, workspace=WS)
            assert response["statusCode"] == (200 if lead.workspace_id == WS else 404), path


@FUZZ
@given(
    query=st.fixed_dictionaries(
        {}, optional={"limit": st.integers(-5, 200).map(str) | odd_text, "cursor": odd_text}
    )
    | st.dictionaries(any_text, odd_text, max_size=3)
)
def test_any_interactions_query_is_200_of_the_leads_interactions_or_400(api, seeded, query):
    lead = next(lead for lead in seeded if lead.workspace_id == WS and lead.interaction_count > 1)
    response = api.get(f"/social-leads/{lead.lead_id}/interactions", query, workspace=WS)
    assert response["statusCode"] in (200, 400), (query, response["body"])
    if response["statusCode"] == 400:
        assert _error_code(response) in {"invalid_parameter", "invalid_cursor"}
        return
    items = json_body(response)["items"]
    assert items
    assert {i["lead_id"] for i in items} == {lead.lead_id}


def _first_cursor(api: ReadApi, workspace: str, query: dict[str, str]) -> str:
    status, body = api.leads(workspace, **query)
    assert status == 200, body
    assert body["next_cursor"], body
    return str(body["next_cursor"])


cursor_alphabet = string.ascii_letters + string.digits + "-_.="


@FUZZ
@given(
    position=st.integers(0, 10_000),
    replacement=st.sampled_from(cursor_alphabet),
    how=st.sampled_from(["replace", "insert", "delete", "truncate", "swap-workspace", "other-query"]),
)
def test_tampered_or_foreign_cursors_are_invalid_cursor_and_never_show_data(
    api, seeded, position, replacement, how
):
    query = {"limit": "2"}
    token = _first_cursor(api, WS, query)
    i = position % len(token)
    workspace, used_query = WS, dict(query)
    if how == "replace":
        assume(token[i] != replacement)
        tampered = token[:i] + replacement + token[i + 1 :]
    elif how == "insert":
        tampered = token[:i] + replacement + token[i:]
    elif how == "delete":
        tampered = token[:i] + token[i + 1 :]
    elif how == "truncate":
        tampered = token[:i]
    elif how == "swap-workspace":
        tampered, workspace = token, OTHER
    else:
        tampered, used_query = token, {"limit": "2", "capture_source": "tiktok_dm"}
    response = api.get("/social-leads", {**used_query, "cursor": tampered}, workspace=workspace)
    assert response["statusCode"] == 400, (how, response["body"])
    assert _error_code(response) in (
        {"invalid_cursor", "invalid_parameter"} if not tampered else {"invalid_cursor"}
    )


@FUZZ
@given(token=odd_text | st.text(cursor_alphabet, min_size=1, max_size=300))
def test_random_cursors_are_invalid_cursor(api, seeded, token):
    response = api.get("/social-leads", {"cursor": token}, workspace=WS)
    assert response["statusCode"] == 400, response["body"]
    assert _error_code(response) in {"invalid_cursor", "invalid_parameter"}


# -- the OAuth callback ---------------------------------------------------------------------------
callback_keys = st.sampled_from(["code", "scopes", "state", "error", "error_description"]) | any_text


@FUZZ
@given(params=st.dictionaries(callback_keys, odd_text, max_size=5), real_state=st.booleans())
@example(params={"code": "x", "scopes": "user.info.basic"}, real_state=True)
@example(params={"error": "access_denied"}, real_state=True)
def test_any_callback_query_is_a_302_to_the_front_end_and_stores_nothing(
    load_function, lambda_context, aws, tiktok, params, real_state
):
    if real_state:
        started = load_function("oauth_start").lambda_handler(
            http_event("GET", "/integrations/tiktok/oauth/start", jwt_claims=claims(workspace=WS)),
            lambda_context,
        )
        state = dict(parse_qsl(urlsplit(json_body(started)["authorize_url"]).query))["state"]
        tiktok.state.issued.append(state)
        params = {**params, "state": state}
    response = load_function("oauth_callback").lambda_handler(
        http_event("GET", "/integrations/tiktok/oauth/callback", query=params), lambda_context
    )
    assert response["statusCode"] == 302
    headers = response["headers"]
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    location = headers["Location"]
    assert location.startswith(FRONTEND_URL + "/integrations/tiktok?")
    outcome = dict(parse_qsl(urlsplit(location).query))
    assert outcome["status"] == "error"
    assert outcome["reason"] in CALLBACK_REASONS
    assert aws.items("IntegrationsTable") == []
    assert aws.token_secrets() == {}
