"""The scheduled token refresher, through its Lambda handler: it finds due integrations with a Query
on the sparse ``by_refresh_due`` index and refreshes them against the rotating TikTok fake."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from orcapulse_tiktok import clock
from orcapulse_tiktok.models.integration import Integration, integrations

from tests.support.connect import connect
from tests.support.events import LambdaContext, scheduled_event
from tests.support.faults import aws_calls
from tests.unit.test_tokens import DAY, FrozenClock, burn_refresh_token, refresh_calls

MARGIN = 3600


@pytest.fixture
def now(monkeypatch) -> FrozenClock:
    frozen = FrozenClock()
    monkeypatch.setattr(clock, "now", lambda: frozen.t)
    return frozen


def refresher_context(remaining_ms: int = 300_000) -> LambdaContext:
    """A Lambda context with the refresher's own time budget."""
    return LambdaContext(function_name="token-refresh", remaining_ms=remaining_ms)


@pytest.fixture
def run(load_function, aws):
    module = load_function("token_refresh")

    def invoke(context: LambdaContext | None = None) -> dict[str, Any]:
        return cast(dict[str, Any], module.lambda_handler(scheduled_event(), context or refresher_context()))

    return invoke


@pytest.fixture
def connect_as(aws, tiktok, load_function, lambda_context, now):
    def make(workspace: str, open_id: str) -> tuple[str, str]:
        return workspace, connect(load_function, lambda_context, tiktok, workspace=workspace, open_id=open_id)

    return make


def item(aws, key: tuple[str, str]) -> dict[str, Any]:
    [found] = [
        i for i in aws.items("IntegrationsTable") if (i["workspace_id"]["S"], i["integration_id"]["S"]) == key
    ]
    return cast(dict[str, Any], found)


def emitted_metrics(stdout: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for line in stdout.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for definition in blob["_aws"]["CloudWatchMetrics"]:
            for metric in definition["Metrics"]:
                value = blob[metric["Name"]]
                out.setdefault(metric["Name"], []).extend(value if isinstance(value, list) else [value])
    return out


def test_refreshes_exactly_the_due_integrations_through_the_index(
    aws, tiktok, tiktok_state, now, connect_as, run, capsys
):
    alpha = connect_as("ws-a", "open-id-alpha")
    beta = connect_as("ws-b", "open-id-alpha")
    dead = connect_as("ws-c", "open-id-beta")
    burn_refresh_token(tiktok_state, aws.token_secrets()[dead[1]]["refresh_token"])
    now.advance(10 * 3600)
    later = connect_as("ws-a", "open-id-beta")  # connected 10 h later: not due yet
    secrets_before = aws.token_secrets()
    later_due = item(aws, later)["refresh_due_at"]
    assert int(later_due["N"]) > now.t
    now.advance(DAY - 10 * 3600 - MARGIN + 1)  # the first three are inside the margin
    capsys.readouterr()

    with aws_calls() as log:
        report = run()

    assert report == {
        "processed": 3,
        "refreshed": 2,
        "needs_reauth": 1,
        "skipped": 0,
        "deferred": 0,
        "failed": [],
    }
    dynamodb = log.operations("dynamodb")
    assert dynamodb.count("Query") == 1
    assert "Scan" not in dynamodb
    assert dynamodb.count("GetItem") == 3
    assert refresh_calls(tiktok) == 3  # alpha, beta, and dead's refused attempt
    secrets_after = aws.token_secrets()
    for key in (alpha, beta):
        assert secrets_after[key[1]]["access_token"] != secrets_before[key[1]]["access_token"]
        assert int(item(aws, key)["refresh_due_at"]["N"]) == int(now.t) + DAY - MARGIN
    assert secrets_after[later[1]] == secrets_before[later[1]]
    assert item(aws, later)["refresh_due_at"] == later_due
    assert item(aws, dead)["status"]["S"] == "needs_reauth"
    assert "refresh_bucket" not in item(aws, dead)
    assert emitted_metrics(capsys.readouterr().out)["IntegrationNeedsReauth"] == [1.0]

    # Nothing is due any more: the refreshed ones moved out, the dead one left the index.
    assert run()["processed"] == 0
    assert refresh_calls(tiktok) == 3


def test_one_failure_does_not_stop_the_others_and_is_retried_with_backoff(
    aws, tiktok, tiktok_state, now, connect_as, run
):
    first = connect_as("ws-a", "open-id-alpha")
    second = connect_as("ws-b", "open-id-beta")
    now.advance(DAY - MARGIN + 1)
    tiktok_state.fail_next("token", 503, {})

    report = run()

    assert report["processed"] == 2
    assert report["refreshed"] == 1
    [failed] = report["failed"]
    failed_key = first if failed == first[1] else second
    stuck = item(aws, failed_key)
    assert stuck["status"]["S"] == "active"
    assert stuck["refresh_failures"]["N"] == "1"
    assert int(stuck["refresh_due_at"]["N"]) == int(now.t) + 300

    assert run()["processed"] == 0  # backing off
    now.advance(301)
    assert run() == {
        "processed": 1,
        "refreshed": 1,
        "needs_reauth": 0,
        "skipped": 0,
        "deferred": 0,
        "failed": [],
    }
    assert item(aws, failed_key)["refresh_failures"]["N"] == "0"


def test_an_integration_whose_lease_is_held_is_skipped(aws, tiktok, now, connect_as, run):
    key = connect_as("ws-a", "open-id-alpha")
    now.advance(DAY - MARGIN + 1)
    integrations().get(*key).update(
        actions=[
            Integration.refresh_lease_owner.set("interactive-caller"),
            Integration.refresh_lease_until.set(int(now.t) + 30),
        ]
    )

    report = run()

    assert report["processed"] == 1
    assert report["skipped"] == 1
    assert refresh_calls(tiktok) == 0


def test_no_refresh_starts_without_time_to_finish_it(aws, tiktok, now, connect_as, run):
    key = connect_as("ws-a", "open-id-alpha")
    now.advance(DAY - MARGIN + 1)

    report = run(refresher_context(remaining_ms=5_000))

    assert report["deferred"] == 1
    assert refresh_calls(tiktok) == 0
    assert item(aws, key)["refresh_due_at"]["N"] == str(int(now.t) - 1)  # still due next run


def test_an_inactive_integration_left_in_the_index_is_dropped_from_it(aws, tiktok, now, connect_as, run):
    key = connect_as("ws-a", "open-id-alpha")
    integrations().get(*key).update(actions=[Integration.status.set("revoked")])
    now.advance(DAY - MARGIN + 1)

    assert run()["skipped"] == 1
    assert "refresh_bucket" not in item(aws, key)
    assert run()["processed"] == 0
    assert refresh_calls(tiktok) == 0
