"""The delivery archive (DESIGN §11): every verified delivery kept raw with its headers, a delivery
the code cannot process quarantined (200 only once it is), replayed after the fix into a lead, and
an erased person's deliveries found and removed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from orcapulse_tiktok import archive, clock, erasure, replay
from orcapulse_tiktok.data import deliveries as store
from orcapulse_tiktok.tiktok import events

from scripts import replay_deliveries
from tests.support.webhooks import (
    archived_deliveries,
    comment_content,
    lead_items,
    quarantined_deliveries,
    recording_aws_calls,
    status_of,
)

NEW_SHAPE_TEXT = "Is the orca plush back? Asking for my niece"


def _new_shape_content() -> dict[str, Any]:
    """``comment.update`` as TikTok might send it tomorrow: the text as an object, like a DM's."""
    return {**comment_content(7321234567890123999), "text": {"body": NEW_SHAPE_TEXT, "lang": "en"}}


def _fixed_comment_parser(content: dict[str, Any]) -> events.CommentUpdate:
    """The parser after the fix: reads the text from either shape."""
    text = content.get("text")
    if isinstance(text, dict):
        content = {**content, "text": text.get("body")}
    parsed: events.CommentUpdate = events._comment_update(content)
    return parsed


def test_every_verified_delivery_is_kept_raw_with_its_headers_and_an_unverified_one_is_not(
    webhook, alpha, aws, tiktok_state
):
    body = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content())
    headers = {**webhook.signed(body), "User-Agent": "TikTok-Webhook"}
    assert status_of(webhook.post(body, headers)) == (200, "accepted")
    assert status_of(webhook.post(b"not json", webhook.signed(b"not json")))[0] == 400
    assert status_of(webhook.post(body, webhook.signed(body, secret="wrong")))[0] == 401

    assert len(archived_deliveries(aws)) == 2  # the lead and the one that is not JSON; not the forged one
    delivery = store.load(archive.delivery_id_of("POST /webhooks/tiktok", body))
    assert delivery is not None
    assert delivery.body == body
    assert delivery.headers["tiktok-signature"] == headers["TikTok-Signature"]
    assert delivery.headers["user-agent"] == "TikTok-Webhook"
    item = next(i for i in archived_deliveries(aws) if i["body"]["B"] == body)
    # Kept for DELIVERY_RETENTION_DAYS (7 by default), then DynamoDB's TTL removes it.
    assert int(item["expires_at"]["N"]) - int(item["received_ms"]["N"]) // 1000 == 7 * 86400


def test_a_redelivery_is_the_same_archived_delivery(webhook, alpha, aws, tiktok_state):
    body = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content())
    assert status_of(webhook.deliver_body(body)) == (200, "accepted")
    assert status_of(webhook.deliver_body(body)) == (200, "duplicate")
    assert len(archived_deliveries(aws)) == 1


def test_a_new_payload_shape_is_quarantined_then_replayed_into_a_lead_after_the_fix(
    webhook, alpha, aws, tiktok_state, monkeypatch, capsys
):
    body = tiktok_state.envelope("comment.update", "open-id-alpha", _new_shape_content())
    # Answered 200 (TikTok stops retrying what it cannot fix), only once quarantined.
    assert status_of(webhook.deliver_body(body)) == (200, "accepted")
    [delivery_id] = quarantined_deliveries(aws)
    assert lead_items(aws.items("LeadsTable")) == []
    emitted = capsys.readouterr().out
    assert '"DeliveryQuarantined"' in emitted
    assert NEW_SHAPE_TEXT not in emitted  # the failure is logged by code, never with the payload

    # A replay before the fix quarantines it again and changes nothing.
    assert [r.outcome for r in replay.replay([delivery_id])] == ["quarantined"]
    assert quarantined_deliveries(aws) == [delivery_id]

    # The fix, then the documented command's replay of the quarantined deliveries.
    monkeypatch.setitem(events._PARSERS, events.COMMENT_UPDATE, _fixed_comment_parser)
    said: list[str] = []
    args = replay_deliveries.parse_args(["--quarantined"])
    assert replay_deliveries.run(args, say=said.append) == 0
    assert said == [f"{delivery_id} POST /webhooks/tiktok accepted", "replayed: 1 accepted"]
    [lead] = lead_items(aws.items("LeadsTable"))
    assert lead["message"]["S"] == NEW_SHAPE_TEXT
    assert quarantined_deliveries(aws) == []
    # Idempotent: replaying it again is a duplicate, and TikTok's late redelivery too.
    assert [r.outcome for r in replay.replay([delivery_id])] == ["duplicate"]
    assert status_of(webhook.deliver_body(body)) == (200, "duplicate")
    assert len(lead_items(aws.items("LeadsTable"))) == 1


