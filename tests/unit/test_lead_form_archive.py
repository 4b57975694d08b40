"""Lead-form deliveries in the delivery archive (DESIGN §10, §11): kept raw with their headers, a
body too large for a DynamoDB item in S3, replayed through the leads webhook's own code, a new
payload shape quarantined and replayed into a lead after the fix, and an erased person's archived
bodies removed, the S3 object with its item."""

from __future__ import annotations

import json
from typing import Any

import pytest
from orcapulse_tiktok import archive, lead_forms, replay
from orcapulse_tiktok.data import deliveries as store
from orcapulse_tiktok.data import delivery_bodies
from orcapulse_tiktok.errors import DomainError
from orcapulse_tiktok.tiktok import lead_events

from scripts import replay_deliveries
from tests.support.lead_forms import ADVERTISER, person, signed, submissions
from tests.support.lifecycle import LeadWrites
from tests.support.webhooks import (
    archived_deliveries,
    leads_finding,
    quarantined_deliveries,
    recording_aws_calls,
    status_of,
    stored_interactions,
    stored_leads,
)

ROUTE = "POST /webhooks/tiktok/leads"
# Enough entries with a long free-text answer each to pass the item threshold (320 KiB).
LARGE_ENTRIES = 300
NOTE = "Please call after six, I would like the large orca plush and two stickers for the class. "


def _large_delivery(ads_state, form: str) -> bytes:
    entries = [
        ads_state.submit_lead(ADVERTISER, form, person(n, notes=f"{n:04d} " + NOTE * 16))
        for n in range(LARGE_ENTRIES)
    ]
    body = ads_state.delivery(entries)
    assert delivery_bodies.overflows(body)
    return bytes(body)


def test_a_lead_form_delivery_is_kept_raw_with_its_headers_and_an_unverified_one_is_not(
    leads_webhook, ads_state, form, ads_integration, aws
):
    body = ads_state.delivery(submissions(ads_state, form, 2))
    headers = {**signed(ads_state, body), "User-Agent": "TikTok-Marketing-Webhook"}
    assert status_of(leads_webhook(body, headers)) == (200, "accepted")
    # A verified body that is not the documented shape is still 400, and kept (replayable by id).
    odd = b'{"object": 1, "entry": {}}'
    assert status_of(leads_webhook(odd, signed(ads_state, odd))) == (400, "invalid_payload")
    assert status_of(leads_webhook(body, {"X-Open-Signature": "0" * 64}))[0] == 401

    assert len(archived_deliveries(aws)) == 2
    delivery = store.load(archive.delivery_id_of(ROUTE, body))
    assert delivery is not None
    assert (delivery.route, delivery.body) == (ROUTE, body)
    assert delivery.headers["x-open-signature"] == headers["X-Open-Signature"]
    assert delivery.headers["user-agent"] == "TikTok-Marketing-Webhook"
    assert aws.bodies() == {}  # small bodies stay in their item
    # An erasure of each lead the delivery made finds it (its interactions name it).
    assert leads_finding(aws, delivery.delivery_id) == {lead["lead_id"] for lead in stored_leads(aws)}


def test_a_body_over_the_item_limit_goes_to_s3_and_replays(
    leads_webhook, ads_state, form, ads_integration, aws
):
    body = _large_delivery(ads_state, form)
    delivery_id = archive.delivery_id_of(ROUTE, body)
    with recording_aws_calls() as calls:
        # The object first, then its item; entry 101's interaction put is throttled.
        calls.fail_next("dynamodb.PutItem", "ProvisionedThroughputExceededException", after=101)
        assert status_of(leads_webhook(body, signed(ads_state, body))) == (503, "temporarily_unavailable")
    assert calls.calls.index("s3.PutObject") < calls.calls.index("dynamodb.PutItem")
    assert len(stored_leads(aws)) == 100

    [item] = archived_deliveries(aws)
    assert "body" not in item
    assert item["body_key"]["S"] == f"deliveries/{delivery_id}"
    assert aws.bodies() == {f"deliveries/{delivery_id}": body}

    # The replay reads the body from S3 and finishes what the failed attempt began.
    assert [r.outcome for r in replay.replay([delivery_id])] == ["accepted"]
    leads = stored_leads(aws)
    assert len(leads) == LARGE_ENTRIES
    assert all(lead["interaction_count"] == 1 for lead in leads)
    # TikTok's redelivery is the same object and item, and changes nothing.
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "duplicate")
    assert len(archived_deliveries(aws)) == 1
    assert list(aws.bodies()) == [f"deliveries/{delivery_id}"]


def _choices(value: Any) -> Any:
    """A multiple-choice answer as TikTok might send it tomorrow: options as objects."""
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        return [v.get("label") if isinstance(v, dict) else v for v in value]
    return value


