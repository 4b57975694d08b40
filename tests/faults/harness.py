"""The success paths of the fault matrix — connect callback, disconnect, accepted webhook, token
refresh, and (``merge_erase.py``) lead merge and erasure — each as a scenario: how to set it up, run it, what answer each failed call must
produce, which invariants hold after a fault and after the clean retry.

A scenario runs against moto and the stateful TikTok fake, through the functions' own handlers
(the token refresh through the token service every caller uses). The harness can build that
environment on its own, so the baseline sequence of outside calls can be recorded while pytest
collects the matrix."""

from __future__ import annotations

import abc
import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import responses

from orcapulse_local.ads_state import AdsState
from orcapulse_local.tiktok_state import TikTokState
from tests.support.ads_fake import AdsFake
from tests.support.business_fake import BusinessFake, BusinessState
from tests.support.connect import approve, callback, redirect_query
from tests.support.deployment import CONTEXT, FRONTEND_URL
from tests.support.events import claims, http_event, json_body
from tests.support.faults import LOST, Call, ExternalCalls, external_calls
from tests.support.functions import Functions
from tests.support.tiktok_fake import TikTokFake
from tests.support.webhooks import (
    BusCapture,
    archived_deliveries,
    comment_content,
    interaction_items,
    lead_items,
    lead_stream,
    leads_finding,
)

CALLBACK_REASONS = {
    "access_denied",
    "invalid_state",
    "missing_scope",
    "token_exchange_failed",
    "profile_fetch_failed",
    "internal_error",
}
WORKSPACES: tuple[str, str] = ("ws-fault-1", "ws-fault-2")
OPEN_ID = "open-id-alpha"
# How far the product's clock is moved so the access token is due: past its 24 h lifetime.
TOKEN_AGE_SECONDS = 86400 + 60


# -- the environment -------------------------------------------------------------------------------
@dataclass
class Env:
    aws: Any  # tests.conftest.AwsEnv
    tiktok: TikTokFake
    functions: Functions
    context: Any
    business: BusinessFake
    ads: AdsFake | None = None  # the Marketing API of the Business app (lead forms)

    @property
    def state(self) -> TikTokState:
        return self.tiktok.state

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.functions(function).lambda_handler(event, self.context)
        return result


def new_state() -> TikTokState:
    state = TikTokState()
    state.add_account(OPEN_ID, display_name="Alpha Shop")
    return state


@contextlib.contextmanager
def environment(state: TikTokState | None = None) -> Iterator[Env]:
    """moto + the TikTok fake + the handlers, without pytest fixtures (for collection time)."""
    from tests.conftest import aws_environment
    from tests.support.events import LambdaContext

    state = state or new_state()
    functions = Functions("faults")
    business = BusinessState(issued=state.issued)  # what it issues is checked for leaks too
    ads = AdsState(app_id=business.app_id, secret=business.secret, issued=state.issued)
    with (
        aws_environment(state, business) as aws,
        responses.RequestsMock(assert_all_requests_are_fired=False) as mock,
    ):
        try:
            yield Env(
                aws=aws,
                tiktok=TikTokFake(state, mock),
                functions=functions,
                context=LambdaContext(),
                business=BusinessFake(business, mock),
                ads=AdsFake(ads, mock),
            )
        finally:
            functions.close()


def cold_container() -> None:
    """Each function runs in its own container: what the previous step cached (the app
    credentials above all) is read again. The AWS clients are kept: they hold no data, and
    creating them again would only slow the matrix down."""
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    for provider in DEFAULT_PROVIDERS.values():
        provider.clear_cache()