def test_an_unexpected_error_is_quarantined_not_dropped(webhook, alpha, aws, tiktok_state, monkeypatch):
    from orcapulse_tiktok import webhook as ingress

    def broken(_event: Any) -> str:
        raise KeyError("a bug")

    monkeypatch.setattr(ingress, "capture", broken)
    body = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content())
    assert status_of(webhook.deliver_body(body)) == (200, "accepted")
    [delivery_id] = quarantined_deliveries(aws)
    failure = next(i["failure"]["S"] for i in archived_deliveries(aws))
    assert failure == "KeyError"
    monkeypatch.undo()
    assert [r.outcome for r in replay.replay(replay.select(quarantined=True))] == ["accepted"]
    assert len(lead_items(aws.items("LeadsTable"))) == 1
    assert quarantined_deliveries(aws) == []
    assert delivery_id not in quarantined_deliveries(aws)


@pytest.mark.parametrize("failing", ["dynamodb.PutItem", "dynamodb.UpdateItem"])
def test_a_delivery_not_safely_kept_or_quarantined_is_5xx(webhook, alpha, aws, tiktok_state, failing):
    """Keep fails (PutItem) or the quarantine mark fails (UpdateItem): TikTok must retry."""
    body = tiktok_state.envelope("comment.update", "open-id-alpha", _new_shape_content())
    with recording_aws_calls() as calls:
        calls.fail_next(failing, "InternalServerError")
        assert status_of(webhook.deliver_body(body)) == (503, "temporarily_unavailable")
    assert status_of(webhook.deliver_body(body)) == (200, "accepted")
    assert len(quarantined_deliveries(aws)) == 1


def test_a_time_range_and_a_list_of_ids_select_deliveries(webhook, alpha, aws, tiktok_state, monkeypatch):
    start = clock.now()
    sent: list[bytes] = []
    for n, offset in enumerate((0, 1800, 3 * 3600)):
        monkeypatch.setattr(clock, "now", lambda offset=offset: start + offset)
        body = tiktok_state.envelope(
            "comment.update", "open-id-alpha", comment_content(7321234567890120000 + n)
        )
        sent.append(body)
        assert status_of(webhook.post(body, webhook.signed(body, timestamp=int(start + offset))))[0] == 200
    ids = [archive.delivery_id_of("POST /webhooks/tiktok", body) for body in sent]
    start_ms = int(start * 1000)
    assert list(replay.select(since_ms=start_ms, until_ms=start_ms + 3600_000)) == ids[:2]
    assert list(replay.select(since_ms=start_ms)) == ids
    assert list(replay.select(ids=[ids[2]])) == [ids[2]]
    assert [r.outcome for r in replay.replay(ids)] == ["duplicate"] * 3
    assert [r.outcome for r in replay.replay(["0" * 32])] == ["missing"]


def test_an_erasure_removes_every_delivery_of_the_person(webhook, alpha, aws, tiktok_state):
    """The erasure of §9 finds the deliveries that touched the person — named by their interactions
    (the usual delivery) or by a reference item (one that touched the lead without storing an
    interaction: here TikTok's high-intent event about a known comment) — and removes them whole;
    the others stay."""
    fan = comment_content(7321234567890123001, unique_identifier="orca_fan_88")
    fan_again = comment_content(7321234567890123002, unique_identifier="orca_fan_88")
    other = comment_content(7321234567890123003, unique_identifier="someone_else")
    for content in (fan, fan_again, other):
        assert status_of(webhook.deliver("comment.update", "open-id-alpha", content))[0] == 200
    flagged = {
        "comment_id": fan["comment_id"],
        "comment_text": fan["text"],
        "unique_identifier": "orca_fan_88",
    }
    flagged.update(is_follower=True, timestamp=fan["timestamp"])
    assert status_of(webhook.deliver("im_receive_high_intent_comment", "open-id-alpha", flagged))[0] == 200
    leads = {
        i["author"]["M"]["username"]["S"]: i["lead_id"]["S"] for i in lead_items(aws.items("LeadsTable"))
    }
    assert len(archived_deliveries(aws)) == 4
    refs = [i for i in aws.items("DeliveriesTable") if i["pk"]["S"] == f"R#{leads['orca_fan_88']}"]
    assert len(refs) == 1  # only the high-intent delivery needed one
    erasure.erase("ws-1", leads["orca_fan_88"])
    remaining = archived_deliveries(aws)
    assert len(remaining) == 1
    assert json.loads(bytes(remaining[0]["body"]["B"]))["content"].find("someone_else") > 0
    assert not [i for i in aws.items("DeliveriesTable") if i["pk"]["S"] == f"R#{leads['orca_fan_88']}"]
    # Safe to repeat: what is gone is done.
    erasure.forget_person([leads["orca_fan_88"]], erased_ms=0, applied={})
    assert store.forget_deliveries([leads["orca_fan_88"]], also={}) == 0
