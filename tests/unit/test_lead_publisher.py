"""Announcing new leads: the webhook puts each new lead on the event bus itself, through the
pending-announcement marker its PutItem writes, and the scheduled backstop (``lead_publisher``)
announces what a failed or interrupted delivery left pending. What reaches the bus is observed
through a rule → SQS queue in moto, exactly as a subscriber of the bus would see it."""

from __future__ import annotations

import json

import pytest
from orcapulse_tiktok import announce, clock
from orcapulse_tiktok.models.lead import Lead

from tests.support.connect import connect
from tests.support.events import LambdaContext, scheduled_event
from tests.support.faults import aws_calls
from tests.support.webhooks import (
    MovableClock,
    comment_content,
    high_intent_content,
    message_content,
    pending_announcements,
    recording_aws_calls,
    status_of,
)

GRACE_SECONDS = announce.LEASE_MS / 1000


@pytest.fixture
def now(monkeypatch) -> MovableClock:
    moving = MovableClock()
    monkeypatch.setattr(clock, "now", moving)
    return moving


def publisher_context(remaining_ms: int = 60_000) -> LambdaContext:
    """A Lambda context with the backstop's own time budget."""
    return LambdaContext(function_name="lead-publisher", remaining_ms=remaining_ms)


@pytest.fixture
def sweep(load_function, aws):
    module = load_function("lead_publisher")

    def run(context: LambdaContext | None = None) -> dict:
        return module.lambda_handler(scheduled_event(), context or publisher_context())

    return run


def public_leads(aws) -> dict[str, dict]:
    leads = (Lead.from_raw_data(item).to_public() for item in aws.items("LeadsTable"))
    return {lead["lead_id"]: lead for lead in leads}


def pending(aws) -> dict[str, int]:
    return pending_announcements(aws.items("LeadsTable"))


def stuck_lead(webhook, comment_id: int = 1) -> None:
    """A delivery that dies between storing its lead and announcing it: PutEvents fails and so
    does the hand-back, so the lead stays pending and owned until its lease ends."""
    with aws_calls(fail={"PutEvents": 1, "UpdateItem": 1}):
        response = webhook.deliver("comment.update", "open-id-alpha", comment_content(comment_id))
    assert status_of(response) == (503, "temporarily_unavailable")


def deliver_at(webhook, when: float, content: dict) -> dict:
    """A comment delivery signed at ``when`` (TikTok signs with its own clock)."""
    body = webhook.state.envelope("comment.update", "open-id-alpha", content, create_time=int(when))
    return webhook.post(body, webhook.signed(body, timestamp=int(when)))


# -- announced by the webhook ----------------------------------------------------------------------
def test_each_new_lead_is_announced_once_with_the_lead_in_detail(webhook, alpha, aws, bus):
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", comment_content()))[1] == "accepted"
    assert status_of(webhook.deliver("im_receive_msg", "open-id-alpha", message_content()))[1] == "accepted"

    events = bus.received()
    assert len(events) == 2
    for event in events:
        assert event["source"] == "orcapulse.social-leads"
        assert event["detail-type"] == "SocialLeadCaptured"
    assert {e["detail"]["lead_id"]: e["detail"] for e in events} == public_leads(aws)
    assert {e["detail"]["capture_source"] for e in events} == {"tiktok_comment", "tiktok_dm"}
    assert pending(aws) == {}  # both markers cleared once EventBridge took the events


def test_the_event_detail_is_the_public_lead_and_holds_no_secret(webhook, alpha, aws, bus, tiktok_state):
    webhook.deliver("comment.update", "open-id-alpha", comment_content())
    [event] = bus.received()
    text = json.dumps(event)
    assert not any(secret in text for secret in [*tiktok_state.issued, tiktok_state.client_secret])
    assert set(event["detail"]) == set(next(iter(public_leads(aws).values())))
    assert not {"announce_pending", "announce_due_at", "sort_key", "gsi_status"} & set(event["detail"])


def test_one_account_in_several_workspaces_announces_each_workspaces_lead(
    webhook, load_function, lambda_context, tiktok, aws, bus
):
    for workspace in ("ws-1", "ws-2", "ws-3"):
        connect(load_function, lambda_context, tiktok, workspace=workspace, open_id="open-id-alpha")

    with recording_aws_calls() as calls:
        assert (
            status_of(webhook.deliver("comment.update", "open-id-alpha", comment_content()))[1] == "accepted"
        )

    events = bus.received()
    assert sorted(e["detail"]["workspace_id"] for e in events) == ["ws-1", "ws-2", "ws-3"]
    assert {e["detail"]["lead_id"] for e in events} == set(public_leads(aws))
    assert calls.calls.count("events.PutEvents") == 1  # one call for the whole fan-out
    assert pending(aws) == {}


