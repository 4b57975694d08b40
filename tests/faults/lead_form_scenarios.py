"""The lead-form success paths of the fault matrix: the advertiser callback, an accepted delivery to
the leads webhook (DESIGN §10) — small, and over the archive's item limit, its body an S3 object
(§11) — and the erasure of a person such a delivery carried. Built on the harness's scenarios and
invariants."""

from __future__ import annotations

from collections import Counter
from typing import Any

from orcapulse_local.ads_state import AdsState
from tests.faults.harness import (
    WORKSPACES,
    Env,
    Expectations,
    Outcome,
    Scenario,
    _lost_at,
    assert_no_secret_in,
    callback_outcome,
    cold_container,
    error_code,
    http_outcome,
)
from tests.faults.merge_erase import assert_erasure_retried
from tests.support.ads_fake import AdsFake
from tests.support.connect import ads_callback, approve_ads
from tests.support.deployment import FRONTEND_URL
from tests.support.events import http_event, json_body
from tests.support.lifecycle import erase_event
from tests.support.webhooks import archived_deliveries, interaction_items, lead_items, leads_finding

ADVERTISER = "7300000000000000777"
ROUTE_PREFIX = "ads-route#"
# Two entries of 45 long answers each: a body over the archive's 320 KiB item threshold.
LONG_ANSWERS = 45
LONG_ANSWER = "I would like the large orca plush, two stickers and a call after six. " * 55


def _ads(env: Env) -> AdsFake:
    assert env.ads is not None
    return env.ads


def _state(env: Env) -> AdsState:
    return _ads(env).state


def integrations(env: Env) -> dict[str, dict[str, Any]]:
    """The integration records (advertiser route items apart)."""
    return {
        i["integration_id"]["S"]: i
        for i in env.aws.items("IntegrationsTable")
        if not i["workspace_id"]["S"].startswith(ROUTE_PREFIX)
    }


def routes(env: Env) -> set[str]:
    return {
        i["integration_id"]["S"]
        for i in env.aws.items("IntegrationsTable")
        if i["workspace_id"]["S"].startswith(ROUTE_PREFIX)
    }


def assert_ads_storage_clean(env: Env) -> None:
    """Every integration has its token secret and its route items, and nothing else is left: no
    secret, no route without its integration, no issued secret in any table."""
    stored, secrets = set(integrations(env)), set(env.aws.token_secrets())
    assert stored == secrets, f"integrations {sorted(stored)} vs token secrets {sorted(secrets)}"
    assert {r.split("#", 1)[0] for r in routes(env)} == stored, (
        "a route without its integration, or the reverse"
    )
    for table in ("IntegrationsTable", "OAuthStatesTable", "LeadsTable"):
        assert_no_secret_in(str(env.aws.items(table)), env, table)


def connected_ads(env: Env, workspace: str) -> str:
    cold_container()
    params = approve_ads(
        env.functions, env.context, _ads(env), [ADVERTISER], workspace=workspace, user=workspace
    )
    cold_container()
    outcome = callback_outcome(ads_callback(env.functions, env.context, params))
    assert outcome.detail == "connected", outcome
    return str(outcome.extra["integration_id"])


