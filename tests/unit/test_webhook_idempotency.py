"""At-least-once delivery: the same TikTok event never makes a second interaction — redelivered in
sequence, concurrently, or after a transient failure that made TikTok retry — each person is one
lead whose count matches its interactions, and what happened is announced on the event bus once
(the table's stream → lead publisher → a rule → SQS queue). Also counts the AWS round trips."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from orcapulse_tiktok import clock

from tests.support.connect import connect
from tests.support.webhooks import (
    NOW_MS,
    TIMEOUT,
    MovableClock,
    Webhook,
    comment_content,
    high_intent_content,
    message_content,
    recording_aws_calls,
    status_of,
    stored_interactions,
    stored_leads,
)


def deliver_concurrently(webhook: Webhook, body: bytes, threads: int) -> list[tuple[int, str]]:
    """``threads`` deliveries of one body, each signed as TikTok signs every attempt, released
    together; their (status, outcome) in delivery order."""
    start = threading.Barrier(threads)

    def deliver(_: int) -> tuple[int, str]:
        headers = webhook.signed(body)
        start.wait()
        return status_of(webhook.post(body, headers))

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(deliver, range(threads)))


@pytest.fixture
def atomic_item_writes(monkeypatch):
    """DynamoDB applies a conditional write to an item atomically. moto's in-process backend checks
    the condition and writes in separate Python steps, so two threads can both pass it (seen here
    as two INSERTs for one key, about once in 40 runs). Give the emulator the real service's
    guarantee by running its item writes one at a time; the product code is unchanged."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def locked(self, *args, _original=original, **kwargs):
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


def test_sequential_redelivery_is_a_duplicate_and_writes_nothing(webhook, alpha, aws, bus, tiktok_state):
    body = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content())
    assert status_of(webhook.deliver_body(body)) == (200, "accepted")
    [event] = bus.received()
    stored = aws.items("LeadsTable")

    # TikTok re-signs every attempt: same body, new signature timestamp.
    for _ in range(3):
        assert status_of(webhook.deliver_body(body)) == (200, "duplicate")

    assert aws.items("LeadsTable") == stored
    assert bus.received() == []
    assert event["detail-type"] == "SocialLeadCaptured"
    assert event["detail"]["event_id"] == f"{event['detail']['lead_id']}:v1"


@pytest.mark.parametrize(
    ("event", "content"),
    [
        ("comment.update", comment_content()),
        ("im_receive_msg", message_content()),
        ("im_receive_high_intent_comment", high_intent_content()),
    ],
)
def test_concurrent_deliveries_of_one_event_make_one_interaction(
    atomic_item_writes, webhook, alpha, aws, bus, tiktok_state, event, content
):
    body = tiktok_state.envelope(event, "open-id-alpha", content)
    threads = 8
    results = deliver_concurrently(webhook, body, threads)

    assert sorted(results) == [(200, "accepted")] + [(200, "duplicate")] * (threads - 1)
    [lead] = stored_leads(aws)
    assert lead["interaction_count"] == 1
    assert len(stored_interactions(aws)) == 1
    assert [e["detail-type"] for e in bus.received()] == ["SocialLeadCaptured"]


def test_two_interactions_of_one_new_person_at_once_make_one_lead_with_two(
    atomic_item_writes, webhook, alpha, aws, bus, tiktok_state
):
    bodies = [
        tiktok_state.envelope(
            "im_receive_msg", "open-id-alpha", message_content(str(n), timestamp=NOW_MS + n)
        )
        for n in range(1, 5)
    ]
    start = threading.Barrier(len(bodies))

    def deliver(body: bytes) -> tuple[int, str]:
        headers = webhook.signed(body)
        start.wait()
        return status_of(webhook.post(body, headers))

    with ThreadPoolExecutor(len(bodies)) as pool:
        assert list(pool.map(deliver, bodies)) == [(200, "accepted")] * len(bodies)
    [lead] = stored_leads(aws)
    assert lead["interaction_count"] == 4
    assert len(stored_interactions(aws)) == 4
    events = bus.received()
    assert sorted(e["detail-type"] for e in events) == ["SocialLeadActivity"] * 3 + ["SocialLeadCaptured"]
    assert len({e["detail"]["event_id"] for e in events}) == 4


