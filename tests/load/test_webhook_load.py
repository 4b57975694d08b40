"""Signed webhook deliveries from concurrent senders through the local gateway: afterwards the
leads are exactly the unique events, each announced once, and nothing answered a 5xx.

``make test`` sends ``ORCAPULSE_LOAD_DELIVERIES`` (default 200); ``make load`` runs the full
2,000 through ``python -m orcapulse_local.load``."""

from __future__ import annotations

import os

import pytest

from orcapulse_local.load import Plan, run

pytestmark = pytest.mark.slow
DELIVERIES = int(os.environ.get("ORCAPULSE_LOAD_DELIVERIES", "200"))


def test_duplicated_concurrent_deliveries_make_each_lead_once(stack, capsys):
    plan = Plan(deliveries=DELIVERIES, duplicate_share=0.2, senders=16, time_limit=300)
    report = run(stack, plan)
    with capsys.disabled():
        print(f"\nwebhook load through the local gateway:\n{report.table()}")
    assert report.ok, report.problems
    assert report.server_errors == 0
    assert report.leads == report.expected_leads
    assert report.leads_announced_once == report.leads
    assert report.accounts >= 3
    assert report.workspaces >= 2
    assert report.duplicates_sent == round(DELIVERIES * 0.2)

    # Nothing the emulator issued (codes, tokens) reached a function log.
    issued = list(stack.emulator.state.issued)
    text = "\n".join(line for _, line in list(stack.logs))
    assert not [s for s in issued if s in text]
