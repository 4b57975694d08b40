"""The fault matrix's merge and erasure paths (docs/lifecycle-merge-erase.md): every AWS call of a
clean ``POST /social-leads/{id}/merge`` and ``DELETE /social-leads/{id}`` made to fail (``lost``
included), with the invariants that hold after any fault — no interaction lost or counted twice,
no lead listed without its interactions — and the same request run again completing the job."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.faults.harness import WORKSPACES, Env, Outcome, Scenario, error_code, http_outcome
from tests.support.deployment import CONTEXT
from tests.support.events import json_body
from tests.support.leads import capture, person
from tests.support.lifecycle import erase_event, everything_stored, merge_event
from tests.support.webhooks import BusCapture, lead_items, lead_stream

WORKSPACE = WORKSPACES[0]
BASE_MS = 1_790_000_000_000


def _bus(env: Env) -> BusCapture:
    publisher = env.functions("lead_publisher")
    stream = lead_stream(
        CONTEXT.resources["LeadsTable"]["Ref"], lambda event: publisher.lambda_handler(event, env.context)
    )
    bus = BusCapture(env.aws.event_bus, pump=stream.pump)
    bus.received()  # what seeding announced
    return bus


def _partitions(env: Env) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for item in env.aws.items("LeadsTable"):
        out.setdefault(item["pk"]["S"].removeprefix("L#"), []).append(item)
    return out


def _live_interactions(items: list[dict[str, Any]]) -> set[str]:
    return {i["interaction_id"]["S"] for i in items if i["sk"]["S"].startswith("I#") and "moved_to" not in i}


def _lead(items: list[dict[str, Any]]) -> dict[str, Any]:
    [lead] = lead_items(items)
    return lead


class MergeLeads(Scenario):
    """POST /social-leads/{target}/merge of two other leads of the same person (a cold container)."""

    name = "merge"

    def setup(self, env: Env) -> dict[str, Any]:
        target = person(
            capture("mia", workspace_id=WORKSPACE, at_ms=BASE_MS + 5000),
            capture("mia", workspace_id=WORKSPACE, kind="dm", at_ms=BASE_MS + 9000),
        )
        b = person(capture("mia_alt", workspace_id=WORKSPACE, at_ms=BASE_MS + 1000))
        c = person(capture("mia_b", workspace_id=WORKSPACE, kind="dm", at_ms=BASE_MS + 20_000))
        parts = _partitions(env)
        return {
            "target": target,
            "sources": [b, c],
            "all": set().union(*(_live_interactions(parts[x]) for x in (target, b, c))),
            "bus": _bus(env),
            "updated": Counter(),
        }

    def run(self, env: Env, ctx: dict[str, Any]) -> Outcome:
        body = {"lead_ids": ctx["sources"]}
        response = env.invoke("lead_merge", merge_event(ctx["target"], body, workspace=WORKSPACE))
        if response["statusCode"] == 200:
            assert json_body(response)["interaction_count"] == len(ctx["all"])
            return http_outcome(response, "merged")
        return http_outcome(response, error_code(response))

    def _announced(self, ctx: dict[str, Any]) -> Counter[str]:
        for event in ctx["bus"].received():
            assert event["detail-type"] == "SocialLeadUpdated", event["detail-type"]
            ctx["updated"][event["detail"]["event_id"]] += 1
        return Counter(ctx["updated"])

    def after_fault(self, env: Env, ctx: dict[str, Any], outcome: Outcome) -> None:
        parts = _partitions(env)
        target = _lead(parts[ctx["target"]])
        live = {lead_id: _live_interactions(items) for lead_id, items in parts.items()}
        # No interaction lost: each is live on its source or on the target (both, mid-move).
        assert set().union(*live.values()) == ctx["all"], "an interaction was lost"
        # The target counts what it holds, each once, whether or not the count ran yet.
        counted = target.get("counted", {}).get("SS", [])
        assert int(target["interaction_count"]["N"]) == len(counted)
        assert {f"ix_{c}" for c in counted} <= {i[:15] for i in live[ctx["target"]]}
        for source in ctx["sources"]:
            lead = _lead(parts[source])
            if "merged_into" in lead:  # pointed at the target: out of the listing
                assert lead["merged_into"]["S"] == ctx["target"]
                assert "activity_key" not in lead
            else:  # untouched: listed, with its own interactions
                assert "activity_key" in lead
                assert int(lead["interaction_count"]["N"]) == len(live[source])
        self._announced(ctx)
        if outcome.status == 200:
            self._merged(env, ctx)

    def _merged(self, env: Env, ctx: dict[str, Any]) -> None:
        parts = _partitions(env)
        target = _lead(parts[ctx["target"]])
        assert _live_interactions(parts[ctx["target"]]) == ctx["all"]
        assert int(target["interaction_count"]["N"]) == len(ctx["all"])
        for source in ctx["sources"]:
            assert _live_interactions(parts[source]) == set()
            assert _lead(parts[source])["merged_into"]["S"] == ctx["target"]
            assert "message" not in _lead(parts[source])
        announced = self._announced(ctx)
        assert f"{ctx['target']}:v{target['version']['N']}" in announced, announced

    def rerun(self, env: Env, ctx: dict[str, Any], first: Outcome) -> Outcome:
        return self.run(env, ctx)

    def after_rerun(self, env: Env, ctx: dict[str, Any], first: Outcome, again: Outcome) -> None:
        assert again.key == (200, "merged"), again
        self._merged(env, ctx)


class EraseLead(Scenario):
    """DELETE /social-leads/{id} of a person with two interactions and a lead merged in."""

    name = "erase"
    needles = ("erin_77", "erin_alt", "secret plans of erin")

    def setup(self, env: Env) -> dict[str, Any]:
        from orcapulse_tiktok.merge import merge

        lead = person(
            capture("erin_77", workspace_id=WORKSPACE, message="secret plans of erin"),
            capture("erin_77", workspace_id=WORKSPACE, kind="dm"),
        )
        alt = person(capture("erin_alt", workspace_id=WORKSPACE))
        merge(WORKSPACE, lead, [alt])
        return {"lead": lead, "alt": alt, "bus": _bus(env), "erased": Counter()}

    def run(self, env: Env, ctx: dict[str, Any]) -> Outcome:
        response = env.invoke("lead_erase", erase_event(ctx["lead"], workspace=WORKSPACE))
        if response["statusCode"] == 204:
            return http_outcome(response, "erased")
        return http_outcome(response, error_code(response))

    def _announced(self, ctx: dict[str, Any]) -> Counter[str]:
        for event in ctx["bus"].received():
            assert event["detail-type"] == "SocialLeadErased", event["detail-type"]
            ctx["erased"][event["detail"]["lead_id"]] += 1
        return Counter(ctx["erased"])

    def after_fault(self, env: Env, ctx: dict[str, Any], outcome: Outcome) -> None:
        parts = _partitions(env)
        lead = _lead(parts[ctx["lead"]])
        if "erased_ms" not in lead:  # not started: the person is whole, listed
            assert "activity_key" in lead
            assert int(lead["interaction_count"]["N"]) == len(_live_interactions(parts[ctx["lead"]]))
        elif "erasing" not in lead:  # the tombstone is written last: nothing else is left
            assert set(parts) == {ctx["lead"], ctx["alt"]}
            assert all(len(items) == 1 for items in parts.values())
        else:  # started: out of the listing, the rest of it goes on the retry
            assert "activity_key" not in lead
        if outcome.status == 204:
            self._erased(env, ctx)

    def _erased(self, env: Env, ctx: dict[str, Any]) -> None:
        text = everything_stored(env.aws)
        assert [n for n in self.needles if n in text] == []
        parts = _partitions(env)
        assert set(parts) == {ctx["lead"], ctx["alt"]}
        assert all(len(items) == 1 and "first_seen_ms" not in items[0] for items in parts.values())
        announced = self._announced(ctx)
        assert set(announced) == {ctx["lead"], ctx["alt"]}, announced

    def rerun(self, env: Env, ctx: dict[str, Any], first: Outcome) -> Outcome:
        return self.run(env, ctx)

    def after_rerun(self, env: Env, ctx: dict[str, Any], first: Outcome, again: Outcome) -> None:
        assert_erasure_retried(ctx, first, again)
        self._erased(env, ctx)


def assert_erasure_retried(ctx: dict[str, Any], first: Outcome, again: Outcome) -> None:
    """The retry of an erasure: 204, or — when the first attempt was done already (a tombstone
    whose answer was lost took effect) — 404."""
    if first.status == 204 or ctx.get("fault") == "lost":
        assert again.key in ((204, "erased"), (404, "lead_not_found")), again
    else:
        assert again.key == (204, "erased"), again