def test_a_new_answer_shape_is_quarantined_then_replayed_into_a_lead_after_the_fix(
    leads_webhook, ads_state, form, ads_integration, aws, monkeypatch, capsys
):
    original = lead_events._answers

    def parser_before_the_fix(changes: Any, n: int) -> dict[str, str]:
        # A parser that joins a multiple-choice answer without checking its items: options sent
        # as objects make it fail unexpectedly (a bug), rather than refuse the delivery.
        for change in changes or []:
            if isinstance(change.get("value"), list):
                ", ".join(change["value"])
        return original(changes, n)

    def parser_after_the_fix(changes: Any, n: int) -> dict[str, str]:
        fixed = [
            {**c, "value": _choices(c.get("value"))} if isinstance(c, dict) else c for c in changes or []
        ]
        return original(fixed, n)

    monkeypatch.setattr(lead_events, "_answers", parser_before_the_fix)
    entry = ads_state.submit_lead(ADVERTISER, form, person(7))
    entry["changes"].append(
        {"field": "merch", "value": [{"id": "1", "label": "Orca plush"}, {"id": "2", "label": "Sticker"}]}
    )
    body = ads_state.delivery([entry])
    # Answered 200 (TikTok stops retrying what it cannot fix), only once quarantined.
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "accepted")
    [delivery_id] = quarantined_deliveries(aws)
    assert next(i["failure"]["S"] for i in archived_deliveries(aws)) == "TypeError"
    assert stored_leads(aws) == []
    emitted = capsys.readouterr().out
    assert '"DeliveryQuarantined"' in emitted
    # Logged by code and place, never with the content.
    assert "Orca plush" not in emitted
    assert "Ana.Lima7" not in emitted

    # A replay before the fix quarantines it again and changes nothing.
    assert [r.outcome for r in replay.replay([delivery_id])] == ["quarantined"]
    assert quarantined_deliveries(aws) == [delivery_id]

    # The fix, then the documented command's replay of the quarantined deliveries.
    monkeypatch.setattr(lead_events, "_answers", parser_after_the_fix)
    said: list[str] = []
    assert replay_deliveries.run(replay_deliveries.parse_args(["--quarantined"]), say=said.append) == 0
    assert said == [f"{delivery_id} {ROUTE} accepted", "replayed: 1 accepted"]
    [lead] = stored_leads(aws)
    assert lead["contact"]["email"] == "Ana.Lima7@Example.com"
    [interaction] = stored_interactions(aws, lead["lead_id"])
    assert interaction["form_fields"]["merch"] == "Orca plush, Sticker"
    assert quarantined_deliveries(aws) == []
    # Idempotent: replaying it again is a duplicate, and TikTok's late redelivery too.
    assert [r.outcome for r in replay.replay([delivery_id])] == ["duplicate"]
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "duplicate")
    assert len(stored_leads(aws)) == 1


def test_a_forged_signature_in_the_archive_is_not_replayed(
    leads_webhook, ads_state, form, ads_integration, aws
):
    body = ads_state.delivery(submissions(ads_state, form, 1))
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "accepted")
    delivery = store.load(archive.delivery_id_of(ROUTE, body))
    assert delivery is not None
    tampered = delivery._replace(body=body.replace(b"Ana Lima 0", b"Eve Lima 0"))
    assert lead_forms.replay(delivery) == "duplicate"
    with pytest.raises(DomainError) as refused:
        lead_forms.replay(tampered)
    assert (refused.value.status, refused.value.code) == (401, "signature_invalid")
    assert len(stored_leads(aws)) == 1


def test_erasing_a_lead_form_person_removes_the_archived_body_item_and_object(
    leads_webhook, ads_state, form, ads_integration, aws, load_function, lambda_context
):
    body = _large_delivery(ads_state, form)
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "accepted")
    assert len(aws.bodies()) == 1
    erased = next(lead for lead in stored_leads(aws) if lead["contact"]["name"] == "Ana Lima 3")

    status, _ = LeadWrites(load_function, lambda_context).erase(erased["lead_id"])
    assert status == 204
    # The delivery carried the person: removed whole, its S3 body with its item, and the references.
    assert archived_deliveries(aws) == []
    assert aws.bodies() == {}
    assert not [i for i in aws.items("DeliveriesTable") if i["pk"]["S"] == f"R#{erased['lead_id']}"]
    assert store.forget_deliveries([erased["lead_id"]]) == 0  # safe to repeat

    # TikTok redelivers it later: kept again on arrival, then dropped — object and item — once the
    # erased person's entry is found older than the erasure (archive.erased_person).
    assert status_of(leads_webhook(body, signed(ads_state, body)))[0] == 200
    assert archived_deliveries(aws) == []
    assert aws.bodies() == {}
    text = json.dumps(aws.items("DeliveriesTable"))
    assert "Ana.Lima3@Example.com" not in text


def test_a_redelivery_of_finished_entries_still_names_their_leads_for_an_erasure(
    leads_webhook, ads_state, form, ads_integration, aws
):
    """A first attempt that failed half-way, and whose best-effort references failed too: the
    redelivery finds the applied entries finished without a write, yet remembers their leads."""
    body = ads_state.delivery(submissions(ads_state, form, 3))
    with recording_aws_calls() as calls:
        # The second entry's interaction put is throttled (the archive's item, then the first
        # entry's), and the references of the failing attempt are lost with it.
        calls.fail_next("dynamodb.PutItem", "ProvisionedThroughputExceededException", after=2)
        calls.fail_next("dynamodb.BatchWriteItem", "ProvisionedThroughputExceededException")
        assert status_of(leads_webhook(body, signed(ads_state, body)))[0] == 503
    [first] = stored_leads(aws)
    assert not [i for i in aws.items("DeliveriesTable") if i["pk"]["S"] == f"R#{first['lead_id']}"]

    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "accepted")
    delivery_id = archive.delivery_id_of(ROUTE, body)
    assert leads_finding(aws, delivery_id) == {lead["lead_id"] for lead in stored_leads(aws)}
    assert f"R#{first['lead_id']}" in {i["pk"]["S"] for i in aws.items("DeliveriesTable")}
    assert store.forget_deliveries([first["lead_id"]]) == 1
    assert archived_deliveries(aws) == []
