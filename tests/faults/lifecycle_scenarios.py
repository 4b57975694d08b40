"""The lifecycle's success paths in the fault matrix: a person's PATCH and a pipeline decision.

Both are one read of the lead and one conditional UpdateItem; the announcement follows from the
table's stream (read in the checks, as Lambda's event source mapping would). A fault at either
call leaves the lead as it was — or, when the UpdateItem's answer was lost, fully changed — and
never half changed; the retry completes it, and the change is announced exactly once."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.faults.harness import Env, Expectations, Outcome, Scenario, _lost_at, cold_container, http_outcome
from tests.support.deployment import CONTEXT
from tests.support.leads import capture, record
from tests.support.lifecycle import QUALIFIED, LeadUpdates, decision, decision_event
from tests.support.webhooks import BusCapture, lead_stream

WORKSPACE = "ws-fault-1"
UPDATE = "dynamodb.UpdateItem(LeadsTable)"
CHANGE = {"status": "qualified", "labels": ["vip"]}


def _lead_with_bus(env: Env) -> dict[str, Any]:
    """A person's lead (its capture already announced), the lead API and a subscriber of the bus."""
    lead_id = record(capture("fault.fan", workspace_id=WORKSPACE))
    publisher = env.functions("lead_publisher")
    stream = lead_stream(
        CONTEXT.resources["LeadsTable"]["Ref"], lambda event: publisher.lambda_handler(event, env.context)
    )
    bus = BusCapture(env.aws.event_bus, pump=stream.pump)
    bus.received()
    api = LeadUpdates(env.functions("lead_update"), env.functions("leads_query"), env.context)
    before = api.get(lead_id, workspace=WORKSPACE).body
    cold_container()
    return {"lead_id": lead_id, "bus": bus, "api": api, "before": before, "updates": Counter()}


def _lead(ctx: dict[str, Any]) -> dict[str, Any]:
    answer = ctx["api"].get(ctx["lead_id"], workspace=WORKSPACE)
    assert answer.status == 200, answer
    return dict(answer.body)


def _updates(ctx: dict[str, Any]) -> Counter[str]:
    for event in ctx["bus"].received():
        assert event["detail-type"] == "SocialLeadUpdated", event["detail-type"]
        ctx["updates"][event["detail"]["event_id"]] += 1
    return Counter(ctx["updates"])


def _unchanged_or_whole(ctx: dict[str, Any], *, applied: bool, fields: list[str]) -> None:
    """The lead is as before and nothing was announced, or (``applied``) it holds the whole change,
    one version on, announced once."""
    lead, before = _lead(ctx), ctx["before"]
    updates = _updates(ctx)
    if not applied:
        assert lead == before, "a failed change left the lead changed"
        assert updates == Counter(), f"a change that was not made was announced: {updates}"
        return
    assert lead["version"] == before["version"] + 1
    assert lead["status"] == "qualified"
    assert [h["field"] for h in lead["history"]] == fields, "the change was applied in part or twice"
    assert updates == Counter({f"{ctx['lead_id']}:v{lead['version']}": 1}), f"not announced once: {updates}"


class LeadUpdate(Scenario):
    """PATCH /social-leads/{lead_id} with the ETag the person saw (a cold container)."""

    name = "lead_update"
    expected: Expectations = {}

    def setup(self, env: Env) -> dict[str, Any]:
        ctx = _lead_with_bus(env)
        ctx["etag"] = f'"{ctx["before"]["version"]}"'
        return ctx

    def run(self, env: Env, ctx: dict[str, Any]) -> Outcome:
        answer = ctx["api"].patch(ctx["lead_id"], CHANGE, if_match=ctx["etag"], workspace=WORKSPACE)
        return Outcome(
            answer.status, "updated" if answer.status == 200 else str(answer.code), shown=str(answer)
        )

    def after_fault(self, env: Env, ctx: dict[str, Any], outcome: Outcome) -> None:
        applied = outcome.status == 200 or _lost_at(ctx, UPDATE)
        _unchanged_or_whole(ctx, applied=applied, fields=["status", "labels"])

    def rerun(self, env: Env, ctx: dict[str, Any], first: Outcome) -> Outcome:
        # The client sends the same PATCH again; a 412 (its lost change was made) sends it to GET
        # the lead and ask again, which is then a no-op.
        cold_container()
        again = self.run(env, ctx)
        if again.status == 412:
            ctx["etag"] = ctx["api"].etag(ctx["lead_id"], workspace=WORKSPACE)
            again = self.run(env, ctx)
        return again

    def after_rerun(self, env: Env, ctx: dict[str, Any], first: Outcome, again: Outcome) -> None:
        assert again.key == (200, "updated"), again
        _unchanged_or_whole(ctx, applied=True, fields=["status", "labels"])
        assert _lead(ctx)["labels"] == ["vip"]


class LeadDecision(Scenario):
    """A pipeline decision (SocialLeadQualified) delivered to lead_decisions; an invocation that
    raises is retried by Lambda with the same event."""

    name = "lead_decision"
    expected: Expectations = {}

    def setup(self, env: Env) -> dict[str, Any]:
        ctx = _lead_with_bus(env)
        detail = decision(ctx["lead_id"], "2026-11-25T08:00:00Z", workspace=WORKSPACE, reason="asked a price")
        ctx["event"] = decision_event(QUALIFIED, detail)
        return ctx

    def run(self, env: Env, ctx: dict[str, Any]) -> Outcome:
        from orcapulse_tiktok.errors import DomainError

        try:
            result = env.invoke("lead_decisions", ctx["event"])
        except DomainError as exc:
            return Outcome(exc.status, exc.code, shown=f"{type(exc).__name__}: {exc}")
        return http_outcome({"statusCode": 200, **result}, str(result["outcome"]))

    def after_fault(self, env: Env, ctx: dict[str, Any], outcome: Outcome) -> None:
        applied = outcome.status == 200 or _lost_at(ctx, UPDATE)
        _unchanged_or_whole(ctx, applied=applied, fields=["status"])

    def rerun(self, env: Env, ctx: dict[str, Any], first: Outcome) -> Outcome:
        cold_container()
        return self.run(env, ctx)

    def after_rerun(self, env: Env, ctx: dict[str, Any], first: Outcome, again: Outcome) -> None:
        applied_before = first.status == 200 or _lost_at(ctx, UPDATE)
        assert again.key == (200, "duplicate" if applied_before else "applied"), again
        _unchanged_or_whole(ctx, applied=True, fields=["status"])
        assert _lead(ctx)["history"][0]["by"] == "pipeline"
