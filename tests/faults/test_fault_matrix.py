"""Every outside call of every success path, made to fail: the answer is the documented one, no
partial record is left, no secret is shown, and running the same request again completes."""

from __future__ import annotations

from typing import Any

from tests.faults import report
from tests.faults.conftest import Case, baseline
from tests.faults.harness import SCENARIOS, assert_no_secret_in, environment


def test_the_baseline_is_deterministic_and_completes(path, tiktok_state):
    """The recorded sequence the matrix was generated from is the one a clean run makes."""
    scenario = SCENARIOS[path]
    with environment(tiktok_state) as env:
        ctx = scenario.setup(env)
        outcome, calls = scenario.record(env, ctx)
        assert_no_secret_in(outcome.shown, env, "the answer")
        assert [c.label for c in calls.calls] == [c.label for c in baseline(path)]
        assert outcome.status < 400
        assert outcome.detail in (
            "connected",
            "revoked",
            "accepted",
            "token",
            "caught_up",
            "updated",
            "applied",
            "merged",
            "erased",
        ), outcome
        scenario.after_fault(env, ctx, outcome)  # the invariants hold after a clean run too


def test_fault_then_clean_retry(case: Case, tiktok_state, request):
    scenario = SCENARIOS[case.path]
    row: dict[str, Any] = {
        "path": case.path,
        "k": case.k + 1,
        "call": case.call.label,
        "fault": case.fault,
        "ok": False,
    }
    row.update(answer="-", invariants="-", retry="-")
    report.record(request.node, row)
    with environment(tiktok_state) as env:
        ctx = scenario.setup(env)
        outcome, calls = scenario.record(env, ctx, fail_at=case.k, fault=case.fault)
        row["answer"] = str(outcome)
        # The run took the recorded path up to the fault, and the fault hit the call it names.
        assert [c.label for c in calls.calls[: case.k]] == [c.label for c in case.baseline[: case.k]]
        assert calls.injected == case.call
        assert_no_secret_in(outcome.shown, env, "the answer")
        expected = scenario.expectation(list(case.baseline), case.k, case.fault)
        assert outcome.key == expected, f"expected {expected}, got {outcome}"
        scenario.after_fault(env, ctx, outcome)
        row["invariants"] = "OK"

        again = scenario.rerun(env, ctx, outcome)
        row["retry"] = str(again)
        assert_no_secret_in(again.shown, env, "the retried answer")
        scenario.after_rerun(env, ctx, outcome, again)
        row["retry"] += " OK"
    row["ok"] = True
