"""The load test's deliveries and report without a stack (the run itself is tests/load): each kind
of delivery is signed as its TikTok app signs it and parses as the product reads it, a lead-form
delivery carries 100 entries whose people are their normalised email, every kind is repeated, and
the report gives each route its deliveries, p50/p95 and 5xx."""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from types import SimpleNamespace

from orcapulse_tiktok import people
from orcapulse_tiktok.lead_forms import contact_of
from orcapulse_tiktok.tiktok import events as tiktok_events
from orcapulse_tiktok.tiktok import lead_events, lead_signature, signature

from orcapulse_local import config
from orcapulse_local.ads_emulator import AdsEmulator
from orcapulse_local.business_emulator import BusinessEmulator
from orcapulse_local.load import Plan, schedule, sources
from orcapulse_local.load_mix import LEAD_FORM_ENTRIES, LEADS_PATH, WEBHOOK_PATH, Event, make_events
from orcapulse_local.load_report import Report, Sent, check_answers, percentile, person_of
from orcapulse_local.tiktok_emulator import local_state

LOGIN_KINDS = {"comment", "dm"}
BUSINESS_KINDS = {"business comment", "business dm"}


def _events(unique: int = 160) -> tuple[SimpleNamespace, list[Event]]:
    emulator = SimpleNamespace(state=local_state(), business=BusinessEmulator(), ads=AdsEmulator())
    known = sources(SimpleNamespace(emulator=emulator))
    return emulator, make_events(known, unique, 4, random.Random(7))  # nosec B311


def test_each_kind_is_signed_by_its_app_and_names_it():
    emulator, events = _events()
    assert {e.kind for e in events} == LOGIN_KINDS | BUSINESS_KINDS | {"lead form"}
    secrets = [config.LOCAL_CLIENT_SECRET, config.LOCAL_BUSINESS_APP_SECRET]
    for event in (e for e in events if e.path == WEBHOOK_PATH):
        header = signature.parse_header(event.headers(event.body)["TikTok-Signature"])
        signer = signature.verify_any(header, event.body, secrets, now=time.time(), tolerance_seconds=300)
        assert signer == (1 if event.kind in BUSINESS_KINDS else 0)
        envelope = tiktok_events.parse_envelope(event.body)
        assert envelope.client_key == (
            config.LOCAL_BUSINESS_APP_ID if event.kind in BUSINESS_KINDS else config.LOCAL_CLIENT_KEY
        )
        assert envelope.user_openid == event.account
    ads = emulator.ads.state
    [form] = [e for e in events if e.path == LEADS_PATH]
    assert lead_signature.verify(form.headers(form.body)["X-Open-Signature"], form.body, ads.secret)


def test_a_lead_form_delivery_carries_100_entries_whose_person_is_the_normalised_email():
    _, events = _events()
    [form] = [e for e in events if e.path == LEADS_PATH]
    delivery = lead_events.parse_delivery(form.body)
    assert len(delivery.entries) == LEAD_FORM_ENTRIES == len(form.items)
    spellings = set()
    for entry, (person, object_id) in zip(delivery.entries, form.items, strict=True):
        assert entry.lead_id == object_id
        email = contact_of(entry.answers)["email"]
        spellings.add(email)
        assert people.email_key(email) == f"email:{person}"
    assert len(spellings) > len({p for p, _ in form.items})  # one person, several spellings
    assert len({p for p, _ in form.items}) < LEAD_FORM_ENTRIES  # people fill in more than one form


def test_every_kind_is_repeated_and_nothing_else_is_added():
    _, events = _events()
    plan = Plan(deliveries=200)
    order = schedule(events, plan, random.Random(7))  # nosec B311
    assert len(order) == 200
    assert {id(e) for e in order} == {id(e) for e in events}
    sent, unique = Counter(e.kind for e in order), Counter(e.kind for e in events)
    assert all(sent[kind] > unique[kind] for kind in unique), (sent, unique)


def test_the_report_gives_each_route_its_deliveries_percentiles_and_5xx():
    report = Report(deliveries=7)
    comments = [Sent(200, "accepted", ms, "POST /webhooks/tiktok comment") for ms in (10, 20, 30, 40)]
    forms = [
        Sent(200, "accepted", 900, "POST /webhooks/tiktok/leads lead form"),
        Sent(503, "dependency_unavailable", 1200, "POST /webhooks/tiktok/leads lead form"),
        Sent(0, "ReadTimeout", 30000, "POST /webhooks/tiktok/leads lead form"),
    ]
    check_answers(report, comments + forms, seconds=2.0)
    comment = report.routes["POST /webhooks/tiktok comment"]
    assert comment == {"deliveries": 4, "p50": 25.0, "p95": 38.5, "5xx": 0}
    assert comment["p95"] == round(statistics.quantiles([10, 20, 30, 40], n=100, method="inclusive")[94], 1)
    assert report.routes["POST /webhooks/tiktok/leads lead form"]["5xx"] == 2
    assert report.server_errors == 2
    # A lead form's 5xx is reported, and fails the run only if its redelivery fails too; a comment's
    # fails it at once.
    assert report.ok
    report.still_failing = 1
    check_answers(report, comments + forms, seconds=2.0)
    assert not report.ok
    failing_comment = Sent(504, "gateway_timeout", 29000, "POST /webhooks/tiktok comment")
    again = Report(deliveries=8)
    check_answers(again, [*comments, failing_comment, *forms], seconds=2.0)
    assert again.problems == ["1 comment or DM deliveries got a 5xx or no answer"]
    table = report.route_table()
    assert "POST /webhooks/tiktok/leads lead form" in table
    assert table.splitlines()[0].split() == ["route", "deliveries", "p50", "ms", "p95", "ms", "5xx"]
    assert percentile([], 50) == 0.0
    assert percentile([7.0], 95) == 7.0


def test_a_listed_lead_is_its_handle_or_its_normalised_email():
    assert person_of({"author": {"username": "person.3"}, "contact": None}) == "person.3"
    lead = {"author": {"id": None, "username": None}, "contact": {"email": "  Lead.3@Example.COM "}}
    assert person_of(lead) == "lead.3@example.com"