class AdsCallback(Scenario):
    """GET /integrations/tiktok-ads/oauth/callback after the advertiser approved (a cold container).
    The subscribe steps come after the connect is stored: a fault there leaves the advertiser
    pending (still ``connected``) for the scheduled check, never a second subscription."""

    name = "ads-callback"
    expected: Expectations = {
        "business.ads.access_token": (302, "token_exchange_failed"),
        "business.ads.advertisers": (302, "profile_fetch_failed"),
        # The connect is stored by then: what follows completes or leaves a pending subscription.
        "dynamodb.GetItem(IntegrationsTable)#3": (302, "connected"),
        "secretsmanager.GetSecretValue(token secret)#2": (302, "connected"),
        "business.ads.subscriptions": (302, "connected"),
        "business.ads.subscribe": (302, "connected"),
        "dynamodb.UpdateItem(IntegrationsTable)#2": (302, "connected"),
        # A revoke of a failed connect is best effort (nothing was stored).
        "business.ads.revoke_token": (302, "internal_error"),
    }
    default = (302, "internal_error")

    def setup(self, env: Env) -> dict[str, Any]:
        state = _state(env)
        state.add_advertiser(ADVERTISER)
        state.add_form(ADVERTISER)
        return self._approve(env)

    def _approve(self, env: Env) -> dict[str, Any]:
        cold_container()
        params = approve_ads(env.functions, env.context, _ads(env), [ADVERTISER], workspace=WORKSPACES[0])
        cold_container()
        return {"params": params, "tokens_before": set(_state(env).tokens)}

    def run(self, env: Env, ctx: dict[str, Any]) -> Outcome:
        return callback_outcome(ads_callback(env.functions, env.context, ctx["params"]))

    def after_fault(self, env: Env, ctx: dict[str, Any], outcome: Outcome) -> None:
        assert outcome.status == 302, outcome
        assert outcome.extra["location"].startswith(FRONTEND_URL + "/integrations/tiktok?")
        assert_ads_storage_clean(env)
        state = _state(env)
        if outcome.detail != "connected":
            assert integrations(env) == {}, "a failed callback stored an integration"
            assert state.subscriptions == {}
            obtained = (
                set()
                if _lost_at(ctx, "business.ads.access_token")
                else set(state.tokens) - ctx["tokens_before"]
            )
            assert all(state.tokens[t].get("revoked") for t in obtained), (
                "a failed callback left a live token"
            )
            return
        [record] = integrations(env).values()
        pending = set(record.get("pending_subscriptions", {}).get("SS", []))
        # Subscribed once at most (a lost subscribe is adopted later, never repeated).
        assert len(state.subscriptions) <= 1
        assert pending in (set(), {ADVERTISER})

    def rerun(self, env: Env, ctx: dict[str, Any], first: Outcome) -> Outcome:
        return self.run(env, self._approve(env))  # the state is single-use: the user starts over

    def after_rerun(self, env: Env, ctx: dict[str, Any], first: Outcome, again: Outcome) -> None:
        assert again.detail == "connected", again
        assert_ads_storage_clean(env)
        [(integration_id, record)] = integrations(env).items()
        assert again.extra["integration_id"] == integration_id
        assert record["status"]["S"] == "active"
        assert "pending_subscriptions" not in record, "the reconnect left a subscription pending"
        [subscription] = _state(env).subscriptions.values()
        assert subscription["subscription_detail"]["advertiser_id"] == ADVERTISER


class LeadsWebhook(Scenario):
    """POST /webhooks/tiktok/leads: two signed form entries of an advertiser two workspaces
    connected (a cold container). Each workspace gets each person's lead with one interaction."""

    name = "leads-webhook"
    expected: Expectations = {
        # last_event_at is bookkeeping on the integration: best effort.
        "dynamodb.UpdateItem(IntegrationsTable)": (200, "accepted"),
    }

    def setup(self, env: Env) -> dict[str, Any]:
        state = _state(env)
        state.add_advertiser(ADVERTISER)
        page = state.add_form(ADVERTISER)
        for workspace in WORKSPACES:
            connected_ads(env, workspace)
        entries = [
            state.submit_lead(ADVERTISER, page, {"name": f"Ana {n}", "email": f"ana{n}@example.com"})
            for n in (1, 2)
        ]
        cold_container()
        return {"body": state.delivery(entries), "expected": 2 * len(entries)}

    def run(self, env: Env, ctx: dict[str, Any]) -> Outcome:
        body = ctx["body"]
        response = env.invoke(
            "leads_webhook",
            http_event(
                "POST",
                "/webhooks/tiktok/leads",
                headers={"X-Open-Signature": _state(env).signature(body)},
                body=body,
            ),
        )
        if response["statusCode"] == 200:
            return http_outcome(response, str(json_body(response)["status"]))
        return http_outcome(response, error_code(response))

    def _counts(self, env: Env) -> Counter[str]:
        return Counter(item["interaction_count"]["N"] for item in lead_items(env.aws.items("LeadsTable")))

    def after_fault(self, env: Env, ctx: dict[str, Any], outcome: Outcome) -> None:
        assert_ads_storage_clean(env)
        counts = self._counts(env)
        assert set(counts) <= {"1"}, f"a lead counted twice: {counts}"
        assert sum(counts.values()) <= ctx["expected"]
        if outcome.status == 200:
            assert sum(counts.values()) == ctx["expected"]

    def rerun(self, env: Env, ctx: dict[str, Any], first: Outcome) -> Outcome:
        cold_container()
        return self.run(env, ctx)

    def after_rerun(self, env: Env, ctx: dict[str, Any], first: Outcome, again: Outcome) -> None:
        assert again.status == 200, again
        assert again.detail in ("accepted", "duplicate"), again
        assert self._counts(env) == Counter({"1": ctx["expected"]}), "not one lead per person and workspace"
        assert len(interaction_items(env.aws.items("LeadsTable"))) == ctx["expected"]
        # The delivery is in the archive once, and an erasure of each lead it made finds it.
        [kept] = archived_deliveries(env.aws)
        leads = {i["lead_id"]["S"] for i in lead_items(env.aws.items("LeadsTable"))}
        assert leads_finding(env.aws, kept["pk"]["S"].removeprefix("D#")) == leads, (
            "the archive does not know which leads the delivery made"
        )


