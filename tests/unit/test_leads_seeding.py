"""The raw items the bulk seeders write are exactly what the capture path stores, so tests and the
paging benchmark that seed with ``BatchWriteItem`` read what the webhook would have written."""

from __future__ import annotations

from typing import Any

from tests.support.leads import capture, interaction_item, lead_item, person_items, put_items, record


def _items(aws) -> dict[tuple[str, str], dict[str, Any]]:
    return {(i["pk"]["S"], i["sk"]["S"]): i for i in aws.items("LeadsTable")}


def test_raw_items_equal_what_the_capture_path_stores(aws):
    made = [capture(), capture(kind="dm"), capture(kind="high_intent_comment")]
    for item in made:
        record(item)
    stored = _items(aws)
    assert len(stored) == 2 * len(made)
    for item in made:
        raw_lead, raw_interaction = lead_item(item), interaction_item(item)
        key = (raw_lead["pk"]["S"], raw_lead["sk"]["S"])
        # created_at is the capture's wall-clock time; everything else is derived from the event.
        assert {**stored[key], "created_at": raw_lead["created_at"]} == raw_lead
        assert stored[(raw_interaction["pk"]["S"], raw_interaction["sk"]["S"])] == raw_interaction


def test_put_items_writes_them_in_batches(aws):
    made = [capture() for _ in range(30)]
    put_items([raw for item in made for raw in person_items(item)])
    assert len(aws.items("LeadsTable")) == 60
