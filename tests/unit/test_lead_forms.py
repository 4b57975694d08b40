"""Lead forms (DESIGN §10): TikTok Ads Instant Form submissions delivered to
``POST /webhooks/tiktok/leads`` become ``lead_form`` interactions on people's leads, once each.

Deliveries are shaped as the Marketing API documents them (ids as 19-digit JSON numbers) and signed
with ``X-Open-Signature`` by the fake Business app (``orcapulse_local.ads_state``)."""

from __future__ import annotations

import json

import pytest

from orcapulse_local.ads_state import AdsState
from tests.support.connect import connect_ads
from tests.support.deployment import LEADS_WEBHOOK_URL
from tests.support.lead_forms import (
    ADVERTISER,
    person,
    signed,
    submissions,
)
from tests.support.webhooks import recording_aws_calls, status_of, stored_interactions, stored_leads


def test_a_submission_becomes_a_lead_form_interaction_on_the_persons_lead(
    leads_webhook, ads_state, form, ads_integration, aws
):
    entry = ads_state.submit_lead(ADVERTISER, form, person(1), lead_id="7400000000000000123")
    body = ads_state.delivery([entry])
    assert b'"id": 7400000000000000123' in body  # a JSON number, as TikTok sends it

    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "accepted")

    [lead] = stored_leads(aws)
    assert lead["integration_id"] == ads_integration
    assert lead["capture_source"] == "tiktok_lead_form"
    assert lead["capture_sources"] == ["tiktok_lead_form"]
    assert lead["contact"] == {
        "name": "Ana Lima 1",
        "email": "Ana.Lima1@Example.com",
        "phone": "+351912340001",
    }
    [interaction] = stored_interactions(aws, lead["lead_id"])
    assert interaction["kind"] == "lead_form"
    assert interaction["form_fields"] == person(1)
    assert interaction["source_ref"]["lead_id"] == "7400000000000000123"
    assert interaction["source_ref"]["advertiser_id"] == ADVERTISER
    assert interaction["source_ref"]["page_id"] == form


def test_a_redelivery_adds_nothing(leads_webhook, ads_state, form, ads_integration, aws):
    body = ads_state.delivery(submissions(ads_state, form, 3))
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "accepted")
    before = aws.items("LeadsTable")

    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "duplicate")
    # A partial redelivery (one entry of it) too.
    part = ads_state.delivery([json.loads(body)["entry"][1]])
    assert status_of(leads_webhook(part, signed(ads_state, part))) == (200, "duplicate")
    assert aws.items("LeadsTable") == before


def test_one_person_by_email_whatever_its_case_else_phone_else_the_entry(
    leads_webhook, ads_state, form, ads_integration, aws
):
    entries = [
        ads_state.submit_lead(ADVERTISER, form, {"email": "Ana@Example.com", "size": "L"}),
        ads_state.submit_lead(ADVERTISER, form, {"email": " ana@example.COM ", "size": "XL"}),
        ads_state.submit_lead(ADVERTISER, form, {"phone_number": "+351 912 345 678"}),
        ads_state.submit_lead(ADVERTISER, form, {"phone_number": "+351912345678", "city": "Lisbon"}),
        ads_state.submit_lead(ADVERTISER, form, {"city": "Porto"}),
    ]
    body = ads_state.delivery(entries)
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "accepted")
    counts = sorted(lead["interaction_count"] for lead in stored_leads(aws))
    assert counts == [1, 2, 2]


@pytest.mark.heavy  # moto prices each of the ~2,000 writes' update expressions: minutes in all
def test_a_thousand_entries_failing_at_entry_500_then_redelivered_complete_once(
    leads_webhook, ads_state, form, ads_integration, aws
):
    body = ads_state.delivery(submissions(ads_state, form, 1000))
    with recording_aws_calls() as calls:
        # Entry 500's interaction put is throttled (the archive's item, then entries 1..499 made
        # one PutItem each).
        calls.fail_next("dynamodb.PutItem", "ProvisionedThroughputExceededException", after=500)
        assert status_of(leads_webhook(body, signed(ads_state, body))) == (503, "temporarily_unavailable")
    assert len(stored_leads(aws)) == 499

    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "accepted")
    leads = stored_leads(aws)
    assert len(leads) == 1000
    assert all(lead["interaction_count"] == 1 for lead in leads)
    ids = {i["source_ref"]["lead_id"] for i in stored_interactions(aws)}
    assert ids == {str(e["id"]) for e in json.loads(body)["entry"]}  # 19 digits each, exact
    # Another redelivery of the whole thing: duplicates found by batch reads, not one lead write
    # (the one PutItem is the archive's item, the same delivery kept again).
    with recording_aws_calls() as calls:
        assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "duplicate")
    assert [c for c in calls.calls if c in ("dynamodb.PutItem", "dynamodb.UpdateItem")] == [
        "dynamodb.PutItem"
    ]