def assert_no_item_without_its_body(env: Env) -> None:
    """An archive item that names an S3 body has it: the object is written first, deleted last."""
    bodies = env.aws.bodies()
    for item in archived_deliveries(env.aws):
        if "body_key" in item:
            assert item["body_key"]["S"] in bodies, "an archive item names a missing S3 body"


def large_delivery(env: Env, people: tuple[int, ...] = (1, 2)) -> bytes:
    """A signed-to-be body of one form entry per person, each with long answers: over the item limit."""
    from orcapulse_tiktok.data import delivery_bodies

    state = _state(env)
    page = state.add_form(ADVERTISER)
    entries = [
        state.submit_lead(
            ADVERTISER,
            page,
            {
                "name": f"Ana {n}",
                "email": f"ana{n}@example.com",
                **{f"note_{k}": f"{n}.{k} {LONG_ANSWER}" for k in range(LONG_ANSWERS)},
            },
        )
        for n in people
    ]
    body = state.delivery(entries)
    assert delivery_bodies.overflows(body)
    return bytes(body)


class LargeLeadsWebhook(LeadsWebhook):
    """The leads webhook with a delivery over the archive's item limit: its body is an S3 object
    (PutObject) written before the item that names it (PutItem). A fault on either is a 503 and
    TikTok's redelivery writes the same object and item again."""

    name = "leads-webhook-s3"

    def setup(self, env: Env) -> dict[str, Any]:
        state = _state(env)
        state.add_advertiser(ADVERTISER)
        for workspace in WORKSPACES:
            connected_ads(env, workspace)
        cold_container()
        return {"body": large_delivery(env), "expected": 2 * len(WORKSPACES)}

    def after_fault(self, env: Env, ctx: dict[str, Any], outcome: Outcome) -> None:
        super().after_fault(env, ctx, outcome)
        assert_no_item_without_its_body(env)

    def after_rerun(self, env: Env, ctx: dict[str, Any], first: Outcome, again: Outcome) -> None:
        super().after_rerun(env, ctx, first, again)
        [item] = archived_deliveries(env.aws)
        assert "body" not in item
        assert env.aws.bodies() == {item["body_key"]["S"]: ctx["body"]}


class EraseLeadFormPerson(Scenario):
    """DELETE /social-leads/{id} of a person a large lead-form delivery carried: the archived
    delivery goes whole — its item, then its S3 body (DeleteObject), then its references."""

    name = "erase-lead-form"

    def setup(self, env: Env) -> dict[str, Any]:
        state = _state(env)
        state.add_advertiser(ADVERTISER)
        connected_ads(env, WORKSPACES[0])
        body = large_delivery(env)
        cold_container()
        response = env.invoke(
            "leads_webhook",
            http_event(
                "POST",
                "/webhooks/tiktok/leads",
                headers={"X-Open-Signature": state.signature(body)},
                body=body,
            ),
        )
        assert response["statusCode"] == 200, response
        leads = lead_items(env.aws.items("LeadsTable"))
        erased = next(i["lead_id"]["S"] for i in leads if "ana1@" in str(i.get("contact", "")))
        assert len(env.aws.bodies()) == 1
        cold_container()
        return {"lead": erased}

    def run(self, env: Env, ctx: dict[str, Any]) -> Outcome:
        response = env.invoke("lead_erase", erase_event(ctx["lead"], workspace=WORKSPACES[0]))
        if response["statusCode"] == 204:
            return http_outcome(response, "erased")
        return http_outcome(response, error_code(response))

    def after_fault(self, env: Env, ctx: dict[str, Any], outcome: Outcome) -> None:
        assert_no_item_without_its_body(env)
        if outcome.status == 204:
            self._forgotten(env, ctx)

    def _forgotten(self, env: Env, ctx: dict[str, Any]) -> None:
        assert archived_deliveries(env.aws) == [], "the erased person's delivery is still archived"
        assert env.aws.bodies() == {}, "the erased person's delivery body is still in S3"
        refs = [i for i in env.aws.items("DeliveriesTable") if i["pk"]["S"] == f"R#{ctx['lead']}"]
        assert refs == [], "a reference to the erased person's delivery is left"

    def rerun(self, env: Env, ctx: dict[str, Any], first: Outcome) -> Outcome:
        cold_container()
        return self.run(env, ctx)

    def after_rerun(self, env: Env, ctx: dict[str, Any], first: Outcome, again: Outcome) -> None:
        assert_erasure_retried(ctx, first, again)
        self._forgotten(env, ctx)
