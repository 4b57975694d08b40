"""GET /social-leads and GET /social-leads/{lead_id} over people: the listing by last activity,
every filter and their combinations, since/until on last activity, paging, workspace isolation,
merged leads, the ETag, and the guarantee that a page is one Query (never a Scan) whatever the
table holds."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from orcapulse_tiktok import leads as leads_module
from orcapulse_tiktok.models.lead import Lead
from orcapulse_tiktok.schemas import LeadOut, LeadPageOut

from tests.support.events import json_body
from tests.support.leads import (
    BASE_MS,
    ReadApi,
    capture,
    dynamodb_fault,
    ids,
    integration_of,
    mark_merged,
    person,
    person_items,
    put_items,
    record,
    record_dynamodb_calls,
    set_lifecycle,
    stored_leads,
)

WS, OTHER_WS = "ws-1", "ws-2"
ALPHA, BETA = integration_of(WS), integration_of(WS, "open-id-beta")
MINUTE = 60_000


@pytest.fixture
def api(load_function, lambda_context, aws) -> ReadApi:
    return ReadApi(load_function("leads_query"), lambda_context)


def _people(workspace: str, integrations: tuple[str, str], start_ms: int) -> None:
    """Twelve people over two integrations, written through the capture path: commenters, DM
    senders and people who did both, some high-intent, several writing again later; then
    lifecycle changes (status, assignee, labels) on some of them."""
    made: list[str] = []
    for n in range(12):
        name = f"{workspace}-p{n}"
        integration = integrations[n % 2]
        at = start_ms + ((n * 7) % 12) * MINUTE  # shuffled first contacts
        items = [capture(name, workspace_id=workspace, integration_id=integration, at_ms=at)]
        if n % 3 == 1:
            items.append(
                capture(
                    name,
                    workspace_id=workspace,
                    integration_id=integration,
                    kind="dm",
                    at_ms=at + 30 * MINUTE,
                )
            )
        if n % 4 == 2:
            items.append(
                capture(
                    name,
                    workspace_id=workspace,
                    integration_id=integration,
                    kind="high_intent_comment",
                    at_ms=at + 5 * MINUTE,
                )
            )
        made.append(person(*items))
    set_lifecycle(made[0], status="qualified", assignee="user-ana", labels=["vip", "lisbon"])
    set_lifecycle(made[3], status="dismissed")
    set_lifecycle(made[4], assignee="user-ana", labels=["lisbon"])
    set_lifecycle(made[7], status="qualified", assignee="user-bo")
    set_lifecycle(made[9], labels=["vip"])
    set_lifecycle(made[10], status="routed", assignee="user-bo", labels=["wholesale"])


@pytest.fixture
def dataset(aws) -> list[Lead]:
    """ws-1: twelve TikTok people over two integrations and two Instagram leads; ws-2: the same
    kind of people with the same filter values, at the same times."""
    _people(WS, (ALPHA, BETA), BASE_MS)
    instagram = integration_of(WS, "instagram-account")
    for n, source in enumerate(("instagram_comment", "instagram_dm")):
        item = capture(f"insta-{n}", integration_id=instagram, at_ms=BASE_MS + (20 + n) * MINUTE)
        put_items(person_items(item._replace(capture_source=source), platform="instagram"))
    _people(OTHER_WS, (integration_of(OTHER_WS), integration_of(OTHER_WS, "open-id-beta")), BASE_MS)
    return stored_leads(WS)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def _expected(leads: list[Lead], keep: Callable[[Lead], bool] = lambda _: True) -> list[str]:
    return ids(lead for lead in leads if keep(lead))


def test_lists_by_last_activity_newest_first_in_the_documented_shape(api, dataset):
    status, body = api.leads(limit=10)
    assert status == 200
    LeadPageOut.model_validate(body)
    assert [item["lead_id"] for item in body["items"]] == _expected(dataset)[:10]
    assert body["next_cursor"] is not None
    by_id = {lead.lead_id: lead for lead in dataset}
    assert all(item == by_id[item["lead_id"]].to_public(detail=False) for item in body["items"])
    stamps = [item["last_activity_at"] for item in body["items"]]
    assert stamps == sorted(stamps, reverse=True)
    assert all(item["workspace_id"] == WS for item in body["items"])
    # People who wrote again are listed by their latest interaction, not their first.
    assert any(item["captured_at"] < item["last_activity_at"] for item in body["items"])


def test_a_person_who_writes_again_moves_to_the_top(api, aws):
    first, second, third = (person(capture(f"p{n}", at_ms=BASE_MS + n * MINUTE)) for n in range(3))
    assert [i["lead_id"] for i in api.leads()[1]["items"]] == [third, second, first]

    record(capture("p0", kind="dm", at_ms=BASE_MS + 10 * MINUTE, message="still there?"))
    _, body = api.leads()
    assert [i["lead_id"] for i in body["items"]] == [first, third, second]
    top = body["items"][0]
    assert top["message"] == "still there?"
    assert top["interaction_count"] == 2
    assert top["capture_sources"] == ["tiktok_comment", "tiktok_dm"]
    assert top["capture_source"] == "tiktok_comment"  # of the first interaction
    assert top["captured_at"] == top["first_seen_at"] == _z(BASE_MS)
    assert top["last_activity_at"] == _z(BASE_MS + 10 * MINUTE)

    # A late, older event counts but does not move the person back down.
    record(capture("p1", at_ms=BASE_MS - MINUTE))
    _, body = api.leads()
    assert [i["lead_id"] for i in body["items"]] == [first, third, second]
    assert body["items"][2]["interaction_count"] == 2
    assert body["items"][2]["first_seen_at"] == _z(BASE_MS - MINUTE)


def _z(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


FILTERS: dict[str, tuple[str, Callable[[Lead], bool]]] = {
    "platform=tiktok": ("tiktok", lambda lead: lead.platform == "tiktok"),
    "platform=instagram": ("instagram", lambda lead: lead.platform == "instagram"),
    "capture_source=tiktok_comment": (
        "tiktok_comment",
        lambda lead: "tiktok_comment" in lead.capture_sources,
    ),
    "capture_source=tiktok_dm": ("tiktok_dm", lambda lead: "tiktok_dm" in lead.capture_sources),
    "status=new": ("new", lambda lead: lead.status == "new"),
    "status=qualified": ("qualified", lambda lead: lead.status == "qualified"),
    "integration_id=beta": (BETA, lambda lead: lead.integration_id == BETA),
    "assignee=user-ana": ("user-ana", lambda lead: lead.assignee == "user-ana"),
    "high_intent=true": ("true", lambda lead: bool(lead.high_intent)),
    "high_intent=false": ("false", lambda lead: not lead.high_intent),
    "label=vip": ("vip", lambda lead: "vip" in (lead.labels or [])),
}


@pytest.mark.parametrize("name", FILTERS)
def test_each_filter_pages_through_exactly_its_leads(api, dataset, name):
    parameter = name.split("=")[0]
    value, keep = FILTERS[name]
    with record_dynamodb_calls() as calls:
        found, sizes = api.page_through(limit=3, **{parameter: value})
    expected = _expected(dataset, keep)
    assert expected, name  # the dataset exercises every filter
    assert len(expected) < len(dataset), name
    assert found == expected, name
    assert all(size == 3 for size in sizes[:-1]), name  # post-filtered pages are still filled
    queries = [c for c in calls if c.operation == "Query"]
    assert {c.params["IndexName"] for c in queries} == {"by_activity"}
    assert all(c.params["ScanIndexForward"] is False for c in queries)
    assert [c.operation for c in calls if c.operation != "Query"] == []


def test_filters_combine(api, dataset):
    combos = [
        {"status": "qualified", "assignee": "user-bo"},
        {"label": "vip", "high_intent": "true"},
        {"capture_source": "tiktok_dm", "integration_id": ALPHA},
        {"platform": "tiktok", "status": "new", "high_intent": "false", "capture_source": "tiktok_comment"},
        {"label": "lisbon", "assignee": "user-ana", "status": "qualified"},
    ]
    checks = {name.split("=")[0] + "=" + FILTERS[name][0]: FILTERS[name][1] for name in FILTERS}
    checks["integration_id=" + ALPHA] = lambda lead: lead.integration_id == ALPHA
    checks["assignee=user-bo"] = lambda lead: lead.assignee == "user-bo"
    checks["label=lisbon"] = lambda lead: "lisbon" in (lead.labels or [])
    for query in combos:
        keeps = [checks[f"{k}={v}"] for k, v in query.items()]
        expected = _expected(
            dataset, cast(Callable[[Lead], bool], lambda lead, keeps=keeps: all(keep(lead) for keep in keeps))
        )
        found, _ = api.page_through(limit=2, **query)
        assert found == expected, query
    assert api.leads(assignee="nobody")[1] == {"items": [], "next_cursor": None}


def test_capture_source_matches_any_of_the_lead_sources(api, aws):
    both = person(capture("both", at_ms=BASE_MS), capture("both", kind="dm", at_ms=BASE_MS + 1000))
    commenter = person(capture("commenter", at_ms=BASE_MS + 2000))
    writer = person(capture("writer", kind="dm", at_ms=BASE_MS + 3000))
    assert [i["lead_id"] for i in api.leads(capture_source="tiktok_comment")[1]["items"]] == [commenter, both]
    assert [i["lead_id"] for i in api.leads(capture_source="tiktok_dm")[1]["items"]] == [writer, both]
    assert api.leads(capture_source="instagram_dm")[1]["items"] == []


def test_high_intent_follows_any_interaction(api, aws):
    plain = person(capture("plain", at_ms=BASE_MS))
    comment = capture("keen", at_ms=BASE_MS + 1000)
    keen = person(comment)
    assert [i["lead_id"] for i in api.leads(high_intent="true")[1]["items"]] == []
    # TikTok's high-intent event about the same comment flags that interaction and its lead.
    record(comment._replace(kind="high_intent_comment", high_intent=True, occurred_ms=BASE_MS + 2000))
    assert [i["lead_id"] for i in api.leads(high_intent="true")[1]["items"]] == [keen]
    assert [i["lead_id"] for i in api.leads(high_intent="false")[1]["items"]] == [plain]


def test_since_and_until_bound_last_activity_not_first_contact(api, aws):
    # Early first contact, active again late; and someone who only wrote in the middle.
    returning = person(capture("returning", at_ms=BASE_MS), capture("returning", at_ms=BASE_MS + 60 * MINUTE))
    middle = person(capture("middle", at_ms=BASE_MS + 30 * MINUTE))
    for query, expected in [
        ({"since": _iso(BASE_MS + 45 * MINUTE)}, [returning]),
        ({"until": _iso(BASE_MS + 45 * MINUTE)}, [middle]),  # captured before, active after
        ({"since": _iso(BASE_MS + 10 * MINUTE), "until": _iso(BASE_MS + 40 * MINUTE)}, [middle]),
        ({"since": _iso(BASE_MS)}, [returning, middle]),
        ({"until": _iso(BASE_MS + 10 * MINUTE)}, []),
    ]:
        with record_dynamodb_calls() as calls:
            status, body = api.leads(**query)
        assert status == 200, body
        assert [i["lead_id"] for i in body["items"]] == expected, query
        # The window is a range of the index key, not a filter.
        [call] = calls
        assert "#s" in call.params["KeyConditionExpression"]
        assert "FilterExpression" not in call.params


def test_time_bounds_are_inclusive_on_the_displayed_second(api, aws):
    # last_activity_at shows whole seconds; a bound equal to it includes the lead, whatever its ms.
    lead = person(capture(at_ms=BASE_MS + 750))
    before = person(capture(at_ms=BASE_MS - 1))
    after = person(capture(at_ms=BASE_MS + 1000))
    shown = _z(BASE_MS)
    for query, expected in [
        ({"since": shown, "until": shown}, [lead]),
        ({"since": shown}, [after, lead]),
        ({"until": shown}, [lead, before]),
        ({"since": "2026-09-21T14:13:20.5Z", "until": _z(BASE_MS + 1000)}, [after]),  # 20 < 20.5
        ({"since": shown.replace("Z", "+02:00")}, [after, lead, before]),  # two hours earlier
        ({"since": shown.replace("Z", "")}, [after, lead]),  # naive is UTC
        ({"since": "9999-12-31T23:59:59Z"}, []),
        ({"until": "0001-01-01T00:00:00Z"}, []),
        ({"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59Z"}, [after, lead, before]),
    ]:
        status, body = api.leads(**query)
        assert status == 200, body
        assert [i["lead_id"] for i in body["items"]] == expected, query


def test_paging_yields_every_lead_once_and_nothing_of_another_workspace(api, aws):
    # Same-millisecond neighbours too: the activity key's lead id breaks the tie, so none is skipped.
    times = [BASE_MS + (n // 3) * 1000 for n in range(66)]
    put_items(raw for ms in times for raw in person_items(capture(workspace_id=WS, at_ms=ms)))
    put_items(raw for ms in times[::2] for raw in person_items(capture(workspace_id=OTHER_WS, at_ms=ms)))
    mine, theirs = stored_leads(WS), stored_leads(OTHER_WS)
    newest = BASE_MS + 17_000  # the newest 15 leads, for paging one by one
    for limit, since in [(1, newest), (3, BASE_MS), (25, BASE_MS), (100, BASE_MS)]:
        expected = _expected(
            mine, cast(Callable[[Lead], bool], lambda lead, since=since: lead.last_activity_ms >= since)
        )
        with record_dynamodb_calls() as calls:
            found, sizes = api.page_through(limit=limit, since=_iso(since))
        assert found == expected, limit
        assert sizes[:-1] == [limit] * (len(sizes) - 1), limit
        assert 0 < sizes[-1] <= limit, limit  # the last page is not followed by an empty one
        # Unfiltered: exactly one Query per page, never a Scan.
        assert [c.operation for c in calls] == ["Query"] * len(sizes), limit
    found, _ = api.page_through(workspace=OTHER_WS, limit=5)
    assert found == ids(theirs)


def test_a_filtered_page_is_filled_across_round_trips(api, aws):
    # One person in four is assigned: the assignee is a post-filter.
    made = [capture(integration_id=ALPHA, at_ms=BASE_MS + n * 1000) for n in range(80)]
    put_items(
        raw
        for n, item in enumerate(made)
        for raw in person_items(item, assignee="user-ana" if n % 4 == 3 else None)
    )
    with record_dynamodb_calls() as calls:
        status, body = api.leads(assignee="user-ana", limit=10)
    assert status == 200
    expected = _expected(stored_leads(WS), lambda lead: lead.assignee == "user-ana")
    assert [i["lead_id"] for i in body["items"]] == expected[:10]
    assert body["next_cursor"] is not None
    assert 1 < len(calls) <= leads_module.MAX_ROUND_TRIPS


def test_sparse_matches_end_a_page_at_the_round_trip_budget_and_the_cursor_continues(api, aws):
    dense = [capture(at_ms=BASE_MS + n * 1000) for n in range(160)]
    rare = [capture(at_ms=BASE_MS - n * 1000) for n in (1, 2)]
    put_items(raw for item in dense for raw in person_items(item))
    put_items(raw for item in rare for raw in person_items(item, status="dismissed"))
    with record_dynamodb_calls() as calls:
        found, sizes = api.page_through(status="dismissed", limit=1)
    assert found == _expected(stored_leads(WS), lambda lead: lead.status == "dismissed")
    assert len(found) == 2
    assert sizes[0] == 0  # the budget ran out before the first match: an empty page with a cursor
    assert len(calls) / len(sizes) <= leads_module.MAX_ROUND_TRIPS
    assert max(c.params["Limit"] for c in calls) <= leads_module.MAX_EVALUATED_PER_CALL


def _first_page_and_a_deep_page(workspace: str, **query: object) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    filters = leads_module.LeadFilters(**query)  # type: ignore[arg-type]
    first = leads_module.list_leads(workspace, filters, limit=25)
    page = first
    for _ in range(3):
        page = leads_module.list_leads(workspace, filters, limit=25, page_cursor=page.next_cursor)
    return (first.stats.calls, first.stats.evaluated), (page.stats.calls, page.stats.evaluated)


def test_a_page_costs_the_same_with_1000_leads_as_with_120(aws):
    def seed(count: int, workspace: str) -> None:
        put_items(
            raw
            for n in range(count)
            for raw in person_items(
                capture(workspace_id=workspace, at_ms=BASE_MS + n * 1000),
                status="new" if n % 2 else "qualified",
            )
        )

    seed(120, "ws-small")
    seed(1000, "ws-large")
    seed(300, "ws-neighbour")  # other workspaces' leads never cost a read
    for query in ({}, {"status": "new"}):
        small = _first_page_and_a_deep_page("ws-small", **query)
        large = _first_page_and_a_deep_page("ws-large", **query)
        assert small == large, query
        if not query:
            assert small == ((1, 26), (1, 26))  # one Query of one page and its look-ahead item


def test_get_lead_returns_the_lead_with_its_version_as_etag(api, dataset):
    lead = dataset[5]
    response = api.get(f"/social-leads/{lead.lead_id}")
    assert response["statusCode"] == 200
    body = json_body(response)
    LeadOut.model_validate(body)
    assert body == lead.to_public()
    assert response["headers"]["ETag"] == f'"{body["version"]}"'

    lead_id = person(capture("versioned", at_ms=BASE_MS))
    etags = [api.get(f"/social-leads/{lead_id}")["headers"]["ETag"]]
    record(capture("versioned", at_ms=BASE_MS + 1000))  # a new interaction is a new version
    etags.append(api.get(f"/social-leads/{lead_id}")["headers"]["ETag"])
    set_lifecycle(lead_id, status="qualified")  # and so is a lifecycle change
    etags.append(api.get(f"/social-leads/{lead_id}")["headers"]["ETag"])
    assert etags == ['"1"', '"2"', '"3"']


def test_another_workspace_or_an_unknown_lead_is_404_and_a_malformed_id_reads_nothing(api, dataset):
    other = stored_leads(OTHER_WS)[0]
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


def test_a_merged_lead_leaves_the_listing_and_answers_404_lead_merged(api, aws):
    source = person(capture("old-handle", at_ms=BASE_MS + 1000))
    target = person(capture("new-handle", at_ms=BASE_MS))
    mark_merged(source, into=target)
    assert [i["lead_id"] for i in api.leads()[1]["items"]] == [target]
    response = api.get(f"/social-leads/{source}")
    assert response["statusCode"] == 404
    error = json_body(response)["error"]
    assert error["code"] == "lead_merged"
    assert error["merged_into"] == target
    # Another workspace cannot learn where it went.
    assert (
        json_body(api.get(f"/social-leads/{source}", workspace=OTHER_WS))["error"]["code"] == "lead_not_found"
    )


def test_the_read_api_never_scans(api, dataset):
    cursor_page = api.leads(limit=2, status="new")[1]
    query_values = {
        "integration_id": ALPHA,
        "capture_source": "tiktok_dm",
        "status": "new",
        "platform": "tiktok",
        "assignee": "user-ana",
        "high_intent": "true",
        "label": "vip",
    }
    with record_dynamodb_calls() as calls:
        for names in itertools.combinations(query_values, 2):
            assert api.leads(limit=4, since=_iso(BASE_MS), **{n: query_values[n] for n in names})[0] == 200
        assert api.leads(limit=2, status="new", cursor=cursor_page["next_cursor"])[0] == 200
        assert api.get(f"/social-leads/{dataset[0].lead_id}")["statusCode"] == 200
        assert api.interactions(dataset[0].lead_id)[0] == 200
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
