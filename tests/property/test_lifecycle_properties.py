"""The lifecycle's inputs fuzzed through the real handlers against moto: any PATCH body and
If-Match, any pipeline decision detail. Nothing makes a 5xx or an exception; a refused change
changes nothing; an accepted one moves the version by exactly one and the status only along the
transitions of DESIGN §9."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from orcapulse_tiktok.lifecycle import allowed
from orcapulse_tiktok.platforms import LEAD_STATUSES

from tests.support.leads import capture, person
from tests.support.lifecycle import DISMISSED, QUALIFIED, ROUTED, LeadUpdates, decision_event

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=80),
    st.sampled_from([*LEAD_STATUSES, "user-ana", "vip", " vip", "", "\x00"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=22) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
)
patch_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "status": st.sampled_from(LEAD_STATUSES) | json_values,
            "assignee": st.none() | st.text(max_size=70) | json_values,
            "labels": st.lists(st.text(min_size=1, max_size=70), max_size=22) | json_values,
        },
    ),
)
if_matches = st.one_of(
    st.none(), st.just("current"), st.text(max_size=30), st.sampled_from(['"0"', "*", 'W/"1"', '"1", "2"'])
)


@pytest.fixture
def api(load_function, lambda_context, aws) -> LeadUpdates:
    return LeadUpdates(load_function("lead_update"), load_function("leads_query"), lambda_context)


@pytest.fixture
def lead(aws) -> str:
    return person(capture("fuzz.fan"))


@given(body=patch_bodies, if_match=if_matches)
@FUZZ
def test_any_patch_is_a_valid_change_or_a_4xx_that_changes_nothing(api, lead, body, if_match):
    before = api.get(lead).body
    answer = api.patch(lead, body, if_match=if_match)
    assert answer.status in (200, 400, 409, 412, 428), answer
    after = api.get(lead).body
    if answer.status != 200:
        assert after == before
        return
    assert answer.body == after
    assert after["version"] in (before["version"], before["version"] + 1)
    assert allowed(before["status"], after["status"])
    if after["version"] == before["version"]:
        assert after == before


detail_fields = st.fixed_dictionaries(
    {},
    optional={
        "workspace_id": st.just("ws-1") | json_values,
        "lead_id": st.just("LEAD") | json_values,
        "decided_at": st.sampled_from(["2026-11-25T08:00:00Z", "2026-11-25T08:00:00.5+01:00"]) | json_values,
        "score": st.floats() | json_values,
        "route": st.text(max_size=140) | json_values,
        "assignee": st.text(max_size=70) | json_values,
        "reason": st.text(max_size=600) | json_values,
        "extra": json_values,
    },
)


@given(
    detail_type=st.sampled_from([QUALIFIED, ROUTED, DISMISSED]) | st.text(max_size=30),
    detail=detail_fields | json_values,
)
@FUZZ
def test_any_decision_is_acknowledged_with_an_outcome(
    api, lead, load_function, lambda_context, detail_type, detail
):
    module = load_function("lead_decisions")
    if isinstance(detail, dict) and detail.get("lead_id") == "LEAD":
        detail = {**detail, "lead_id": lead}
    before = api.get(lead).body
    result: dict[str, Any] = module.lambda_handler(decision_event(detail_type, detail), lambda_context)
    outcomes = {
        "applied",
        "unchanged",
        "duplicate",
        "superseded",
        "impossible",
        "unknown_lead",
        "merged",
        "malformed",
    }
    assert result["outcome"] in outcomes, json.dumps(result)
    after = api.get(lead).body
    if result["outcome"] != "applied":
        assert after == before
    else:
        assert after["version"] == before["version"] + 1
        assert allowed(before["status"], after["status"])