def test_a_later_interaction_is_announced_as_activity(webhook, alpha, aws, bus):
    webhook.deliver("im_receive_msg", "open-id-alpha", message_content("1", text="first"))
    webhook.deliver(
        "im_receive_msg", "open-id-alpha", message_content("2", text="second", timestamp=NOW_MS + 9000)
    )
    captured, activity = bus.received()
    assert captured["detail-type"] == "SocialLeadCaptured"
    assert captured["detail"]["interaction"]["message"] == "first"
    assert activity["detail-type"] == "SocialLeadActivity"
    assert activity["detail"]["interaction"]["message"] == "second"
    assert (activity["detail"]["version"], activity["detail"]["interaction_count"]) == (2, 2)
    assert activity["detail"]["event_id"] == f"{captured['detail']['lead_id']}:v2"


def test_concurrent_fan_out_to_two_workspaces(
    atomic_item_writes, webhook, load_function, lambda_context, tiktok, aws, bus
):
    connect(load_function, lambda_context, tiktok, workspace="ws-1", open_id="open-id-alpha")
    connect(load_function, lambda_context, tiktok, workspace="ws-2", open_id="open-id-alpha")
    body = webhook.state.envelope("comment.update", "open-id-alpha", comment_content())
    results = deliver_concurrently(webhook, body, 6)

    # Each delivery may win one workspace's put and lose the other's: "accepted" then means it
    # created at least one interaction. What matters is one lead per workspace, announced once.
    assert all(status == 200 for status, _ in results)
    assert "accepted" in {outcome for _, outcome in results}
    leads = stored_leads(aws)
    assert [lead["workspace_id"] for lead in leads] == ["ws-1", "ws-2"]
    assert bus.lead_ids() == sorted(lead["lead_id"] for lead in leads)


# -- transient failures: 5xx, and the retry completes the work -------------------------------------
def test_a_failed_interaction_put_is_503_and_the_redelivery_creates_it(
    webhook, alpha, aws, bus, tiktok_state
):
    body = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content())
    with recording_aws_calls() as calls:
        calls.fail_next("dynamodb.PutItem", "InternalServerError")
        assert status_of(webhook.deliver_body(body)) == (503, "temporarily_unavailable")
        assert aws.items("LeadsTable") == []

        assert status_of(webhook.deliver_body(body)) == (200, "accepted")
        assert status_of(webhook.deliver_body(body)) == (200, "duplicate")
    assert len(bus.received()) == 1


@pytest.mark.parametrize("fault", ["InternalServerError", TIMEOUT])
def test_a_failed_lead_write_after_the_interaction_is_finished_by_the_redelivery(
    webhook, alpha, aws, bus, tiktok_state, fault
):
    body = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content())
    with recording_aws_calls() as calls:
        calls.fail_next("dynamodb.UpdateItem", fault)
        assert status_of(webhook.deliver_body(body)) == (503, "temporarily_unavailable")
        assert stored_leads(aws) == []  # the interaction is stored, its person not yet
        assert len(stored_interactions(aws)) == 1

        assert status_of(webhook.deliver_body(body)) == (200, "accepted")
        assert status_of(webhook.deliver_body(body)) == (200, "duplicate")
    [lead] = stored_leads(aws)
    assert lead["interaction_count"] == 1
    assert len(bus.received()) == 1


def test_a_lead_write_whose_answer_was_lost_is_not_counted_twice(webhook, alpha, aws, bus, tiktok_state):
    body = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content())
    with recording_aws_calls() as calls:
        calls.lose_next("dynamodb.UpdateItem")
        assert status_of(webhook.deliver_body(body)) == (503, "temporarily_unavailable")
        assert status_of(webhook.deliver_body(body)) == (200, "duplicate")
    [lead] = stored_leads(aws)
    assert lead["interaction_count"] == 1
    assert len(bus.received()) == 1