def test_duplicates_and_lead_updates_announce_nothing_new(webhook, alpha, aws, bus):
    webhook.deliver("comment.update", "open-id-alpha", comment_content())
    assert len(bus.received()) == 1

    assert status_of(webhook.deliver("comment.update", "open-id-alpha", comment_content()))[1] == "duplicate"
    assert (
        status_of(webhook.deliver("im_receive_high_intent_comment", "open-id-alpha", high_intent_content()))[
            1
        ]
        == "duplicate"
    )
    hide = comment_content(action="set_to_hidden", timestamp=1764057660000)
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", hide))[1] == "accepted"

    assert bus.received() == []
    [lead] = public_leads(aws).values()
    assert (lead["high_intent"], lead["source_state"]) == (True, "hidden")


def test_sandbox_mode_announces_nothing(webhook, alpha, aws, bus, monkeypatch):
    from orcapulse_tiktok.config import get_settings

    monkeypatch.setenv("WEBHOOK_MODE", "sandbox")
    get_settings.cache_clear()
    try:
        with recording_aws_calls() as calls:
            assert status_of(webhook.deliver("comment.update", "open-id-alpha", comment_content()))[1] == (
                "accepted"
            )
    finally:
        get_settings.cache_clear()
    assert "events.PutEvents" not in calls.calls
    assert bus.received() == []
    assert aws.items("LeadsTable") == []


# -- a failed publish ------------------------------------------------------------------------------
def test_a_failed_publish_is_503_and_the_redelivery_announces_the_stored_lead(
    webhook, alpha, aws, bus, tiktok_state
):
    body = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content())
    with aws_calls(fail={"PutEvents": 1}):
        assert status_of(webhook.deliver_body(body)) == (503, "temporarily_unavailable")
    [lead_id] = public_leads(aws)
    assert list(pending(aws)) == [lead_id]  # stored, and still waiting for its announcement
    assert bus.received() == []

    # TikTok redelivers: no second lead, but the announcement completes.
    assert status_of(webhook.deliver_body(body)) == (200, "duplicate")
    [event] = bus.received()
    assert event["detail"] == public_leads(aws)[lead_id]
    assert pending(aws) == {}

    assert status_of(webhook.deliver_body(body)) == (200, "duplicate")
    assert bus.received() == []


def test_an_entry_eventbridge_refuses_is_503_too(webhook, alpha, aws, bus, tiktok_state, monkeypatch):
    # A real refusal: EventBridge rejects an entry whose Detail is not JSON (FailedEntryCount 1).
    original = announce.event_entry
    monkeypatch.setattr(
        announce, "event_entry", lambda lead, bus_name: {**original(lead, bus_name), "Detail": "{"}
    )
    body = tiktok_state.envelope("im_receive_msg", "open-id-alpha", message_content())

    assert status_of(webhook.deliver_body(body)) == (503, "temporarily_unavailable")
    assert len(pending(aws)) == 1
    monkeypatch.setattr(announce, "event_entry", original)

    assert status_of(webhook.deliver_body(body)) == (200, "duplicate")
    assert [e["detail"]["capture_source"] for e in bus.received()] == ["tiktok_dm"]
    assert pending(aws) == {}


def test_a_partly_refused_fan_out_announces_the_rest_and_the_redelivery_the_refused(
    webhook, load_function, lambda_context, tiktok, aws, bus, tiktok_state, monkeypatch
):
    connect(load_function, lambda_context, tiktok, workspace="ws-1", open_id="open-id-alpha")
    connect(load_function, lambda_context, tiktok, workspace="ws-2", open_id="open-id-alpha")
    original = announce.event_entry

    def refuse_ws2(lead, bus_name):
        entry = original(lead, bus_name)
        return {**entry, "Detail": "{"} if lead["workspace_id"] == "ws-2" else entry

    monkeypatch.setattr(announce, "event_entry", refuse_ws2)
    body = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content())
    assert status_of(webhook.deliver_body(body)) == (503, "temporarily_unavailable")
    assert [e["detail"]["workspace_id"] for e in bus.received()] == ["ws-1"]
    monkeypatch.setattr(announce, "event_entry", original)

    assert status_of(webhook.deliver_body(body)) == (200, "duplicate")
    assert [e["detail"]["workspace_id"] for e in bus.received()] == ["ws-2"]
    assert len(public_leads(aws)) == 2
    assert pending(aws) == {}