def test_a_lost_answer_mid_entry_is_finished_by_the_redelivery(
    leads_webhook, ads_state, form, ads_integration, aws
):
    body = ads_state.delivery(submissions(ads_state, form, 2))
    with recording_aws_calls() as calls:
        calls.lose_next("dynamodb.UpdateItem")  # the first lead write takes effect, its answer is lost
        assert status_of(leads_webhook(body, signed(ads_state, body)))[0] == 503
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "accepted")
    assert [lead["interaction_count"] for lead in stored_leads(aws)] == [1, 1]


def test_other_objects_are_acknowledged_and_ignored(leads_webhook, ads_state, form, ads_integration, aws):
    review = json.dumps(
        {
            "object": 3,
            "time": 1764057600,
            "entry": [{"ad_id": 1800000000000000003, "changes": [{"field": "status"}]}],
        }
    ).encode()
    assert status_of(leads_webhook(review, signed(ads_state, review))) == (200, "ignored")
    assert stored_leads(aws) == []


def test_an_unknown_advertiser_is_ignored(leads_webhook, ads_state, form, ads_integration, aws):
    stranger = ads_state.add_advertiser("7300000000000000999")
    entry = ads_state.submit_lead(stranger, ads_state.add_form(stranger), person(5))
    body = ads_state.delivery([entry])
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "ignored")
    assert stored_leads(aws) == []


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "signature_missing"),
        ({"X-Open-Signature": "0" * 64}, "signature_invalid"),
        ({"X-Open-Signature": "not-hex"}, "signature_invalid"),
    ],
)
def test_bad_and_missing_signatures_are_401_and_store_nothing(
    leads_webhook, ads_state, form, ads_integration, aws, headers, code
):
    body = ads_state.delivery(submissions(ads_state, form, 1))
    response = leads_webhook(body, headers)
    assert response["statusCode"] == 401
    assert json.loads(response["body"]) == {
        "error": {"code": code, "message": json.loads(response["body"])["error"]["message"]}
    }
    assert stored_leads(aws) == []


def test_a_signature_made_with_another_secret_is_401(leads_webhook, ads_state, form, ads_integration, aws):
    body = ads_state.delivery(submissions(ads_state, form, 1))
    other = AdsState(app_id=ads_state.app_id, secret="another-app-secret")
    assert status_of(leads_webhook(body, signed(other, body))) == (401, "signature_invalid")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not json", "invalid_json"),
        (b'{"object": 1, "entry": {}}', "invalid_payload"),
        (
            b'{"object": 1, "entry": [{"id": 7.4e18, "advertiser_id": 7300000000000000777}]}',
            "invalid_payload",
        ),
        (
            b'{"object": 1, "entry": [{"id": 1, "advertiser_id": 7300000000000000777, "changes": [{"value": "x"}]}]}',
            "invalid_payload",
        ),
        (b'{"object": "lead", "entry": []}', "invalid_payload"),
    ],
)
def test_bad_bodies_are_400_and_store_nothing(
    leads_webhook, ads_state, form, ads_integration, aws, body, code
):
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (400, code)
    assert stored_leads(aws) == []


def test_more_than_1000_entries_or_4_mib_are_refused(leads_webhook, ads_state, form, ads_integration, aws):
    entry = json.loads(ads_state.delivery(submissions(ads_state, form, 1)))["entry"][0]
    many = ads_state.delivery([entry] * 1001)
    assert status_of(leads_webhook(many, signed(ads_state, many))) == (400, "invalid_payload")
    huge = b'{"object": 1, "entry": [], "pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    assert status_of(leads_webhook(huge, signed(ads_state, huge))) == (413, "payload_too_large")


