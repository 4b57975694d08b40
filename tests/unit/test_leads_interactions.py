"""GET /social-leads/{lead_id}/interactions: a person's interactions newest first, paged with a
cursor bound to the workspace and the lead, scoped to the caller's workspace, one Query per page
whatever the lead or the table holds."""

from __future__ import annotations

from typing import Any, cast

import pytest
from orcapulse_tiktok import leads as leads_module
from orcapulse_tiktok.schemas import InteractionPageOut

from tests.support.events import json_body
from tests.support.leads import (
    BASE_MS,
    ReadApi,
    capture,
    interaction_item,
    mark_merged,
    person,
    person_items,
    put_items,
    record,
    record_dynamodb_calls,
)

WS, OTHER_WS = "ws-1", "ws-2"
MINUTE = 60_000


@pytest.fixture
def api(load_function, lambda_context, aws) -> ReadApi:
    return ReadApi(load_function("leads_query"), lambda_context)


def _invalid_cursor(status_body: tuple[int, dict[str, Any]]) -> bool:
    status, body = status_body
    return status == 400 and body["error"]["code"] == "invalid_cursor"


def _not_found(status_body: tuple[int, dict[str, Any]], code: str = "lead_not_found") -> bool:
    status, body = status_body
    return status == 404 and body["error"]["code"] == code


def test_a_persons_interactions_newest_first_in_the_documented_shape(api, aws):
    comment = capture("buyer", at_ms=BASE_MS, message="How much?")
    dm = capture("buyer", kind="dm", at_ms=BASE_MS + 2 * MINUTE, message="Do you ship to Lisbon?")
    late = capture("buyer", at_ms=BASE_MS + MINUTE, message="delivered late, happened in between")
    lead_id = person(comment, dm, late)
    person(capture("someone-else", at_ms=BASE_MS + 3 * MINUTE))  # not in this timeline

    status, body = api.interactions(lead_id)
    assert status == 200
    InteractionPageOut.model_validate(body)
    assert body["next_cursor"] is None
    assert [i["message"] for i in body["items"]] == [dm.message, late.message, comment.message]
    newest = body["items"][0]
    assert newest["lead_id"] == lead_id
    assert newest["kind"] == "dm"
    assert newest["capture_source"] == "tiktok_dm"
    assert newest["source_ref"] == dm.source_ref
    assert newest["occurred_at"] == "2026-09-21T14:15:20Z"
    assert newest["source_state"] == "present"
    assert newest["high_intent"] is False
    stamps = [i["occurred_at"] for i in body["items"]]
    assert stamps == sorted(stamps, reverse=True)


def test_the_high_intent_event_about_a_comment_is_that_interaction(api, aws):
    comment = capture("keen", at_ms=BASE_MS)
    lead_id = person(comment)
    record(comment._replace(kind="high_intent_comment", high_intent=True, occurred_ms=BASE_MS + 1000))
    _, body = api.interactions(lead_id)
    [only] = body["items"]
    assert only["high_intent"] is True
    assert only["kind"] == "comment"