# -- outcomes ---------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What the caller saw: an HTTP status and the answer's one-word summary (``connected``, a
    callback reason, ``accepted``, ``revoked``, an error code...), and everything it was shown."""

    status: int
    detail: str
    shown: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, str]:
        return self.status, self.detail

    def __str__(self) -> str:
        return f"{self.status} {self.detail}"


def http_outcome(response: dict[str, Any], detail: str) -> Outcome:
    return Outcome(response["statusCode"], detail, shown=json.dumps(response, default=str))


def error_code(response: dict[str, Any]) -> str:
    try:
        return str(json_body(response)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "unparsed"


# -- what every scenario checks ---------------------------------------------------------------------
def issued_secrets(env: Env) -> list[str]:
    return [*env.state.issued, env.state.client_secret]


def assert_no_secret_in(text: str, env: Env, where: str) -> None:
    leaked = [s for s in issued_secrets(env) if s in text]
    assert not leaked, f"{len(leaked)} issued secret(s) appear in {where}"


def records(env: Env) -> dict[str, dict[str, Any]]:
    return {i["integration_id"]["S"]: i for i in env.aws.items("IntegrationsTable")}


def assert_storage_clean(env: Env, *, pairs: bool = True) -> None:
    """No token secret without its integration; with ``pairs``, no integration without its secret
    either; and no token, code, state or client secret in any table."""
    secrets = set(env.aws.token_secrets())
    stored = set(records(env))
    assert secrets <= stored, f"token secret without its integration: {sorted(secrets - stored)}"
    if pairs:
        assert stored <= secrets, f"integration without its token secret: {sorted(stored - secrets)}"
    for table in ("IntegrationsTable", "OAuthStatesTable", "LeadsTable"):
        assert_no_secret_in(json.dumps(env.aws.items(table)), env, table)


def live_at_tiktok(env: Env, tokens: dict[str, Any]) -> bool:
    """Whether a stored token pair still works at TikTok."""
    access = env.state.access_tokens.get(tokens["access_token"])
    refresh = env.state.refresh_tokens.get(tokens["refresh_token"])
    return bool(access and not access["revoked"] and refresh and not refresh["dead"])


def connect(env: Env, workspace: str, open_id: str = OPEN_ID) -> Outcome:
    """OAuth start → consent at the fake TikTok → callback, each in a cold container."""
    cold_container()
    params = approve(env.functions, env.context, env.tiktok, workspace=workspace, open_id=open_id)
    cold_container()
    return callback_outcome(callback(env.functions, env.context, params))


def callback_outcome(response: dict[str, Any]) -> Outcome:
    location = response.get("headers", {}).get("Location", "")
    query = redirect_query(response)
    detail = "connected" if query.get("status") == "connected" else query.get("reason", "no_reason")
    outcome = http_outcome(response, detail)
    outcome.extra = {"location": location, "headers": response.get("headers", {}), **query}
    return outcome


def connected(env: Env, workspace: str, open_id: str = OPEN_ID) -> str:
    outcome = connect(env, workspace, open_id)
    assert outcome.detail == "connected", outcome
    return str(outcome.extra["integration_id"])


# -- scenarios --------------------------------------------------------------------------------------
Expectations = dict[str, tuple[int, str]]


class Scenario(abc.ABC):
    """One success path. ``expected`` maps a call's label (optionally ``label#n`` for its n-th
    occurrence in the run, and ``...@fault`` for one fault kind only) to the answer a fault there
    must produce; a call missing from the map (a new call site) gets ``default`` — so a new call
    with other behaviour fails until someone writes down what it should do."""

    name = ""
    expected: Expectations = {}
    default: tuple[int, str] = (503, "temporarily_unavailable")

    @abc.abstractmethod
    def setup(self, env: Env) -> Any:
        """Implemented by each path."""

    @abc.abstractmethod
    def run(self, env: Env, ctx: Any) -> Outcome:
        """Implemented by each path."""

    @abc.abstractmethod
    def after_fault(self, env: Env, ctx: Any, outcome: Outcome) -> None:
        """Implemented by each path."""

    @abc.abstractmethod
    def rerun(self, env: Env, ctx: Any, first: Outcome) -> Outcome:
        """Implemented by each path."""

    @abc.abstractmethod
    def after_rerun(self, env: Env, ctx: Any, first: Outcome, again: Outcome) -> None:
        """Implemented by each path."""

    def expectation(self, calls: list[Call], k: int, fault: str) -> tuple[int, str]:
        label = calls[k].label
        occurrence = sum(1 for c in calls[: k + 1] if c.label == label)
        for key in (f"{label}#{occurrence}@{fault}", f"{label}@{fault}", f"{label}#{occurrence}", label):
            if key in self.expected:
                return self.expected[key]
        return self.default

    def record(
        self, env: Env, ctx: Any, *, fail_at: int | None = None, fault: str | None = None
    ) -> tuple[Outcome, ExternalCalls]:
        with external_calls(
            env.tiktok, fail_at=fail_at, fault=fault, business=env.business, ads=env.ads
        ) as calls:
            outcome = self.run(env, ctx)
        if isinstance(ctx, dict):
            ctx["injected"] = calls.injected
            ctx["fault"] = fault
        return outcome, calls


class ConnectCallback(Scenario):
    """GET /integrations/tiktok/oauth/callback after the user approved at TikTok (a cold container)."""

    name = "callback"
    expected: Expectations = {
        "tiktok.token": (302, "token_exchange_failed"),
        "tiktok.user_info": (302, "profile_fetch_failed"),
    }
    default = (302, "internal_error")
    token_label = "tiktok.token"  # the code exchange

    def setup(self, env: Env) -> dict[str, Any]:
        return self._approve(env)

    def _tokens(self, env: Env) -> dict[str, dict[str, Any]]:
        """The access tokens TikTok has issued for the app this callback completes."""
        return env.state.access_tokens

    def _live(self, env: Env, tokens: dict[str, Any]) -> bool:
        return live_at_tiktok(env, tokens)

    def _approve(self, env: Env) -> dict[str, Any]:
        cold_container()
        params = approve(env.functions, env.context, env.tiktok, workspace=WORKSPACES[0], open_id=OPEN_ID)
        cold_container()
        return {"params": params, "tokens_before": set(self._tokens(env))}

    def run(self, env: Env, ctx: dict[str, Any]) -> Outcome:
        return callback_outcome(callback(env.functions, env.context, ctx["params"]))

    def _check_redirect(self, outcome: Outcome) -> None:
        assert outcome.status == 302, outcome
        assert outcome.extra["location"].startswith(FRONTEND_URL + "/integrations/tiktok?"), outcome.extra
        assert outcome.extra["headers"].get("Cache-Control") == "no-store"
        assert outcome.extra["headers"].get("Referrer-Policy") == "no-referrer"
        assert outcome.detail == "connected" or outcome.detail in CALLBACK_REASONS, outcome

    def after_fault(self, env: Env, ctx: dict[str, Any], outcome: Outcome) -> None:
        self._check_redirect(outcome)
        assert_storage_clean(env)
        if outcome.detail != "connected":
            assert records(env) == {}, "a failed callback stored an integration"
            # A token the failed callback obtained is revoked, so nothing usable is left anywhere.
            obtained = set(self._tokens(env)) - ctx["tokens_before"]
            if _lost_at(ctx, self.token_label):
                # TikTok issued tokens whose answer never arrived: the product never held them and
                # cannot revoke them (docs/THREATS.md); they expire at TikTok on their own.
                obtained = set()
            alive = [t for t in obtained if not self._tokens(env)[t].get("revoked")]
            assert not alive, "a failed callback left a live token at TikTok"

    def rerun(self, env: Env, ctx: dict[str, Any], first: Outcome) -> Outcome:
        # The state is single-use and the code was spent: the user starts over.
        return self.run(env, self._approve(env))

    def after_rerun(self, env: Env, ctx: dict[str, Any], first: Outcome, again: Outcome) -> None:
        self._check_redirect(again)
        assert again.detail == "connected", again
        assert_storage_clean(env)
        [(integration_id, item)] = records(env).items()
        assert again.extra["integration_id"] == integration_id
        assert item["status"]["S"] == "active"
        assert item["workspace_id"]["S"] == WORKSPACES[0]
        assert self._live(env, env.aws.token_secrets()[integration_id])


class Disconnect(Scenario):
    """DELETE /integrations/tiktok/{integration_id} of a connected account (a cold container)."""

    name = "disconnect"
    expected: Expectations = {
        # The fallback read of the token to revoke retries the vault once: the retry completes.
        "secretsmanager.GetSecretValue(token secret)": (200, "revoked"),
        "tiktok.revoke": (200, "not_revoked"),
    }
    revoke_label = "tiktok.revoke"

    def setup(self, env: Env) -> dict[str, Any]:
        integration_id = connected(env, WORKSPACES[0])
        tokens = env.aws.token_secrets()[integration_id]
        cold_container()
        return {"integration_id": integration_id, "tokens": tokens}

    def run(self, env: Env, ctx: dict[str, Any]) -> Outcome:
        integration_id = ctx["integration_id"]
        response = env.invoke(
            "disconnect",
            http_event(
                "DELETE",
                f"/integrations/tiktok/{integration_id}",
                route="/integrations/tiktok/{integration_id}",
                path_parameters={"integration_id": integration_id},
                jwt_claims=claims(user="user-1", workspace=WORKSPACES[0]),
            ),
        )
        if response["statusCode"] == 200:
            body = json_body(response)
            assert body["integration_id"] == integration_id
            return http_outcome(response, "revoked" if body["revoked"] is True else "not_revoked")
        return http_outcome(response, error_code(response))

    def _revoked_at_tiktok(self, env: Env, ctx: dict[str, Any]) -> bool:
        return bool(env.state.access_tokens[ctx["tokens"]["access_token"]]["revoked"])

    def after_fault(self, env: Env, ctx: dict[str, Any], outcome: Outcome) -> None:
        # A failed disconnect may leave the record without its secret (deleted first, on
        # purpose), never a secret without its record; a retried DELETE finishes the job.
        assert_storage_clean(env, pairs=False)
        if outcome.status == 200:
            assert records(env) == {}
            assert env.aws.token_secrets() == {}
            if outcome.detail == "revoked" or not _lost_at(ctx, self.revoke_label):
                # A revoke whose answer was lost may have worked: "not revoked" is all we know.
                assert self._revoked_at_tiktok(env, ctx) == (outcome.detail == "revoked")
        elif not _lost_at(ctx, "dynamodb.DeleteItem(IntegrationsTable)"):
            assert ctx["integration_id"] in records(env), "a failed disconnect lost the record it must retry"

    def rerun(self, env: Env, ctx: dict[str, Any], first: Outcome) -> Outcome:
        cold_container()
        return self.run(env, ctx)

    def after_rerun(self, env: Env, ctx: dict[str, Any], first: Outcome, again: Outcome) -> None:
        if first.status == 200 or _lost_at(ctx, "dynamodb.DeleteItem(IntegrationsTable)"):
            # The record is gone (a delete whose answer was lost took effect): the retry is 404.
            assert again.key == (404, "integration_not_found"), again
        else:
            assert again.status == 200, again
        assert records(env) == {}
        assert env.aws.token_secrets() == {}
        assert_storage_clean(env)
        if "revoked" in (first.detail, again.detail):
            assert self._revoked_at_tiktok(env, ctx)


class TokenRefresh(Scenario):
    """The token service asked for an access token that is due: lease, rotate at TikTok, store."""

    name = "refresh"
    expected: Expectations = {
        # The rotated pair's vault write is retried (losing it would lose the grant).
        "secretsmanager.PutSecretValue(token secret)": (200, "token"),
        # The lease release is bookkeeping: the tokens are already safe in the vault.
        "dynamodb.UpdateItem(IntegrationsTable)#2": (200, "token"),
    }
    # TikTok rotated the pair but its answer was lost: the old refresh token is dead and the new
    # one never arrived. No product can recover that grant; it becomes needs_reauth on the next
    # attempt (docs/THREATS.md).
    grant_lost = "tiktok.token"

    def setup(self, env: Env) -> dict[str, Any]:
        from orcapulse_tiktok.models.integration import integrations

        integration_id = connected(env, WORKSPACES[0])
        record = integrations().get(WORKSPACES[0], integration_id, consistent_read=True)
        cold_container()
        return {
            "integration_id": integration_id,
            "record": record,
            "before": env.aws.token_secrets()[integration_id],
        }

    def run(self, env: Env, ctx: dict[str, Any]) -> Outcome:
        from orcapulse_tiktok import clock, tokens
        from orcapulse_tiktok.errors import DomainError

        real = time.time

        def a_day_later() -> float:
            # The access token (24 h) is due, the refresh token (365 d) is alive.
            return real() + TOKEN_AGE_SECONDS

        try:
            with mock.patch.object(clock, "now", a_day_later):
                token = tokens.access_token(ctx["record"], sleep=lambda _seconds: None)
        except DomainError as exc:
            return Outcome(exc.status, exc.code, shown=f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # the matrix reports it as a crash rather than stopping
            return Outcome(500, f"crash:{type(exc).__name__}", shown=repr(exc))
        return Outcome(200, "token", extra={"token": token})

    def _vault(self, env: Env, ctx: dict[str, Any]) -> dict[str, Any]:
        return dict(env.aws.token_secrets()[ctx["integration_id"]])

    def _record(self, env: Env, ctx: dict[str, Any]) -> dict[str, Any]:
        return records(env)[ctx["integration_id"]]

    def after_fault(self, env: Env, ctx: dict[str, Any], outcome: Outcome) -> None:
        assert_storage_clean(env)
        stored = self._vault(env, ctx)
        if _lost_at(ctx, self.grant_lost):
            assert outcome.key == (503, "temporarily_unavailable"), outcome
            assert stored == ctx["before"]
            assert not live_at_tiktok(env, stored)
            assert "refresh_lease_owner" not in self._record(env, ctx), "a failed refresh kept its lease"
            return
        # Whatever happened, the vault holds a pair TikTok still honours (a rotated pair is stored
        # before it is used; a failed refresh keeps the old one).
        assert live_at_tiktok(env, stored), "the vault holds a dead token pair"
        if outcome.status == 200:
            assert outcome.extra["token"] == stored["access_token"]
        else:
            assert stored == ctx["before"], "a failed refresh changed the stored tokens"
            assert "refresh_lease_owner" not in self._record(env, ctx), "a failed refresh kept its lease"

    def rerun(self, env: Env, ctx: dict[str, Any], first: Outcome) -> Outcome:
        cold_container()
        return self.run(env, ctx)

    def after_rerun(self, env: Env, ctx: dict[str, Any], first: Outcome, again: Outcome) -> None:
        if _lost_at(ctx, self.grant_lost):
            assert again.key == (409, "integration_needs_reauth"), again
            assert self._record(env, ctx)["status"]["S"] == "needs_reauth"
            return
        assert again.key == (200, "token"), again
        assert_storage_clean(env)
        stored = self._vault(env, ctx)
        assert again.extra["token"] == stored["access_token"]
        assert live_at_tiktok(env, stored)
        assert self._record(env, ctx)["status"]["S"] == "active"


class AcceptedWebhook(Scenario):
    """POST /webhooks/tiktok: a signed comment for an account two workspaces connected (a cold
    container). Each workspace gets the commenter's lead with one interaction; the table's stream,
    read afterwards as Lambda's event source mapping reads it, announces each lead once."""

    name = "webhook"
    expected: Expectations = {
        # last_event_at is bookkeeping on the integration: best effort.
        "dynamodb.UpdateItem(IntegrationsTable)": (200, "accepted"),
    }

    def setup(self, env: Env) -> dict[str, Any]:
        from orcapulse_tiktok.people import handle_key, lead_id_for

        content = comment_content(7321234567890123457)
        integration_ids = [connected(env, workspace) for workspace in WORKSPACES]
        cold_container()
        publisher = env.functions("lead_publisher")
        stream = lead_stream(
            CONTEXT.resources["LeadsTable"]["Ref"], lambda event: publisher.lambda_handler(event, env.context)
        )
        return {
            "body": env.state.envelope("comment.update", OPEN_ID, content),
            "leads": {lead_id_for(i, handle_key(str(content["unique_identifier"]))) for i in integration_ids},
            "bus": BusCapture(env.aws.event_bus, pump=stream.pump),
            "announced": Counter(),
        }

    def run(self, env: Env, ctx: dict[str, Any]) -> Outcome:
        # TikTok signs every attempt afresh; the body is the same.
        body = ctx["body"]
        response = env.invoke(
            "webhook",
            http_event(
                "POST", "/webhooks/tiktok", headers={"TikTok-Signature": env.state.sign(body)}, body=body
            ),
        )
        if response["statusCode"] == 200:
            return http_outcome(response, str(json_body(response)["status"]))
        return http_outcome(response, error_code(response))

    def _leads(self, env: Env) -> dict[str, dict[str, Any]]:
        return {i["lead_id"]["S"]: i for i in lead_items(env.aws.items("LeadsTable"))}

    def _announced(self, ctx: dict[str, Any]) -> Counter[str]:
        for event in ctx["bus"].received():
            ctx["announced"][event["detail"]["lead_id"]] += 1
        return Counter(ctx["announced"])

    def after_fault(self, env: Env, ctx: dict[str, Any], outcome: Outcome) -> None:
        assert_storage_clean(env)
        stored = self._leads(env)
        announced = self._announced(ctx)
        assert set(stored) <= ctx["leads"], "a lead nobody asked for"
        assert set(announced) == set(stored), "a stored lead not announced, or an announcement of nothing"
        assert all(n == 1 for n in announced.values()), f"announced twice: {announced}"
        assert all(int(item["interaction_count"]["N"]) == 1 for item in stored.values())
        if outcome.status == 200:
            assert set(stored) == ctx["leads"]

    def rerun(self, env: Env, ctx: dict[str, Any], first: Outcome) -> Outcome:
        cold_container()
        return self.run(env, ctx)

    def after_rerun(self, env: Env, ctx: dict[str, Any], first: Outcome, again: Outcome) -> None:
        assert again.status == 200, again
        assert again.detail in ("accepted", "duplicate"), again
        assert_storage_clean(env)
        stored = self._leads(env)
        assert set(stored) == ctx["leads"], "the retry did not leave exactly one lead per workspace"
        assert all(int(item["interaction_count"]["N"]) == 1 for item in stored.values()), "counted twice"
        interactions = interaction_items(env.aws.items("LeadsTable"))
        assert len(interactions) == len(ctx["leads"]), "not one interaction per workspace"
        announced = self._announced(ctx)
        assert announced == Counter({lead: 1 for lead in ctx["leads"]}), f"not announced once: {announced}"
        # The delivery is in the archive, and an erasure of each lead it made finds it.
        [kept] = archived_deliveries(env.aws)
        assert leads_finding(env.aws, kept["pk"]["S"].removeprefix("D#")) == ctx["leads"], (
            "the archive does not know which leads the delivery made"
        )


