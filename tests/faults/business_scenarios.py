"""The business account paths of the fault matrix (DESIGN §8): the business callback, the
disconnect of a business account (revoke at ``tt_user/oauth2/revoke/``) and the scheduled
catch-up. TikTok API for Business calls are labelled ``business.<endpoint>``."""

from __future__ import annotations

import time
from typing import Any

from orcapulse_local.business_state import listed_message
from tests.faults.harness import (
    WORKSPACES,
    ConnectCallback,
    Disconnect,
    Env,
    Expectations,
    Outcome,
    Scenario,
    _lost_at,
    assert_storage_clean,
    callback_outcome,
    cold_container,
    records,
)
from tests.support.connect import approve_business as approve_business_as
from tests.support.connect import callback
from tests.support.webhooks import interaction_items, lead_items, message_content

BUSINESS_ID = "biz-open-id-fault"
VIDEO = "7300000000000000501"


def approve_business(env: Env, workspace: str) -> dict[str, str]:
    """OAuth start with ``account_type=business``, then consent at TikTok as ``BUSINESS_ID``."""
    return approve_business_as(env.functions, env.context, env.business, BUSINESS_ID, workspace=workspace)


def connected_business(env: Env, workspace: str) -> str:
    cold_container()
    params = approve_business(env, workspace)
    cold_container()
    outcome = callback_outcome(callback(env.functions, env.context, params))
    assert outcome.detail == "connected", outcome
    return str(outcome.extra["integration_id"])


def business_live(env: Env, tokens: dict[str, Any]) -> bool:
    """Whether a stored business token pair still works at TikTok."""
    state = env.business.state
    access = state.access_tokens.get(tokens["access_token"])
    refresh = state.refresh_tokens.get(tokens["refresh_token"])
    return bool(access and not access.get("revoked") and refresh and not refresh["dead"])


class BusinessCallback(ConnectCallback):
    """The callback of a business connect: ``tt_user/oauth2/token/``, ``business/get/``, the vault,
    the record; every failure stores nothing and revokes a token it obtained."""

    name = "business-callback"
    expected: Expectations = {
        "business.token": (302, "token_exchange_failed"),
        "business.profile": (302, "profile_fetch_failed"),
    }

    token_label = "business.token"

    def _approve(self, env: Env) -> dict[str, Any]:
        cold_container()
        params = approve_business(env, WORKSPACES[0])
        cold_container()
        return {"params": params, "tokens_before": set(self._tokens(env))}

    def _tokens(self, env: Env) -> dict[str, dict[str, Any]]:
        return env.business.state.access_tokens

    def _live(self, env: Env, tokens: dict[str, Any]) -> bool:
        return business_live(env, tokens)

    def after_rerun(self, env: Env, ctx: dict[str, Any], first: Outcome, again: Outcome) -> None:
        super().after_rerun(env, ctx, first, again)
        [item] = records(env).values()
        assert item["account_type"]["S"] == "business"


class BusinessRevoke(Disconnect):
    """DELETE of a business integration: revoke at ``tt_user/oauth2/revoke/``, then secret, record."""

    name = "business-revoke"
    expected: Expectations = {
        "secretsmanager.GetSecretValue(token secret)": (200, "revoked"),
        "business.revoke": (200, "not_revoked"),
    }
    revoke_label = "business.revoke"

    def setup(self, env: Env) -> dict[str, Any]:
        integration_id = connected_business(env, WORKSPACES[0])
        tokens = env.aws.token_secrets()[integration_id]
        cold_container()
        return {"integration_id": integration_id, "tokens": tokens}

    def _revoked_at_tiktok(self, env: Env, ctx: dict[str, Any]) -> bool:
        return bool(env.business.state.access_tokens[ctx["tokens"]["access_token"]].get("revoked"))