def test_paging_yields_every_interaction_once(api, aws):
    # Same-millisecond neighbours too: the interaction id breaks the tie.
    items = [capture("chatty", at_ms=BASE_MS + (n // 3) * 1000) for n in range(23)]
    lead_id = person(*items)
    everything, _ = api.interactions_through(lead_id, limit=100)
    assert len(everything) == len(set(everything)) == 23
    for limit in (1, 4, 23):
        with record_dynamodb_calls() as calls:
            found, sizes = api.interactions_through(lead_id, limit=limit)
        assert found == everything, limit
        assert sizes[:-1] == [limit] * (len(sizes) - 1), limit
        assert 0 < sizes[-1] <= limit, limit
        # Per page: the lead (workspace, merged?) and one Query of its timeline.
        assert [c.operation for c in calls] == ["GetItem", "Query"] * len(sizes), limit
        assert {c.params["IndexName"] for c in calls if c.operation == "Query"} == {"by_time"}
    _, first = api.interactions(lead_id, limit=5)
    _, second = api.interactions(lead_id, limit=7, cursor=first["next_cursor"])  # the size may change
    assert [i["interaction_id"] for i in first["items"] + second["items"]] == everything[:12]


def test_a_cursor_of_another_lead_or_workspace_is_invalid_cursor(api, aws):
    mine = person(*(capture("mine", at_ms=BASE_MS + n) for n in range(5)))
    also_mine = person(*(capture("also-mine", at_ms=BASE_MS + n) for n in range(5)))
    theirs = person(*(capture("theirs", workspace_id=OTHER_WS, at_ms=BASE_MS + n) for n in range(5)))
    my_cursor = api.interactions(mine, limit=2)[1]["next_cursor"]
    their_cursor = api.interactions(theirs, OTHER_WS, limit=2)[1]["next_cursor"]
    listing_cursor = api.leads(limit=1)[1]["next_cursor"]

    assert api.interactions(mine, limit=2, cursor=my_cursor)[0] == 200
    assert _invalid_cursor(api.interactions(also_mine, limit=2, cursor=my_cursor))
    assert _invalid_cursor(api.interactions(mine, limit=2, cursor=their_cursor))
    assert _invalid_cursor(api.interactions(mine, limit=2, cursor=listing_cursor))
    assert _invalid_cursor(api.leads(limit=1, cursor=my_cursor))
    tampered = my_cursor[:-2] + ("AA" if not my_cursor.endswith("AA") else "BB")
    assert _invalid_cursor(api.interactions(mine, limit=2, cursor=tampered))
    # Another workspace's lead is not found, whatever the cursor.
    assert _not_found(api.interactions(theirs, limit=2))
    assert _not_found(api.interactions(theirs, limit=2, cursor=their_cursor))


def test_unknown_other_workspace_malformed_and_merged_leads_are_404(api, aws):
    theirs = person(capture("theirs", workspace_id=OTHER_WS))
    source, target = person(capture("old-handle")), person(capture("new-handle"))
    mark_merged(source, into=target)
    for lead_id in (theirs, "ld_" + "0" * 26):
        assert _not_found(api.interactions(lead_id)), lead_id
    with record_dynamodb_calls() as calls:
        assert _not_found(api.interactions("nope"))
        assert _not_found(api.interactions("ld_" + "G" * 26))
    assert calls == []
    status, body = api.interactions(source)
    assert _not_found((status, body), "lead_merged")
    assert body["error"]["merged_into"] == target
    assert api.interactions(target)[0] == 200


def test_a_page_of_interactions_costs_the_same_with_1000_interactions_as_with_30(aws):
    def seed(name: str, count: int) -> str:
        items = [capture(name, at_ms=BASE_MS + n * 1000) for n in range(count)]
        put_items(person_items(items[-1]))  # the lead, as its newest interaction left it
        put_items(interaction_item(item) for item in items[:-1])
        return cast(str, person_items(items[-1])[0]["lead_id"]["S"])

    small, large = seed("quiet", 30), seed("loud", 1000)
    put_items(raw for n in range(200) for raw in person_items(capture(at_ms=BASE_MS + n)))  # neighbours

    def cost(lead_id: str) -> list[tuple[int, int, int]]:
        out, cursor = [], None
        for _ in range(2):
            page = leads_module.list_interactions(WS, lead_id, limit=10, page_cursor=cursor)
            out.append((page.stats.calls, page.stats.evaluated, page.stats.returned))
            cursor = page.next_cursor
        return out

    assert cost(small) == cost(large) == [(1, 11, 10), (1, 11, 10)]


def test_lead_form_answers_are_shown(api, aws):
    entry = capture("form-person", kind="lead_form")._replace(
        form_fields={"email": "ana@example.com", "budget": "500-1000"}
    )
    lead_id = person(entry)
    _, body = api.interactions(lead_id)
    [only] = body["items"]
    assert only["kind"] == "lead_form"
    assert only["form_fields"] == {"email": "ana@example.com", "budget": "500-1000"}
    assert json_body(api.get(f"/social-leads/{lead_id}"))["capture_sources"] == ["tiktok_lead_form"]
