"""The lead-form catch-up (DESIGN §10): TikTok's lead download task finds the submissions whose
delivery was dropped; they become the same leads the webhook would have made, once."""

from __future__ import annotations

import time
from typing import Any

import pytest

from orcapulse_local.ads_state import AdsState
from tests.support.connect import connect_ads
from tests.support.events import LambdaContext
from tests.support.lead_forms import ADVERTISER, person, signed
from tests.support.webhooks import status_of, stored_interactions, stored_leads


@pytest.fixture
def run(load_function, monkeypatch, aws):
    from orcapulse_tiktok import lead_catchup

    monkeypatch.setattr(lead_catchup, "POLL_SECONDS", 0.0)
    module = load_function("lead_catchup")

    def call(remaining_ms: int = 600_000) -> dict[str, Any]:
        report: dict[str, Any] = module.lambda_handler(
            {"execution_id": "run-1"}, LambdaContext(remaining_ms=remaining_ms)
        )
        return report

    return call


def test_a_dropped_delivery_is_found_and_a_second_run_adds_nothing(
    run, leads_webhook, ads_state: AdsState, form, ads_integration, aws
):
    delivered = [ads_state.submit_lead(ADVERTISER, form, person(n)) for n in range(2)]
    dropped = ads_state.submit_lead(ADVERTISER, form, person(7, comment="call me after 6"))
    body = ads_state.delivery(delivered)
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "accepted")
    assert len(stored_leads(aws)) == 2

    report = run()
    assert (report["accepted"], report["duplicates"], report["failed"]) == (1, 2, [])
    leads = stored_leads(aws)
    assert len(leads) == 3
    [found] = [i for i in stored_interactions(aws) if i["source_ref"]["lead_id"] == str(dropped["id"])]
    assert found["form_fields"] == person(7, comment="call me after 6")
    before = aws.items("LeadsTable")

    again = run()
    assert (again["accepted"], again["duplicates"]) == (0, 3)
    assert aws.items("LeadsTable") == before

    # The late delivery of the dropped lead is a duplicate of what the catch-up made.
    late = ads_state.delivery([dropped])
    assert status_of(leads_webhook(late, signed(ads_state, late))) == (200, "duplicate")


def test_only_the_last_48_hours_are_read(run, ads_state, form, ads_integration, aws):
    ads_state.submit_lead(ADVERTISER, form, person(1), create_time=int(time.time()) - 49 * 3600)
    ads_state.submit_lead(ADVERTISER, form, person(2), create_time=int(time.time()) - 47 * 3600)
    assert run()["accepted"] == 1
    assert [lead["contact"]["email"] for lead in stored_leads(aws)] == ["Ana.Lima2@Example.com"]


def test_a_task_still_running_after_the_polls_waits_for_the_next_run(
    run, ads_state, form, ads_integration, aws, monkeypatch
):
    from orcapulse_local import ads_state as model

    ads_state.submit_lead(ADVERTISER, form, person(1))
    monkeypatch.setattr(model, "TASK_POLLS", 99)
    report = run()
    assert (report["pending_tasks"], report["accepted"]) == (1, 0)
    monkeypatch.setattr(model, "TASK_POLLS", 1)
    assert run()["accepted"] == 1


def test_the_run_completes_pending_subscriptions(
    run, load_function, lambda_context, ads, ads_state, form, aws
):
    ads_state.fail_next("subscribe", 50000)
    connect_ads(load_function, lambda_context, ads, [ADVERTISER])
    assert ads_state.subscriptions == {}
    run()
    assert len(ads_state.subscriptions) == 1


def test_an_invalid_token_marks_needs_reauth_and_the_rest_goes_on(
    run, load_function, lambda_context, ads, ads_state, form, ads_integration, aws
):
    other_advertiser = ads_state.add_advertiser("7300000000000000888")
    other_form = ads_state.add_form(other_advertiser)
    connect_ads(load_function, lambda_context, ads, [other_advertiser], workspace="ws-2", user="user-2")
    ads_state.submit_lead(other_advertiser, other_form, person(3))
    for entry in ads_state.tokens.values():
        if entry["advertiser_ids"] == [ADVERTISER]:
            entry["revoked"] = True  # the advertiser revoked the app at TikTok
    report = run()
    assert report["failed"] == [ads_integration]
    assert report["accepted"] == 1
    [status] = [
        i["status"]["S"]
        for i in aws.items("IntegrationsTable")
        if i["integration_id"]["S"] == ads_integration
    ]
    assert status == "needs_reauth"


def test_rows_become_the_entries_a_delivery_carries():
    from orcapulse_tiktok.lead_catchup import rows_to_entries

    csv_text = (
        "Lead ID,Created Time,Ad ID,Form ID,Email,Phone Number,Ad Name\n"
        "7400000000000000123,2026-12-05 10:00:00,1800000000000000003,7400000000000000001,a@b.pt,+351 91,Plush\n"
        "not-an-id,2026-12-05 10:00:00,,,x@y.pt,,\n"
    ).encode("utf-8-sig")
    [entry] = rows_to_entries(csv_text, ADVERTISER, "7400000000000000001", since=0)
    assert entry.lead_id == "7400000000000000123"
    assert entry.ad_id == "1800000000000000003"
    assert entry.create_time == 1796464800
    assert entry.answers == {"email": "a@b.pt", "phone_number": "+351 91"}
