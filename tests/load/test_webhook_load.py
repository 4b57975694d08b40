"""Signed deliveries from concurrent senders through the local gateway — Login Kit and business
comments and DMs, lead-form deliveries of 100 entries — written by a pool of people: afterwards each
person is one lead holding exactly their unique events (form entries), the bus saw each person
captured once and each later interaction once, and no comment or DM answered a 5xx (a lead form
that did was delivered again and finished).

``make test`` sends ``ORCAPULSE_LOAD_DELIVERIES`` (default 200); ``make load`` runs the full
2,000 through ``python -m orcapulse_local.load``."""

from __future__ import annotations

import os

import pytest

from orcapulse_local import ads_emulator
from orcapulse_local.load import Plan, run

pytestmark = pytest.mark.slow
DELIVERIES = int(os.environ.get("ORCAPULSE_LOAD_DELIVERIES", "200"))


def test_duplicated_concurrent_deliveries_make_each_person_one_lead(stack, capsys):
    plan = Plan(deliveries=DELIVERIES, duplicate_share=0.2, senders=16, time_limit=300)
    report = run(stack, plan)
    with capsys.disabled():
        print(f"\nwebhook load through the local gateway:\n{report.table()}")
    assert report.ok, report.problems
    # Comments and DMs never got a 5xx; a 100-entry lead form that outlasted the gateway behind the
    # emulated DynamoDB was delivered again, as TikTok does, and finished.
    assert all(r["5xx"] == 0 for route, r in report.routes.items() if "/leads" not in route)
    assert report.still_failing == 0
    assert report.people == report.expected_people
    assert report.people < report.expected_interactions  # people did write more than once
    assert report.interactions == report.expected_interactions
    assert report.wrong_counts == 0
    assert report.people_captured_once == report.people
    assert report.activity == report.expected_interactions - report.people
    assert report.accounts >= 4
    assert report.advertisers == 1
    assert report.workspaces >= 2
    assert report.duplicates_sent == round(DELIVERIES * 0.2)
    # Every kind of delivery was sent, and repeated: a lead form's repeat created nothing.
    sent = {route: int(r["deliveries"]) for route, r in report.routes.items()}
    kinds = ("comment", "dm", "business comment", "business dm")
    assert all(sent[f"POST /webhooks/tiktok {kind}"] >= 2 for kind in kinds), sent
    assert sent["POST /webhooks/tiktok/leads lead form"] >= 2, sent
    assert report.interactions_per_second > 0
    assert report.warm_workers["WebhookFunction"] >= 1
    assert report.warm_workers["LeadsWebhookFunction"] >= 1

    # Nothing the emulators issued (codes, tokens), nor a form's answers, reached a function log.
    ads = ads_emulator.of(stack.emulator).state
    secret = [*stack.emulator.state.issued, *stack.emulator.business.state.issued, *ads.issued, *ads.personal]
    text = "\n".join(line for _, line in list(stack.logs))
    assert not [s for s in secret if s in text]