def _lost_at(ctx: dict[str, Any], label: str) -> bool:
    """Whether this run's fault was a lost answer of the call ``label``."""
    injected = ctx.get("injected")
    return ctx.get("fault") == LOST and injected is not None and injected.label == label


# The lead-form, lifecycle, merge and erasure paths build on the above (modules of their own, so
# each path family stays short; they import the base classes from this module).
from tests.faults.lead_form_scenarios import (  # noqa: E402
    AdsCallback,
    EraseLeadFormPerson,
    LargeLeadsWebhook,
    LeadsWebhook,
)
from tests.faults.lifecycle_scenarios import LeadDecision, LeadUpdate  # noqa: E402
from tests.faults.merge_erase import EraseLead, MergeLeads  # noqa: E402

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        ConnectCallback(),
        Disconnect(),
        AcceptedWebhook(),
        TokenRefresh(),
        LeadUpdate(),
        LeadDecision(),
        MergeLeads(),
        EraseLead(),
        AdsCallback(),
        LeadsWebhook(),
        LargeLeadsWebhook(),
        EraseLeadFormPerson(),
    )
}
# The business account paths (DESIGN §8) build on the scenarios above.
from tests.faults.business_scenarios import BUSINESS_SCENARIOS  # noqa: E402

SCENARIOS.update({s.name: s for s in BUSINESS_SCENARIOS})


def record_baseline(scenario: Scenario) -> list[Call]:
    """The outside calls of one clean run of ``scenario``, in order."""
    with environment() as env:
        ctx = scenario.setup(env)
        outcome, calls = scenario.record(env, ctx)
    assert outcome.status < 400 or scenario.name == "callback", f"{scenario.name} baseline failed: {outcome}"
    return list(calls.calls)