def test_a_high_intent_redelivery_completes_the_announcement_with_the_flag(
    webhook, alpha, aws, bus, tiktok_state
):
    with aws_calls(fail={"PutEvents": 1}):
        webhook.deliver("comment.update", "open-id-alpha", comment_content())
    assert (
        status_of(webhook.deliver("im_receive_high_intent_comment", "open-id-alpha", high_intent_content()))[
            1
        ]
        == "duplicate"
    )
    [event] = bus.received()
    assert event["detail"]["high_intent"] is True
    assert pending(aws) == {}


# -- the backstop ----------------------------------------------------------------------------------
def test_a_lead_stuck_pending_is_announced_by_the_sweeper_once_and_not_before_the_grace_period(
    webhook, alpha, aws, bus, now, sweep
):
    stuck_lead(webhook)
    [lead_id] = pending(aws)

    # Inside the grace period the lead may still be in the hands of a live delivery.
    now.advance(GRACE_SECONDS - 5)
    assert sweep() == {"overdue": 0, "announced": 0, "skipped": 0, "failed": [], "deferred": False}
    # ...and a redelivery leaves it alone too: it answers duplicate without announcing.
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", comment_content(1)))[1] == "duplicate"
    assert bus.received() == []

    now.advance(10)
    assert sweep()["announced"] == 1
    [event] = bus.received()
    assert event["detail"] == public_leads(aws)[lead_id]
    assert pending(aws) == {}

    now.advance(GRACE_SECONDS * 2)
    assert sweep()["overdue"] == 0
    assert status_of(deliver_at(webhook, now(), comment_content(1)))[1] == "duplicate"
    assert bus.received() == []


def test_a_lead_handed_back_after_a_failed_publish_is_swept_on_the_next_run(webhook, alpha, aws, bus, sweep):
    # The delivery handed the lead back (due now); TikTok never came back.
    with aws_calls(fail={"PutEvents": 1}):
        webhook.deliver("comment.update", "open-id-alpha", comment_content())
    assert sweep()["announced"] == 1
    assert len(bus.received()) == 1
    assert pending(aws) == {}


def test_the_sweeper_and_a_redelivery_never_both_announce_a_lead(webhook, alpha, aws, bus, now, sweep):
    stuck_lead(webhook)
    now.advance(GRACE_SECONDS + 1)
    # The redelivery claims the lead; a sweeper run that found it in the index a moment before
    # claims nothing.
    from orcapulse_tiktok.models.lead import leads

    [key] = list(leads().by_pending_announcement.query(next(iter(_shards(aws)))))
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", comment_content(1)))[1] == "duplicate"
    report = announce.SweepReport()
    announce._sweep([(key.workspace_id, key.lead_id)], announce.now_ms(), report)
    assert (report.announced, report.skipped) == (0, 1)
    assert len(bus.received()) == 1


def test_sweeps_send_ten_entries_per_call_and_report_failures_for_the_next_run(
    webhook, alpha, aws, bus, now, sweep, capsys
):
    for comment_id in range(1, 24):
        stuck_lead(webhook, comment_id)
    assert len(pending(aws)) == 23
    now.advance(GRACE_SECONDS + 1)
    capsys.readouterr()

    with aws_calls(fail={"PutEvents": 1}) as calls:
        report = sweep()
    assert calls.operations("events") == ["PutEvents"] * 3
    assert calls.operations("dynamodb").count("Query") == 16  # one per index shard
    # The first call's ten leads failed; the other thirteen went out.
    assert (report["announced"], len(report["failed"])) == (13, 10)
    assert set(report["failed"]) == set(pending(aws))  # the refused batch stays pending
    out = capsys.readouterr().out
    assert '"LateAnnounceFailed":[' in out
    assert '"LeadsAnnouncedLate":[' in out

    now.advance(GRACE_SECONDS + 1)
    assert sweep()["announced"] == len(report["failed"])
    assert bus.lead_ids(wait_seconds=0.2) == sorted(public_leads(aws))
    assert pending(aws) == {}


def test_a_sweep_short_of_time_defers_the_rest(webhook, alpha, aws, bus, now, sweep):
    stuck_lead(webhook)
    now.advance(GRACE_SECONDS + 1)
    assert sweep(publisher_context(remaining_ms=announce.SWEEP_BUDGET_MS - 1))["deferred"] is True
    assert len(pending(aws)) == 1
    assert sweep()["announced"] == 1


def test_the_sweeper_fails_loudly_when_it_cannot_read_the_index(aws, sweep):
    from orcapulse_tiktok.errors import TransientError

    with aws_calls(fail={"Query": 1}), pytest.raises(TransientError):
        sweep()


def _shards(aws) -> list[str]:
    return sorted(
        {item["announce_pending"]["S"] for item in aws.items("LeadsTable") if "announce_pending" in item}
    )