def test_a_failure_in_one_workspace_does_not_hold_back_the_other(
    webhook, load_function, lambda_context, tiktok, aws, bus
):
    connect(load_function, lambda_context, tiktok, workspace="ws-1", open_id="open-id-alpha")
    connect(load_function, lambda_context, tiktok, workspace="ws-2", open_id="open-id-alpha")
    body = webhook.state.envelope("comment.update", "open-id-alpha", comment_content())
    with recording_aws_calls() as calls:
        # The first integration's put fails, the second's succeeds: TikTok must retry.
        # (The first PutItem keeps the delivery in the archive; the next is the first interaction.)
        calls.fail_next("dynamodb.PutItem", "ProvisionedThroughputExceededException", after=1)
        assert status_of(webhook.deliver_body(body)) == (503, "temporarily_unavailable")
        assert len(stored_leads(aws)) == 1
        # The lead that was stored is announced right away, not held back by the other's failure.
        assert len(bus.received()) == 1

        assert status_of(webhook.deliver_body(body)) == (200, "accepted")
    assert [lead["workspace_id"] for lead in stored_leads(aws)] == ["ws-1", "ws-2"]
    assert len(bus.received()) == 1


@pytest.mark.parametrize(
    ("call", "code"),
    [
        ("dynamodb.Query", "InternalServerError"),
        ("secretsmanager.GetSecretValue", "InternalServiceError"),
    ],
)
def test_routing_and_credential_failures_are_503_and_store_nothing(
    webhook, alpha, aws, tiktok_state, call, code
):
    body = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content())
    with recording_aws_calls() as calls:
        calls.fail_next(call, code)
        assert status_of(webhook.deliver_body(body)) == (503, "temporarily_unavailable")
        assert aws.items("LeadsTable") == []
        assert status_of(webhook.deliver_body(body)) == (200, "accepted")


def test_a_failed_last_event_update_does_not_fail_the_delivery(webhook, alpha, aws, tiktok_state, capsys):
    with recording_aws_calls() as calls:
        # The first UpdateItem is the lead; the second is last_event_at.
        calls.fail_next("dynamodb.UpdateItem", "InternalServerError", after=1)
        response = webhook.deliver("comment.update", "open-id-alpha", comment_content())
    assert status_of(response) == (200, "accepted")
    assert len(stored_leads(aws)) == 1
    assert '"LastEventUpdateFailed":[1.0]' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("call", "after", "expected"),
    [
        ("dynamodb.Query", 0, (503, "temporarily_unavailable")),
        ("dynamodb.PutItem", 0, (503, "temporarily_unavailable")),
        ("dynamodb.UpdateItem", 0, (503, "temporarily_unavailable")),  # the lead
        ("dynamodb.UpdateItem", 1, (200, "accepted")),  # last_event_at
    ],
)
def test_a_timeout_at_any_call_is_never_a_500_and_the_lead_is_announced_once(
    webhook, alpha, aws, bus, tiktok_state, call, after, expected
):
    body = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content())
    with recording_aws_calls() as calls:
        calls.fail_next(call, TIMEOUT, after=after)
        assert status_of(webhook.deliver_body(body)) == expected
        if expected[0] == 503:
            assert status_of(webhook.deliver_body(body))[0] == 200
    assert len(bus.received()) == 1
    [lead] = stored_leads(aws)
    assert lead["interaction_count"] == 1