def test_the_signature_covers_the_body_with_non_ascii_escaped(
    leads_webhook, ads_state, form, ads_integration, aws
):
    # TikTok signs the delivery with non-ASCII characters written as \\uXXXX (äöå → \\u00e4\\u00f6\\u00e5):
    # a body sent as UTF-8 verifies with the signature of its escaped form.
    entry = ads_state.submit_lead(ADVERTISER, form, {"name": "Zoë Ångström", "email": "zoe@example.se"})
    escaped = ads_state.delivery([entry])  # json.dumps escapes: the form TikTok signs
    assert b"\\u00eb" in escaped
    utf8 = json.dumps(json.loads(escaped), ensure_ascii=False).encode()
    assert status_of(leads_webhook(utf8, {"X-Open-Signature": ads_state.signature(escaped)})) == (
        200,
        "accepted",
    )
    assert stored_leads(aws)[0]["contact"]["name"] == "Zoë Ångström"


def test_the_signature_test_vector():
    from orcapulse_tiktok.tiktok import lead_signature

    # Built from the documented algorithm (docs/lead-forms.md): HMAC-SHA256, key = the app secret,
    # message = the body with non-ASCII escaped; checked with `openssl dgst -sha256 -hmac`.
    body = '{"object":1,"entry":[{"id":7400000000000000123,"changes":[{"field":"name","value":"äöå"}]}]}'.encode()
    assert lead_signature.escape_non_ascii("äöå".encode()) == b"\\u00e4\\u00f6\\u00e5"
    vector = "82b7e44063fe26dfdf97c1035ae8b0f39974468c940d294c4e87442bd2840025"
    assert lead_signature.sign(body, "orcapulse-vector-secret") == vector
    assert lead_signature.verify(vector, body, "orcapulse-vector-secret")
    assert lead_signature.verify(vector.upper(), body, "orcapulse-vector-secret")
    assert not lead_signature.verify(vector, body + b" ", "orcapulse-vector-secret")
    assert not lead_signature.verify(vector, body, "another-secret")
    assert lead_signature.escape_non_ascii("🐋".encode()) == b"\\ud83d\\udc0b"


def test_two_workspaces_with_one_advertiser_both_get_the_lead(
    load_function, lambda_context, leads_webhook, ads, ads_state, form, ads_integration, aws
):
    other = connect_ads(load_function, lambda_context, ads, [ADVERTISER], workspace="ws-2", user="user-2")
    body = ads_state.delivery(submissions(ads_state, form, 1))
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "accepted")
    assert sorted(lead["integration_id"] for lead in stored_leads(aws)) == sorted([ads_integration, other])
    # One subscription serves both: the second connect adopted the first's.
    assert [s["callback_url"] for s in ads_state.subscriptions.values()] == [LEADS_WEBHOOK_URL]


def test_the_lead_and_its_answers_are_announced_once_on_the_bus(
    leads_webhook, ads_state, form, ads_integration, bus
):
    first = ads_state.submit_lead(ADVERTISER, form, person(1))
    body = ads_state.delivery([first])
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "accepted")
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "duplicate")
    [captured] = bus.received()
    assert captured["detail-type"] == "SocialLeadCaptured"
    assert captured["detail"]["contact"]["email"] == "Ana.Lima1@Example.com"
    assert captured["detail"]["interaction"]["form_fields"] == person(1)
    assert captured["detail"]["capture_source"] == "tiktok_lead_form"

    again = ads_state.submit_lead(ADVERTISER, form, person(1, preferred_size="small"))
    body = ads_state.delivery([again])
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "accepted")
    [activity] = bus.received()
    assert activity["detail-type"] == "SocialLeadActivity"
    assert activity["detail"]["lead_id"] == captured["detail"]["lead_id"]
    assert activity["detail"]["interaction"]["form_fields"]["preferred_size"] == "small"


def test_sandbox_mode_verifies_and_acknowledges_without_storing(
    leads_webhook, ads_state, form, ads_integration, aws, monkeypatch
):
    from orcapulse_tiktok.config import get_settings

    monkeypatch.setenv("WEBHOOK_MODE", "sandbox")
    get_settings.cache_clear()
    body = ads_state.delivery(submissions(ads_state, form, 2))
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "accepted")
    assert status_of(leads_webhook(body, {"X-Open-Signature": "0" * 64})) == (401, "signature_invalid")
    assert stored_leads(aws) == []
    get_settings.cache_clear()
