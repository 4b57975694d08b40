"""The qualification pipeline's write-back (DESIGN §9): each decision applied once however often
delivered, never over a newer change (a person's PATCH included), decisions that cannot apply
counted, logged without personal data and acknowledged, AWS faults raised for a retry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from orcapulse_tiktok import clock

from tests.support.faults import aws_calls
from tests.support.leads import capture, mark_merged, person
from tests.support.lifecycle import DISMISSED, QUALIFIED, ROUTED, LeadUpdates, decision, decision_event

T1, T2, T3 = "2026-11-25T08:00:00Z", "2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z"


@pytest.fixture
def api(load_function, lambda_context, aws) -> LeadUpdates:
    return LeadUpdates(load_function("lead_update"), load_function("leads_query"), lambda_context)


@pytest.fixture
def decide(load_function, lambda_context, aws):
    module = load_function("lead_decisions")

    def send(detail_type: str, detail: Any, **kwargs: Any) -> str:
        result = module.lambda_handler(decision_event(detail_type, detail, **kwargs), lambda_context)
        return str(result["outcome"])

    return send


@pytest.fixture
def lead(aws) -> str:
    return person(capture("orca.fan", message="call me at +351 912 345 678"))


@pytest.fixture
def emitted(monkeypatch) -> list[str]:
    """The names of the metrics the product adds."""
    from orcapulse_tiktok.observability import metrics

    names: list[str] = []
    real = metrics.add_metric

    def add(name: str, *args: Any, **kwargs: Any) -> None:
        names.append(name)
        real(name, *args, **kwargs)

    monkeypatch.setattr(metrics, "add_metric", add)
    return names


def _lead(api: LeadUpdates, lead_id: str) -> dict[str, Any]:
    answer = api.get(lead_id)
    assert answer.status == 200
    return dict(answer.body)


def test_a_decision_applies_by_pipeline_with_its_reason_score_and_route(api, decide, lead, bus):
    bus.received()
    assert decide(QUALIFIED, decision(lead, T1, score=0.87, reason="asked for a price")) == "applied"
    assert decide(ROUTED, decision(lead, T2, route="sales-pt", assignee="user-ana")) == "applied"
    body = _lead(api, lead)
    assert (body["status"], body["assignee"], body["score"], body["route"]) == (
        "routed",
        "user-ana",
        0.87,
        "sales-pt",
    )
    assert [(h["field"], h["from"], h["to"], h["by"], h["at"], h["reason"]) for h in body["history"]] == [
        ("status", "new", "qualified", "pipeline", T1, "asked for a price"),
        ("status", "qualified", "routed", "pipeline", T2, None),
        ("assignee", None, "user-ana", "pipeline", T2, None),
    ]
    events = bus.received()
    assert [e["detail-type"] for e in events] == ["SocialLeadUpdated", "SocialLeadUpdated"]
    assert [e["detail"]["change"]["by"] for e in events] == ["pipeline", "pipeline"]
    assert events[-1]["detail"]["status"] == "routed"


def test_a_decision_delivered_twice_applies_once(api, decide, lead, bus, emitted):
    bus.received()
    assert decide(QUALIFIED, decision(lead, T1)) == "applied"
    once = _lead(api, lead)
    assert decide(QUALIFIED, decision(lead, T1)) == "duplicate"
    assert decide(QUALIFIED, decision(lead, T1)) == "duplicate"
    assert _lead(api, lead) == once
    assert len(bus.received()) == 1
    assert emitted.count("LeadDecisionsApplied") == 1
    assert emitted.count("LeadDecisionsDuplicate") == 2


def test_two_decisions_stamped_with_one_time_both_apply(api, decide, lead):
    assert decide(QUALIFIED, decision(lead, T1)) == "applied"
    assert decide(ROUTED, decision(lead, T1, route="sales")) == "applied"
    assert decide(QUALIFIED, decision(lead, T1)) == "duplicate"
    assert decide(ROUTED, decision(lead, T1, route="sales")) == "duplicate"
    assert _lead(api, lead)["status"] == "routed"


def test_an_older_decision_arriving_late_never_overwrites_a_newer_one(api, decide, lead):
    assert decide(QUALIFIED, decision(lead, T1)) == "applied"
    assert decide(DISMISSED, decision(lead, T3, reason="spam")) == "applied"
    before = _lead(api, lead)
    # Delivered out of order: routed at T2 comes after the dismissal at T3.
    assert decide(ROUTED, decision(lead, T2)) == "superseded"
    assert decide(QUALIFIED, decision(lead, T1)) == "superseded"
    assert _lead(api, lead) == before
    assert before["status"] == "dismissed"


def test_a_decision_older_than_a_persons_patch_does_not_apply(api, decide, lead, monkeypatch):
    # The person reopens the lead after the pipeline's decision was made but before it arrived.
    decided = clock.iso(clock.now() - 60)
    assert api.patch(lead, {"status": "dismissed"}).status == 200
    before = _lead(api, lead)
    assert decide(QUALIFIED, decision(lead, decided)) == "superseded"
    assert _lead(api, lead) == before
    # A decision made after the person's change applies (dismissed → new is the pipeline's too).
    assert api.patch(lead, {"status": "new"}).status == 200
    later = clock.iso(clock.now() + 2)
    assert decide(QUALIFIED, decision(lead, later)) == "applied"
    assert _lead(api, lead)["status"] == "qualified"


def test_a_persons_patch_after_a_decision_wins_even_if_the_decision_is_redelivered(api, decide, lead):
    earlier = clock.iso(clock.now() - 60)
    assert decide(QUALIFIED, decision(lead, earlier)) == "applied"
    assert api.patch(lead, {"status": "dismissed"}).status == 200
    assert decide(QUALIFIED, decision(lead, earlier)) == "superseded"
    assert _lead(api, lead)["status"] == "dismissed"


def test_an_impossible_transition_is_counted_logged_and_acknowledged(api, decide, lead, emitted, logs):
    before = _lead(api, lead)
    assert decide(ROUTED, decision(lead, T1)) == "impossible"  # new → routed
    assert _lead(api, lead) == before
    assert "LeadDecisionsImpossible" in emitted
    [line] = [json.loads(line) for line in logs if "not applicable" in line]
    assert (line["status"], line["target"], line["lead_id"]) == ("new", "routed", lead)


def test_an_unknown_other_workspace_or_merged_lead_is_counted_and_acknowledged(api, decide, lead, emitted):
    assert decide(QUALIFIED, decision("ld_" + "0" * 26, T1)) == "unknown_lead"
    assert decide(QUALIFIED, decision(lead, T1, workspace="ws-2")) == "unknown_lead"
    target = person(capture("orca.fan.2"))
    mark_merged(lead, target)
    assert decide(QUALIFIED, decision(lead, T1)) == "merged"
    assert emitted.count("LeadDecisionsUnknownLead") == 2
    assert "LeadDecisionsMerged" in emitted
    assert _lead(api, target)["status"] == "new"


@pytest.mark.parametrize(
    ("detail_type", "detail"),
    [
        (QUALIFIED, {"lead_id": "LEAD", "decided_at": T1}),
        (QUALIFIED, {"workspace_id": "ws-1", "lead_id": "LEAD"}),
        (QUALIFIED, {"workspace_id": "ws-1", "lead_id": "LEAD", "decided_at": "yesterday"}),
        (QUALIFIED, {"workspace_id": "ws-1", "lead_id": "LEAD", "decided_at": 1764057600}),
        (QUALIFIED, {"workspace_id": "ws-1", "lead_id": "LEAD", "decided_at": "2999-01-01T00:00:00Z"}),
        (QUALIFIED, {"workspace_id": "ws-1", "lead_id": "ld_x", "decided_at": T1}),
        (QUALIFIED, {"workspace_id": "ws-1", "lead_id": "LEAD", "decided_at": T1, "score": "high"}),
        (QUALIFIED, {"workspace_id": "ws-1", "lead_id": "LEAD", "decided_at": T1, "score": True}),
        (QUALIFIED, {"workspace_id": "ws-1", "lead_id": "LEAD", "decided_at": T1, "assignee": ""}),
        (ROUTED, {"workspace_id": "ws-1", "lead_id": "LEAD", "decided_at": T1, "route": ["a"]}),
        (DISMISSED, {"workspace_id": "ws-1", "lead_id": "LEAD", "decided_at": T1, "reason": "r" * 501}),
        (DISMISSED, {"workspace_id": "ws-1", "lead_id": "LEAD", "decided_at": T1, "status": "routed"}),
        (DISMISSED, ["ws-1", "LEAD"]),
        ("SocialLeadWon", {"workspace_id": "ws-1", "lead_id": "LEAD", "decided_at": T1}),
    ],
)
def test_a_malformed_decision_is_counted_and_changes_nothing(api, decide, lead, emitted, detail_type, detail):
    if isinstance(detail, dict) and detail.get("lead_id") == "LEAD":
        detail = {**detail, "lead_id": lead}
    before = _lead(api, lead)
    assert decide(detail_type, detail) == "malformed"
    assert _lead(api, lead) == before
    assert "LeadDecisionsMalformed" in emitted


def test_a_decision_from_another_source_is_not_applied(api, decide, lead):
    assert decide(QUALIFIED, decision(lead, T1), source="orcapulse.social-leads") == "malformed"
    assert _lead(api, lead)["status"] == "new"


def test_an_unchanged_decision_writes_nothing(api, decide, lead, bus):
    assert api.patch(lead, {"status": "qualified"}).status == 200
    bus.received()
    before = _lead(api, lead)
    assert decide(QUALIFIED, decision(lead, clock.iso(clock.now() + 2))) == "unchanged"
    assert _lead(api, lead) == before
    assert bus.received() == []


def test_logs_of_decisions_carry_no_personal_data(decide, lead, logs):
    decide(QUALIFIED, decision(lead, T1, reason="she wrote +351 912 345 678", assignee="user-ana"))
    decide(QUALIFIED, decision(lead, T1, reason=42))  # malformed: field names only
    assert not [line for line in logs if "912 345 678" in line]
    [malformed] = [json.loads(line) for line in logs if "malformed" in line]
    assert malformed["fields"] == ["reason"]


def test_a_transient_aws_fault_raises_so_the_invocation_is_retried(api, decide, lead):
    from orcapulse_tiktok.errors import TransientError

    with aws_calls(fail={"UpdateItem": 1}), pytest.raises(TransientError):
        decide(QUALIFIED, decision(lead, T1))
    assert _lead(api, lead)["status"] == "new"
    assert decide(QUALIFIED, decision(lead, T1)) == "applied"


def test_a_change_racing_the_decision_makes_it_evaluate_again(api, decide, lead, monkeypatch):
    from orcapulse_tiktok.data import lifecycle as store

    real = store.write_lifecycle
    raced: list[bool] = []

    def person_first(lead_id: str, **kwargs: Any) -> Any:
        if not raced:
            raced.append(True)
            assert api.patch(lead_id, {"labels": ["vip"]}).status == 200
        return real(lead_id, **kwargs)

    monkeypatch.setattr(store, "write_lifecycle", person_first)
    assert decide(QUALIFIED, decision(lead, clock.iso(clock.now() + 2))) == "applied"
    body = _lead(api, lead)
    assert (body["status"], body["labels"]) == ("qualified", ["vip"])