def test_last_event_at_is_written_at_most_once_a_minute_and_never_backwards(
    webhook, alpha, aws, tiktok_state, monkeypatch
):
    moving = MovableClock()
    monkeypatch.setattr(clock, "now", moving)

    def last_event_at() -> str:
        [item] = aws.items("IntegrationsTable")
        return str(item["last_event_at"]["S"])

    def deliver(comment_id: int) -> list[str]:  # the lead write and last_event_at
        with calls.measure() as made:
            body = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content(comment_id))
            assert (
                status_of(webhook.post(body, webhook.signed(body, timestamp=int(moving()))))[1] == "accepted"
            )
        return [c for c in made if c == "dynamodb.UpdateItem"]

    with recording_aws_calls() as calls:
        assert len(deliver(1)) == 2  # the lead + the first last_event_at
        first = last_event_at()
        moving.advance(30)
        assert len(deliver(2)) == 1  # fresh: only the lead
        assert last_event_at() == first
        moving.advance(31)
        assert len(deliver(3)) == 2
        assert last_event_at() > first
    assert clock.parse_iso(last_event_at()).timestamp() == pytest.approx(moving(), abs=2)

    # A slower concurrent delivery, whose routing Query still saw an older value, never moves it
    # back.
    from orcapulse_tiktok.capture import _touch
    from orcapulse_tiktok.data.integrations import Target

    newer = last_event_at()
    _touch(Target("ws-1", alpha, "active", last_event_at=None), moving() - 45)
    assert last_event_at() == newer


def test_a_failed_high_intent_flag_is_retried_to_completion(webhook, alpha, aws, tiktok_state):
    webhook.deliver("comment.update", "open-id-alpha", comment_content())
    body = tiktok_state.envelope("im_receive_high_intent_comment", "open-id-alpha", high_intent_content())
    with recording_aws_calls() as calls:
        calls.fail_next("dynamodb.UpdateItem", "InternalServerError")
        assert status_of(webhook.deliver_body(body)) == (503, "temporarily_unavailable")
        assert status_of(webhook.deliver_body(body)) == (200, "duplicate")
    [lead] = stored_leads(aws)
    assert lead["high_intent"] is True
    assert stored_interactions(aws)[0]["high_intent"] is True


def test_a_failed_secret_delete_on_removal_is_finished_by_the_redelivery(webhook, alpha, aws, tiktok_state):
    body = tiktok_state.envelope("authorization.removed", "open-id-alpha", {"reason": 1})
    with recording_aws_calls() as calls:
        calls.fail_next("secretsmanager.DeleteSecret", "InternalServiceError")
        assert status_of(webhook.deliver_body(body)) == (503, "temporarily_unavailable")
        assert alpha in aws.token_secrets()

        assert status_of(webhook.deliver_body(body)) == (200, "duplicate")
    assert aws.token_secrets() == {}
    [item] = aws.items("IntegrationsTable")
    assert (item["status"]["S"], item["revoked_reason"]["S"]) == ("revoked", "user_disconnected")