class BusinessCatchup(Scenario):
    """The scheduled catch-up of one business integration whose comment and DM webhooks never came:
    both become leads, with the webhook's ids. A failed integration keeps its watermark (the next
    run reads the same window again); what it added before the fault answers ``duplicate`` then."""

    name = "business-catchup"
    # A failure inside one integration is counted and logged; the run itself succeeds.
    default = (200, "failed")
    expected: Expectations = {
        # Before any integration: the run fails and the schedule's retry runs it again.
        "secretsmanager.GetSecretValue(TikTokBusinessAppSecret)": (503, "temporarily_unavailable"),
        "dynamodb.Query(IntegrationsTable/by_catchup)": (503, "temporarily_unavailable"),
        # last_event_at is bookkeeping on the integration: best effort, as for the webhook.
        "dynamodb.UpdateItem(IntegrationsTable)#1": (200, "caught_up"),
    }

    def setup(self, env: Env) -> dict[str, Any]:
        from orcapulse_tiktok.people import handle_key, lead_id_for

        integration_id = connected_business(env, WORKSPACES[0])
        now = int(time.time())
        state = env.business.state
        state.add_video(BUSINESS_ID, VIDEO, now - 3600)
        state.add_comment(VIDEO, "7321234567890125001", "Price of the orca plush?", now - 300)
        dm = message_content("7400000000000000901", timestamp=(now - 200) * 1000, sender="reef_buyer")
        listed = listed_message(BUSINESS_ID, dm, username="orca_shop", display_name="Orca Shop")
        state.add_message(BUSINESS_ID, dm["conversation_id"], listed)
        cold_container()
        leads = {lead_id_for(integration_id, handle_key(h)) for h in ("orca_fan_88", "reef_buyer")}
        return {"integration_id": integration_id, "leads": leads, "newest": now - 200}

    def run(self, env: Env, ctx: dict[str, Any]) -> Outcome:
        from orcapulse_tiktok import business_catchup
        from orcapulse_tiktok.errors import DomainError

        try:
            report = business_catchup.catch_up()
        except DomainError as exc:
            return Outcome(exc.status, exc.code, shown=f"{type(exc).__name__}: {exc}")
        detail = "failed" if report.failed else ("rate_limited" if report.rate_limited else "caught_up")
        return Outcome(200, detail, shown=str(report.to_dict()), extra={"report": report})

    def _check_leads(self, env: Env, ctx: dict[str, Any], *, complete: bool) -> None:
        stored = {i["lead_id"]["S"]: i for i in lead_items(env.aws.items("LeadsTable"))}
        assert set(stored) <= ctx["leads"], "a lead nobody wrote"
        assert all(int(item["interaction_count"]["N"]) == 1 for item in stored.values()), "counted twice"
        if complete:
            assert set(stored) == ctx["leads"]
            assert len(interaction_items(env.aws.items("LeadsTable"))) == len(stored), "not one each"

    def _watermark(self, env: Env, ctx: dict[str, Any]) -> int | None:
        item = records(env)[ctx["integration_id"]]
        return int(item["catchup_watermark"]["N"]) if "catchup_watermark" in item else None

    def after_fault(self, env: Env, ctx: dict[str, Any], outcome: Outcome) -> None:
        assert_storage_clean(env)
        self._check_leads(env, ctx, complete=outcome.detail == "caught_up")
        lost_watermark = _lost_at(ctx, "dynamodb.UpdateItem(IntegrationsTable)")
        if outcome.detail != "caught_up" and not lost_watermark:
            assert self._watermark(env, ctx) is None, "a failed integration moved its watermark"

    def rerun(self, env: Env, ctx: dict[str, Any], first: Outcome) -> Outcome:
        cold_container()
        return self.run(env, ctx)

    def after_rerun(self, env: Env, ctx: dict[str, Any], first: Outcome, again: Outcome) -> None:
        assert again.key == (200, "caught_up"), again
        assert_storage_clean(env)
        self._check_leads(env, ctx, complete=True)
        assert self._watermark(env, ctx) == ctx["newest"]


BUSINESS_SCENARIOS: tuple[Scenario, ...] = (BusinessCallback(), BusinessRevoke(), BusinessCatchup())
