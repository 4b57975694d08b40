"""Round trips per request at the minimum the design allows, counted by the same recorder
``make bench`` uses (AWS calls at botocore's API call, TikTok calls at requests' adapter).

Counts, not timings: these are deterministic, so they are guarded here; timings are only
reported by ``make bench``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest

from bench.recorder import Recorder
from tests.support.connect import connect
from tests.support.events import http_event, json_body


@pytest.fixture
def recorder(tiktok) -> Iterator[Recorder]:
    recorder = Recorder()
    recorder.install()
    try:
        with recorder.http():
            yield recorder
    finally:
        recorder.uninstall()


@pytest.fixture
def webhook(load_function, lambda_context, tiktok_state):
    module = load_function("webhook")
    serial = iter(range(1, 10**6))

    def comment() -> bytes:
        n = next(serial)
        return cast(
            bytes,
            tiktok_state.envelope(
                "comment.update",
                "open-id-alpha",
                {
                    "comment_id": f"7{n:018d}",
                    "video_id": "7300000000000000001",
                    "parent_comment_id": "0",
                    "comment_type": "comment",
                    "comment_action": "insert",
                    "text": "Do you ship to Porto?",
                    "timestamp": 1_790_000_000_000 + n,
                    "unique_identifier": f"fan_{n}",
                },
            ),
        )

    def deliver(body: bytes) -> str:
        event = http_event(
            "POST", "/webhooks/tiktok", headers={"TikTok-Signature": tiktok_state.sign(body)}, body=body
        )
        response = module.lambda_handler(event, lambda_context)
        assert response["statusCode"] == 200, response
        return str(json_body(response)["status"])

    deliver.comment = comment  # type: ignore[attr-defined]
    return deliver


def test_recorder_sees_every_aws_client_and_the_tiktok_adapter(aws, tiktok, recorder):
    import boto3
    from orcapulse_tiktok.models.integration import integrations
    from orcapulse_tiktok.tiktok.client import TikTokError, tiktok_client
    from orcapulse_tiktok.tiktok.credentials import app_credentials

    with recorder.window() as window:
        boto3.client("events", region_name="us-east-1").list_event_buses()
        list(integrations().query("ws-none"))
        with pytest.raises(TikTokError):
            tiktok_client().revoke(app_credentials(), "act.unknown")
    assert window.aws == [
        "events.ListEventBuses",
        "dynamodb.Query",
        "secretsmanager.GetSecretValue",
    ]
    assert window.http == ["open.tiktokapis.com POST /v2/oauth/revoke/"]
    assert all(call.seconds >= 0 and call.cpu_seconds >= 0 for call in window.calls)
    assert window.seconds >= sum(call.seconds for call in window.calls)


def test_webhook_round_trips_on_a_warm_container(
    aws, tiktok, recorder, webhook, load_function, lambda_context, monkeypatch
):
    from orcapulse_tiktok import capture

    connect(load_function, lambda_context, tiktok, workspace="ws-1", open_id="open-id-alpha")
    assert webhook(webhook.comment()) == "accepted"  # warms the container, writes last_event_at

    body = webhook.comment()
    with recorder.window() as accepted:
        assert webhook(body) == "accepted"
    with recorder.window() as duplicate:
        assert webhook(body) == "duplicate"
    video = tiktok.state.envelope("video.publish.completed", "open-id-alpha", {"share_id": "v_pub_1"})
    with recorder.window() as ignored:
        assert webhook(video) == "ignored"
    nobody = tiktok.state.envelope(
        "comment.update", "open-id-nobody", {"comment_id": 1, "comment_action": "insert"}
    )
    with recorder.window() as unknown_account:
        assert webhook(nobody) == "ignored"
    # Once last_event_at is older than its resolution, one more write keeps it current.
    monkeypatch.setattr(capture, "LAST_EVENT_RESOLUTION_SECONDS", 0)
    with recorder.window() as accepted_stale:
        assert webhook(webhook.comment()) == "accepted"

    query, put, update, get = "dynamodb.Query", "dynamodb.PutItem", "dynamodb.UpdateItem", "dynamodb.GetItem"
    # Keep the delivery (archive.py), route, store the interaction (it names the delivery, for an
    # erasure to find), count it on the person's lead (the stream announces it).
    keep = put
    assert accepted.aws == [keep, query, put, update]
    # The interaction exists; a consistent read shows its lead counted it: nothing is written.
    assert duplicate.aws == [keep, query, put, get]
    assert ignored.aws == [keep]
    assert unknown_account.aws == [keep, query]
    assert accepted_stale.aws == [keep, query, put, update, update]
    assert accepted.http == duplicate.http == ignored.http == accepted_stale.http == []


def test_webhook_cold_container_adds_the_apps_credentials_and_the_person_key(
    aws, tiktok, recorder, webhook, load_function, lambda_context
):
    from tests.conftest import reset_process_caches

    connect(load_function, lambda_context, tiktok, workspace="ws-1", open_id="open-id-alpha")
    assert webhook(webhook.comment()) == "accepted"  # the integration's first last_event_at
    reset_process_caches()
    with recorder.window() as cold:
        assert webhook(webhook.comment()) == "accepted"
    with recorder.window() as warm:
        assert webhook(webhook.comment()) == "accepted"
    # The Login Kit app's credentials and the Business app's (either may sign a delivery), and the
    # person key (lead ids are a keyed hash of the person).
    assert sorted(cold.aws) == sorted([*warm.aws, *["secretsmanager.GetSecretValue"] * 3])
