"""Retention (DESIGN §9, docs/lifecycle.md): leads and interactions carry ``expires_at`` (epoch
seconds, the table's TTL attribute); a new interaction moves its lead's expiry out and expires
with it, a late older one moves nothing, and a lifecycle change does not keep a person's data."""

from __future__ import annotations

from typing import Any

from orcapulse_tiktok.config import get_settings

from tests.support.deployment import TEMPLATE
from tests.support.leads import BASE_MS, capture, person
from tests.support.lifecycle import LeadUpdates

DAY = 86_400


def _items(aws: Any, lead_id: str) -> tuple[dict[str, Any], dict[str, int]]:
    """The lead item and each interaction's expires_at, read from the table (moto)."""
    items = [i for i in aws.items("LeadsTable") if i["pk"]["S"] == f"L#{lead_id}"]
    [lead] = [i for i in items if i["sk"]["S"] == "L"]
    return lead, {i["interaction_id"]["S"]: int(i["expires_at"]["N"]) for i in items if i["sk"]["S"] != "L"}


def _expiry(at_ms: int, days: int = 365) -> int:
    return at_ms // 1000 + days * DAY


def test_the_table_expires_items_by_expires_at():
    table = TEMPLATE["Resources"]["LeadsTable"]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert TEMPLATE["Parameters"]["LeadRetentionDays"]["Default"] == 365
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert env["LEAD_RETENTION_DAYS"] == {"Ref": "LeadRetentionDays"}


def test_activity_moves_the_leads_expiry_and_each_interaction_gets_its_own(
    aws, load_function, lambda_context
):
    first = capture("orca.fan", at_ms=BASE_MS)
    lead_id = person(first)
    lead, interactions = _items(aws, lead_id)
    assert int(lead["expires_at"]["N"]) == _expiry(BASE_MS)
    assert list(interactions.values()) == [_expiry(BASE_MS)]

    later = BASE_MS + 40 * DAY * 1000
    person(capture("orca.fan", kind="dm", at_ms=later))
    lead, interactions = _items(aws, lead_id)
    assert int(lead["expires_at"]["N"]) == _expiry(later)
    assert sorted(interactions.values()) == [_expiry(BASE_MS), _expiry(later)]

    # A late event older than the newest counts, and moves no expiry but its own.
    late = BASE_MS + 10 * DAY * 1000
    person(capture("orca.fan", at_ms=late))
    lead, interactions = _items(aws, lead_id)
    assert int(lead["interaction_count"]["N"]) == 3
    assert int(lead["expires_at"]["N"]) == _expiry(later)
    assert sorted(interactions.values()) == [_expiry(BASE_MS), _expiry(late), _expiry(later)]
    # No interaction of a live lead outlives it: the lead expires with its newest one.
    assert max(interactions.values()) == int(lead["expires_at"]["N"])

    # A lifecycle change is not activity of the person: the expiry stays.
    api = LeadUpdates(load_function("lead_update"), load_function("leads_query"), lambda_context)
    assert api.patch(lead_id, {"status": "qualified", "labels": ["vip"]}).status == 200
    changed, _ = _items(aws, lead_id)
    assert changed["expires_at"] == lead["expires_at"]
    assert changed["status"]["S"] == "qualified"


def test_the_retention_comes_from_lead_retention_days(aws, monkeypatch):
    monkeypatch.setenv("LEAD_RETENTION_DAYS", "30")
    get_settings.cache_clear()
    lead_id = person(capture("short.memory", at_ms=BASE_MS))
    lead, interactions = _items(aws, lead_id)
    assert int(lead["expires_at"]["N"]) == _expiry(BASE_MS, 30)
    assert list(interactions.values()) == [_expiry(BASE_MS, 30)]
    get_settings.cache_clear()
