"""GET /social-leads and GET /social-leads/{lead_id}: filters, their combinations, paging, time
windows, workspace isolation, and the guarantee that the listing only ever Queries."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from orcapulse_tiktok import leads as leads_module
from orcapulse_tiktok.models.lead import Lead
from orcapulse_tiktok.platforms import LEAD_STATUSES
from orcapulse_tiktok.schemas import LeadOut, LeadPageOut

from tests.support.events import json_body
from tests.support.leads import (
    BASE_MS,
    ReadApi,
    build_lead,
    dynamodb_fault,
    ids,
    integration_of,
    record_dynamodb_calls,
    save_all,
)

WS, OTHER_WS = "ws-1", "ws-2"
ALPHA, BETA = integration_of(WS), integration_of(WS, "open-id-beta")
INSTAGRAM_INTEGRATION = integration_of(WS, "instagram-account")
FILTERS = ("integration_id", "capture_source", "status", "platform")
INDEX_FOR = {
    "integration_id": "by_integration",
    "capture_source": "by_capture_source",
    "status": "by_status",
    "platform": "by_platform",
}


@pytest.fixture
def api(load_function, lambda_context, aws) -> ReadApi:
    return ReadApi(load_function("leads_query"), lambda_context)


def _mixed(workspace: str, integrations: tuple[str, str], start_ms: int) -> list[Lead]:
    """Two leads of every (integration, capture source, status), in an interleaved time order."""
    out = []
    combos = itertools.product(integrations, ("tiktok_comment", "tiktok_dm"), LEAD_STATUSES, range(2))
    for n, (integration, source, status, _) in enumerate(combos):
        out.append(
            build_lead(
                workspace_id=workspace,
                integration_id=integration,
                capture_source=source,
                status=status,
                captured_ms=start_ms + ((n * 7919) % 64) * 60_000 + n,  # shuffled minutes, distinct ms
            )
        )
    return out


@pytest.fixture
def dataset(aws) -> list[Lead]:
    """ws-1: 32 TikTok leads over two integrations plus 4 Instagram ones; ws-2: half that mix,
    at the same times and with the same filter values."""
    mine = _mixed(WS, (ALPHA, BETA), BASE_MS)
    mine += [
        build_lead(
            workspace_id=WS,
            integration_id=INSTAGRAM_INTEGRATION,
            platform="instagram",
            capture_source=source,
            status=status,
            captured_ms=BASE_MS + 10 * 60_000 + n * 1000 + 1,
        )
        for n, (source, status) in enumerate(
            [
                ("instagram_comment", "new"),
                ("instagram_dm", "new"),
                ("instagram_comment", "qualified"),
                ("instagram_dm", "routed"),
            ]
        )
    ]
    other_integrations = (integration_of(OTHER_WS), integration_of(OTHER_WS, "open-id-beta"))
    theirs = _mixed(OTHER_WS, other_integrations, BASE_MS)[::2]
    save_all(mine + theirs)
    return mine


def _expected(leads: list[Lead], **filters: str) -> list[str]:
    return ids(lead for lead in leads if all(getattr(lead, k) == v for k, v in filters.items()))


def test_lists_newest_first_in_the_documented_shape(api, dataset):
    status, body = api.leads()
    assert status == 200
    LeadPageOut.model_validate(body)
    assert [item["lead_id"] for item in body["items"]] == _expected(dataset)[:25]
    assert body["next_cursor"] is not None
    first = next(lead for lead in dataset if lead.lead_id == body["items"][0]["lead_id"])
    assert body["items"][0] == first.to_public()
    stamps = [item["captured_at"] for item in body["items"]]
    assert stamps == sorted(stamps, reverse=True)
    assert all(item["workspace_id"] == WS for item in body["items"])


SUBSETS = [c for r in range(1, 5) for c in itertools.combinations(FILTERS, r)]


def test_every_filter_and_combination_queries_the_most_selective_index(api, dataset):
    values = {
        "integration_id": BETA,
        "capture_source": "tiktok_dm",
        "status": "qualified",
        "platform": "tiktok",
    }
    with record_dynamodb_calls() as calls:
        for names in SUBSETS:
            query = {name: values[name] for name in names}
            calls.clear()
            found, sizes = api.page_through(limit=4, **query)
            assert found == _expected(dataset, **query), names
            assert found, names
            assert all(size == 4 for size in sizes[:-1]), names  # post-filtered pages are still filled
            chosen = next(INDEX_FOR[f] for f in FILTERS if f in names)
            assert {c.params["IndexName"] for c in calls} == {chosen}, names
            # capture_source implies the platform, so only the others are applied after the key.
            post_filtered = len(set(names) - ({"platform"} if "capture_source" in names else set())) > 1
            assert all(("FilterExpression" in c.params) == post_filtered for c in calls), names
    found, _ = api.page_through(limit=3, platform="instagram")
    assert found == _expected(dataset, platform="instagram")
    assert len(found) == 4


def test_platform_and_capture_source_agree_or_match_nothing(api, dataset):
    with record_dynamodb_calls() as calls:
        assert api.leads(platform="tiktok", capture_source="instagram_dm") == (
            200,
            {"items": [], "next_cursor": None},
        )
    assert calls == []  # a contradiction needs no read
    with record_dynamodb_calls() as calls:
        found, _ = api.page_through(limit=50, platform="instagram", capture_source="instagram_dm")
    assert found == _expected(dataset, capture_source="instagram_dm")
    assert [(c.params["IndexName"], "FilterExpression" in c.params) for c in calls] == [
        ("by_capture_source", False)
    ]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def test_since_and_until_bound_the_filters_as_a_key_range(api, dataset):
    low, high = BASE_MS + 15 * 60_000, BASE_MS + 45 * 60_000
    values = {"integration_id": BETA, "capture_source": "tiktok_dm", "status": "new"}
    windows = (
        {"since": _iso(low)},
        {"until": _iso(high - 1000)},
        {"since": _iso(low), "until": _iso(high - 1000)},
    )
    combinations = [(), ("status",), ("integration_id", "capture_source", "status")]
    with record_dynamodb_calls() as calls:
        for names, bounds in itertools.product(combinations, windows):
            query = {name: values[name] for name in names}
            calls.clear()
            found, _ = api.page_through(limit=6, **query, **bounds)
            chosen = [
                lead
                for lead in dataset
                if ("since" not in bounds or lead.captured_ms >= low)
                and ("until" not in bounds or lead.captured_ms < high)
            ]
            assert found == _expected(chosen, **query), (names, bounds)
            assert all("sort_key" in str(c.params["ExpressionAttributeNames"]) for c in calls)
            assert all("#s" in c.params["KeyConditionExpression"] for c in calls)


def test_time_bounds_are_inclusive_on_the_displayed_second(api, aws):
    # captured_at shows whole seconds; a bound equal to it includes the lead, whatever its ms.
    lead = build_lead(captured_ms=BASE_MS + 750)
    before = build_lead(captured_ms=BASE_MS - 1)
    after = build_lead(captured_ms=BASE_MS + 1000)
    save_all([lead, before, after])
    shown = lead.captured_at
    for query, expected in [
        ({"since": shown, "until": shown}, [lead]),
        ({"since": shown}, [after, lead]),
        ({"until": shown}, [lead, before]),
        ({"since": "2026-09-21T14:13:20.5Z", "until": after.captured_at}, [after]),  # 20 < 20.5
        ({"since": shown.replace("Z", "+02:00")}, [after, lead, before]),  # two hours earlier
        ({"since": shown.replace("Z", "")}, [after, lead]),  # naive is UTC
        ({"since": "9999-12-31T23:59:59Z"}, []),
        ({"until": "0001-01-01T00:00:00Z"}, []),
        ({"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59Z"}, [after, lead, before]),
    ]:
        status, body = api.leads(**query)
        assert status == 200, body
        assert [i["lead_id"] for i in body["items"]] == [x.lead_id for x in expected], query


def test_paging_yields_every_lead_once_and_nothing_of_another_workspace(api, aws):
    # Same-millisecond neighbours too: the sort key's lead id breaks the tie, so none is skipped.
    times = [BASE_MS + (n // 3) * 1000 for n in range(66)]
    mine = [build_lead(workspace_id=WS, captured_ms=ms) for ms in times]
    theirs = [build_lead(workspace_id=OTHER_WS, captured_ms=ms) for ms in times[::2]]
    save_all(mine + theirs)
    newest = BASE_MS + 17_000  # the newest 15 leads, for paging one by one
    for limit, since in [(1, newest), (3, BASE_MS), (25, BASE_MS), (100, BASE_MS)]:
        expected = ids(lead for lead in mine if lead.captured_ms >= since)
        found, sizes = api.page_through(limit=limit, since=_iso(since))
        assert found == expected, limit
        assert sizes[:-1] == [limit] * (len(sizes) - 1), limit
        assert 0 < sizes[-1] <= limit, limit  # the last page is not followed by an empty one
    found, _ = api.page_through(workspace=OTHER_WS, limit=5)
    assert found == ids(theirs)


def test_a_filtered_page_is_filled_across_round_trips(api, aws):
    # integration_id + status: the status is a post-filter; one lead in four matches.
    batch = [
        build_lead(integration_id=ALPHA, status=LEAD_STATUSES[n % 4], captured_ms=BASE_MS + n * 1000)
        for n in range(80)
    ]
    save_all(batch)
    with record_dynamodb_calls() as calls:
        status, body = api.leads(integration_id=ALPHA, status="routed", limit=10)
    assert status == 200
    assert [i["lead_id"] for i in body["items"]] == _expected(batch, status="routed")[:10]
    assert body["next_cursor"] is not None
    assert 1 < len(calls) <= leads_module.MAX_ROUND_TRIPS


def test_sparse_matches_end_a_page_at_the_round_trip_budget_and_the_cursor_continues(api, aws):
    dense = [
        build_lead(integration_id=ALPHA, status="new", captured_ms=BASE_MS + n * 1000) for n in range(160)
    ]
    rare = [
        build_lead(integration_id=ALPHA, status="dismissed", captured_ms=BASE_MS - n * 1000) for n in (1, 2)
    ]
    save_all(dense + rare)
    with record_dynamodb_calls() as calls:
        found, sizes = api.page_through(integration_id=ALPHA, status="dismissed", limit=1)
    assert found == ids(rare)
    assert sizes[0] == 0  # the budget ran out before the first match: an empty page with a cursor
    per_page = len(calls) / len(sizes)
    assert per_page <= leads_module.MAX_ROUND_TRIPS
    evaluated_per_page = 2 + (leads_module.MAX_ROUND_TRIPS - 1) * 2 * leads_module.OVERREAD
    assert max(c.params["Limit"] for c in calls) <= evaluated_per_page


def test_get_lead_returns_the_workspace_lead(api, dataset):
    lead = dataset[5]
    response = api.get(f"/social-leads/{lead.lead_id}")
    assert response["statusCode"] == 200
    body = json_body(response)
    LeadOut.model_validate(body)
    assert body == lead.to_public()


def test_another_workspace_or_an_unknown_lead_is_404_and_a_malformed_id_reads_nothing(api, dataset):
    other = save_all([build_lead(workspace_id=OTHER_WS)])[0]
    assert api.get(f"/social-leads/{other.lead_id}", workspace=OTHER_WS)["statusCode"] == 200
    well_formed = [other.lead_id, "ld_" + "0" * 26]
    malformed = [
        "nope",
        "ld_" + "A" * 26,
        "ld_" + "0" * 27,
        "ld_" + "0" * 25 + "g",
        "%00",
        "ld_" + "0" * 26 + "%0A",
    ]
    for lead_id in well_formed + malformed:
        with record_dynamodb_calls() as calls:
            response = api.get(f"/social-leads/{lead_id}", workspace=WS)
        assert response["statusCode"] == 404, lead_id
        assert json_body(response) == {"error": {"code": "lead_not_found", "message": "No such lead"}}
        assert [c.operation for c in calls] == (["GetItem"] if lead_id in well_formed else []), lead_id


def test_the_read_api_never_scans(api, dataset):
    cursor_page = api.leads(limit=2, status="new")[1]
    with record_dynamodb_calls() as calls:
        for names in [(), *SUBSETS]:
            query = {
                n: {"integration_id": ALPHA, "capture_source": "tiktok_dm", "status": "new"}.get(n, "tiktok")
                for n in names
            }
            assert api.leads(limit=4, since=_iso(BASE_MS), **query)[0] == 200
        assert api.leads(limit=2, status="new", cursor=cursor_page["next_cursor"])[0] == 200
        assert api.get(f"/social-leads/{dataset[0].lead_id}")["statusCode"] == 200
        assert api.get("/integrations")["statusCode"] == 200
        assert api.get("/platforms")["statusCode"] == 200
    operations = {c.operation for c in calls}
    assert "Query" in operations
    assert operations <= {"Query", "GetItem"}


def test_throttling_is_a_retryable_503(api, dataset):
    with dynamodb_fault("Query", "ProvisionedThroughputExceededException") as seen:
        response = api.get("/social-leads")
    assert response["statusCode"] == 503
    assert json_body(response)["error"]["code"] == "temporarily_unavailable"
    assert len(seen) >= 1
    with dynamodb_fault("GetItem", "InternalServerError", status=500):
        response = api.get(f"/social-leads/{dataset[0].lead_id}")
    assert response["statusCode"] == 503