# -- round trips ----------------------------------------------------------------------------------
def test_aws_round_trips_per_delivery(webhook, load_function, lambda_context, tiktok, aws, monkeypatch):
    connect(load_function, lambda_context, tiktok, workspace="ws-1", open_id="open-id-alpha")
    moving = MovableClock()
    monkeypatch.setattr(clock, "now", moving)
    measured: dict[str, list[str]] = {}
    sent: dict[str, bytes] = {}

    def measure(
        name: str, event: str, open_id: str, content: dict[str, Any], expected: str, *, again: str = ""
    ) -> None:
        """Deliver an event (or, with ``again``, the very bytes of that earlier delivery, as TikTok
        redelivers) and record the AWS calls it made."""
        with calls.measure() as made:
            # TikTok's clock moves with ours.
            body = (
                sent[again]
                if again
                else webhook.state.envelope(event, open_id, content, create_time=int(moving()))
            )
            response = webhook.post(body, webhook.signed(body, timestamp=int(moving())))
            assert status_of(response)[1] == expected, name
        measured[name], sent[name] = list(made), body

    with recording_aws_calls() as calls:
        measure("accepted, cold container", "comment.update", "open-id-alpha", comment_content(1), "accepted")
        measure("accepted", "comment.update", "open-id-alpha", comment_content(2), "accepted")
        measure(
            "duplicate", "comment.update", "open-id-alpha", comment_content(2), "duplicate", again="accepted"
        )
        measure("high intent, lead exists", "im_receive_high_intent_comment", "open-id-alpha",
                high_intent_content(2), "duplicate")  # fmt: skip
        measure("hide a captured comment", "comment.update", "open-id-alpha",
                comment_content(2, action="set_to_hidden", timestamp=1764057660000), "accepted")  # fmt: skip
        measure("ignored: unknown account", "comment.update", "open-id-nobody", comment_content(3), "ignored")
        measure(
            "ignored: event type", "video.publish.completed", "open-id-alpha", {"share_id": "v"}, "ignored"
        )
        with calls.measure() as made:
            body = webhook.state.envelope("comment.update", "open-id-alpha", comment_content(5))
            assert status_of(webhook.post(body, webhook.signed(body, secret="wrong")))[0] == 401
        measured["rejected: bad signature"] = list(made)
        moving.advance(61)
        measure(
            "accepted, last_event_at stale", "comment.update", "open-id-alpha", comment_content(7), "accepted"
        )
        calls.fail_next("dynamodb.UpdateItem", "InternalServerError")
        measure("lead write failed", "comment.update", "open-id-alpha", comment_content(8),
                "temporarily_unavailable")  # fmt: skip
        measure("redelivery finishes the lead", "comment.update", "open-id-alpha", comment_content(8),
                "accepted", again="lead write failed")  # fmt: skip
        connect(load_function, lambda_context, tiktok, workspace="ws-2", open_id="open-id-alpha")
        measure("accepted, 2 workspaces", "comment.update", "open-id-alpha", comment_content(6), "accepted")
        measure("duplicate, 2 workspaces", "comment.update", "open-id-alpha", comment_content(6), "duplicate",
                again="accepted, 2 workspaces")  # fmt: skip
        measure("authorization.removed, 2 workspaces", "authorization.removed", "open-id-alpha", {"reason": 1},
                "accepted")  # fmt: skip

    q, put, upd, get = "dynamodb.Query", "dynamodb.PutItem", "dynamodb.UpdateItem", "dynamodb.GetItem"
    sm = "secretsmanager.GetSecretValue"
    # Every verified delivery is first kept in the delivery archive (one PutItem). The interaction
    # it stores carries its id, which is how an erasure finds it; a lead it touched without storing
    # one is remembered with it at the end (one BatchWriteItem; archive.py).
    keep, refs = "dynamodb.PutItem", "dynamodb.BatchWriteItem"
    assert measured == {
        # Cold: the Login Kit and the Business app secrets (either app may sign a delivery), then the
        # person key; a new integration has no last_event_at yet.
        "accepted, cold container": [sm, sm, keep, q, sm, put, upd, upd],
        # The interaction, then its lead; nothing is published from here (the table's stream is).
        "accepted": [keep, q, put, upd],
        # The interaction exists and a consistent read shows its lead counted it: no write at all.
        "duplicate": [keep, q, put, get],
        # The same interaction, now high intent: no second count, both get the flag; this delivery
        # (other bytes than the comment's) is remembered with the lead.
        "high intent, lead exists": [keep, q, put, get, upd, upd, refs],
        "hide a captured comment": [keep, q, upd, upd],
        "ignored: unknown account": [keep, q],
        "ignored: event type": [keep],
        "rejected: bad signature": [],
        "accepted, last_event_at stale": [keep, q, put, upd, upd],
        # The failed delivery still remembers the lead it touched (best effort).
        "lead write failed": [keep, q, put, upd, refs],
        # The lead had not counted it: the lead write runs again and finishes it.
        "redelivery finishes the lead": [keep, q, put, get, upd],
        # ws-2 is new (its last_event_at is written); ws-1's is fresh.
        "accepted, 2 workspaces": [keep, q, put, upd, put, upd, upd],
        "duplicate, 2 workspaces": [keep, q, put, get, put, get],
        "authorization.removed, 2 workspaces": [
            keep,
            q,
            upd,
            "secretsmanager.DeleteSecret",
            upd,
            "secretsmanager.DeleteSecret",
        ],
    }
