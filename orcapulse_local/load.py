"""A bounded load test of the webhooks through the local stack, on loopback only.

    python -m orcapulse_local.load                 # 2,000 deliveries, 20% duplicates, 16 senders
    python -m orcapulse_local.load --deliveries 200 --json

It starts its own stack on free 127.0.0.1 ports and connects, through the real OAuth flows, a few
TikTok accounts to two workspaces (one account in both), a business account (TikTok API for
Business, DESIGN §8) to both, and an advertiser with a lead-form subscription (DESIGN §10) to one.
Then it sends signed deliveries of the mix (``load_mix.MIX``: Login Kit and business comments and
DMs to ``POST /webhooks/tiktok``, lead-form deliveries of 100 entries to
``POST /webhooks/tiktok/leads``) from concurrent senders: every unique delivery once, and a share
of them again — re-signed, as TikTok's retries are — some right next to their original so the
copies race. The events come from a pool of people per account (a handle for comments and DMs, an
email address for lead forms), so one person's events race each other onto one lead. Afterwards
it checks, through the product's own read API (the listing and every lead's timeline) and the bus
events the stack copies aside, that

- no delivery got a 5xx (or anything but 200 ``accepted``/``duplicate``);
- every integration has one lead per person who wrote to its account, with the right
  ``interaction_count``, and every unique event (a comment, a DM, a form entry) is exactly one
  interaction of the right person;
- the bus saw ``SocialLeadCaptured`` once per person and ``SocialLeadActivity`` once per later
  interaction (counted by ``detail.event_id``, as consumers deduplicate).

It reports each route's deliveries, p50/p95 latency and 5xx, and leads and interactions created
per second. It stops by itself: a fixed number of deliveries, a time limit for the whole run, a
timeout on every request. The exit status is 0 only when every check passed."""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from orcapulse_local import ads_emulator, config
from orcapulse_local.load_mix import LEADS_PATH, WEBHOOK_PATH, Event, Sources, make_events
from orcapulse_local.load_report import (
    REQUEST_TIMEOUT,
    Expected,
    Report,
    Sent,
    check_answers,
    check_bus,
    check_people,
    server_error,
)

# TikTok redelivers what got no 200 (for 72 hours; lead forms for about a day): the load does it
# at once, one delivery at a time, this many rounds.
REDELIVERY_ROUNDS = 3

# (workspace, account) pairs: three accounts, two workspaces, one account connected by both.
CONNECTIONS = (
    ("ws-load-1", "open-id-load-a"),
    ("ws-load-1", "open-id-load-b"),
    ("ws-load-2", "open-id-load-c"),
    ("ws-load-2", "open-id-load-a"),
)
# A business account connected by both workspaces; an advertiser (lead forms) by one.
BUSINESS_CONNECTIONS = (("ws-load-1", "biz-load-d"), ("ws-load-2", "biz-load-d"))
ADS_CONNECTIONS = (("ws-load-2", "7300000000000000901"),)


@dataclass(frozen=True)
class Plan:
    """How many deliveries, which share of them repeats, how many senders, how long at most."""

    deliveries: int = 2000
    duplicate_share: float = 0.2
    senders: int = 16
    time_limit: float = 600.0
    seed: int = 7
    interactions_per_person: int = 4  # on average, per account

    @property
    def duplicates(self) -> int:
        return round(self.deliveries * self.duplicate_share)

    @property
    def unique(self) -> int:
        return self.deliveries - self.duplicates


# -- set-up -----------------------------------------------------------------------------------------
def _follow(stack: Any, workspace: str, start_path: str, form: dict[str, str]) -> str:
    """Start an OAuth flow of the workspace, approve at the emulator's consent page with ``form``,
    follow the callback: the integration id."""
    token = stack.dev_token(workspace, "load-user")
    start = requests.get(
        stack.api_url + start_path, headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_TIMEOUT
    )
    start.raise_for_status()
    authorize = start.json()["authorize_url"]
    query = dict(parse_qsl(urlsplit(authorize).query))
    approved = requests.post(
        authorize.split("?")[0],
        data={**query, "decision": "approve", **form},
        allow_redirects=False,
        timeout=REQUEST_TIMEOUT,
    )
    landing = requests.get(approved.headers["Location"], allow_redirects=False, timeout=REQUEST_TIMEOUT)
    result = dict(parse_qsl(urlsplit(landing.headers.get("Location", "")).query))
    if result.get("status") != "connected":
        raise RuntimeError(f"connecting {form} to {workspace} failed: {result}")
    return result["integration_id"]


def connect(stack: Any, workspace: str, open_id: str, account_type: str = "personal") -> str:
    """OAuth start (Login Kit, or the Accounts API for ``business``) → approve ``open_id`` at the
    emulator's consent page → callback; the integration id."""
    start = f"/integrations/tiktok/oauth/start?account_type={account_type}"
    return _follow(stack, workspace, start, {"open_id": open_id})


def connect_advertiser(stack: Any, workspace: str, advertiser_id: str) -> str:
    """The advertiser consent (Marketing API) → callback, which subscribes the advertiser's lead
    forms to the stack's leads webhook; the integration id."""
    ads = ads_emulator.of(stack.emulator).state
    integration_id = _follow(
        stack, workspace, "/integrations/tiktok-ads/oauth/start", {"advertiser_id": advertiser_id}
    )
    with ads.lock:
        callbacks = {
            s["callback_url"]
            for s in ads.subscriptions.values()
            if s["subscription_detail"]["advertiser_id"] == advertiser_id
        }
    if callbacks != {stack.api_url + "/webhooks/tiktok/leads"}:
        raise RuntimeError(f"advertiser {advertiser_id} is subscribed to {sorted(callbacks)}")
    return integration_id


def sources(stack: Any) -> Sources:
    """Every account of the load known to the emulator (added when missing), and who signs."""
    login, business = stack.emulator.state, stack.emulator.business.state
    ads = ads_emulator.of(stack.emulator).state
    open_ids = sorted({open_id for _, open_id in CONNECTIONS})
    for open_id in open_ids:
        if open_id not in login.accounts:
            login.add_account(open_id, display_name=f"Load {open_id[-1].upper()}")
    business_ids = sorted({bid for _, bid in BUSINESS_CONNECTIONS})
    for bid in business_ids:
        if bid not in business.accounts:
            business.add_account(bid, username=f"load_shop_{bid[-1]}", display_name=f"Load Shop {bid[-1]}")
    [advertiser_id] = sorted({aid for _, aid in ADS_CONNECTIONS})
    with ads.lock:
        if advertiser_id not in ads.advertisers:
            ads.add_advertiser(advertiser_id, "Load Ads")
        page_id = (ads.forms.get(advertiser_id) or [ads.add_form(advertiser_id)])[0]
    return Sources(login, business, ads, tuple(open_ids), tuple(business_ids), advertiser_id, page_id)


def connect_all(stack: Any) -> dict[tuple[str, str], str]:
    """Every connection of the load: (workspace, account) → integration id."""
    integrations = {(w, o): connect(stack, w, o) for w, o in CONNECTIONS}
    integrations.update({(w, b): connect(stack, w, b, "business") for w, b in BUSINESS_CONNECTIONS})
    integrations.update({(w, a): connect_advertiser(stack, w, a) for w, a in ADS_CONNECTIONS})
    return integrations


def schedule(events: list[Event], plan: Plan, rng: random.Random) -> list[Event]:
    """Every event once, plus ``plan.duplicates`` repeats: half of them right after their
    original (concurrent senders race them), half anywhere later. The first delivery of every kind
    is repeated (when there are that many repeats: a comment's or DM's right after it, a lead
    form's later, as TikTok retries a delivery it got no answer for); the rest are drawn at random."""
    order = list(events)
    rng.shuffle(order)
    firsts = {e.kind: e for e in reversed(events)}.values()
    repeats = [(e, e.path != LEADS_PATH) for e in firsts][: plan.duplicates]
    repeats += [(rng.choice(events), n % 2 == 0) for n in range(plan.duplicates - len(repeats))]
    for event, racing in repeats:
        at = order.index(event)
        order.insert(at + 1 if racing else rng.randrange(at + 1, len(order) + 1), event)
    return order


# -- sending ----------------------------------------------------------------------------------------
def warm_up(stack: Any, plan: Plan) -> dict[str, int]:
    """The ramp-up: the function behind each route of the mix gets warm workers first — one per
    sender for the comment/DM webhook, two for the lead-form webhook (one delivery in 100) — so the
    run measures deliveries, not a storm of concurrent cold starts on a small machine (``make
    bench`` measures cold starts). The warm workers per function."""
    counts = {WEBHOOK_PATH: plan.senders, LEADS_PATH: 2}
    warm = {}
    for path, count in counts.items():
        matched = stack.gateway.routes.match("POST", path)
        if matched is not None:
            function = matched[0].function
            warm[function] = stack.runtime.warm(function, count)
    return warm


def send_all(
    stack: Any, order: list[Event], plan: Plan, deadline: float
) -> tuple[list[Sent | None], float, bool]:
    """Send ``order`` from ``plan.senders`` threads until done or ``deadline``; what each got (in
    ``order``'s order, ``None`` when the deadline came first), the seconds it took and whether the
    deadline cut it short."""
    local = threading.local()

    def send(event: Event) -> Sent | None:
        if time.monotonic() > deadline:
            return None
        if not hasattr(local, "http"):
            local.http = requests.Session()
        started = time.perf_counter()
        headers = event.headers(event.body)
        try:
            resp = local.http.post(
                stack.api_url + event.path, data=event.body, headers=headers, timeout=REQUEST_TIMEOUT
            )
            try:
                body = resp.json()
                answer = str(body.get("status") or body.get("error", {}).get("code") or body)
            except ValueError:
                answer = resp.text[:40]
            status = resp.status_code
        except requests.RequestException as exc:
            status, answer = 0, type(exc).__name__
        return Sent(status, answer, (time.perf_counter() - started) * 1000, f"POST {event.path} {event.kind}")

    started = time.monotonic()
    with ThreadPoolExecutor(plan.senders, thread_name_prefix="sender") as senders:
        results = list(senders.map(send, order))
    return results, time.monotonic() - started, None in results


def redeliver(stack: Any, order: list[Event], results: list[Sent | None], deadline: float) -> tuple[int, int]:
    """Send again, one at a time, what got no 200, as TikTok redelivers (up to
    ``REDELIVERY_ROUNDS`` times); how many needed it, and how many still got none."""
    failing = [e for e, r in zip(order, results, strict=True) if r is not None and server_error(r)]
    needed = len(failing)
    for _ in range(REDELIVERY_ROUNDS):
        if not failing:
            break
        again, _, _ = send_all(stack, failing, Plan(senders=1), deadline)
        failing = [e for e, r in zip(failing, again, strict=True) if r is None or server_error(r)]
    return needed, len(failing)


def _drain_while(stack: Any, sending: threading.Event) -> None:
    while sending.is_set():
        stack.drain_bus_events()
        time.sleep(0.5)


def run(stack: Any, plan: Plan, *, say: Any = None) -> Report:
    """Drive ``stack`` (a started ``LocalStack``) with ``plan``; the report says what happened."""
    say = say or (lambda _line: None)
    if stack.emulator is None:
        raise RuntimeError("the load test needs a started stack with its TikTok emulator")
    if not stack.api_url.startswith(f"http://{config.HOST}:"):
        raise ValueError("the load test only targets a stack on 127.0.0.1")
    rng = random.Random(plan.seed)  # noqa: S311 - a reproducible schedule, not a secret  # nosec B311
    began = time.monotonic()
    known = sources(stack)
    integrations = connect_all(stack)
    workspaces = sorted({w for w, _ in integrations})
    report = Report(senders=plan.senders, workspaces=len(workspaces), integrations=len(integrations))
    report.accounts = len(known.open_ids) + len(known.business_ids)
    report.advertisers = len({a for _, a in ADS_CONNECTIONS})
    say(
        f"connected {len(known.open_ids)} Login Kit and {len(known.business_ids)} business accounts and "
        f"{report.advertisers} advertiser to {len(workspaces)} workspaces ({len(integrations)} integrations)"
    )
    events = make_events(known, plan.unique, plan.interactions_per_person, rng)
    order = schedule(events, plan, rng)
    report.deliveries, report.unique_events = len(order), len(events)
    report.duplicates_sent = len(order) - len(events)
    report.warm_workers = warm_up(stack, plan)
    say(f"sending {len(order)} deliveries ({len(events)} unique) from {plan.senders} senders")
    report.setup_seconds = round(time.monotonic() - began, 2)
    # The stack copies bus events to a local queue; keep it short while sending (moto reads a long
    # queue slowly), so checking the announcements afterwards costs seconds, not minutes.
    sending = threading.Event()
    sending.set()
    drainer = threading.Thread(target=_drain_while, args=(stack, sending), name="bus-drain", daemon=True)
    drainer.start()
    try:
        results, seconds, report.timed_out = send_all(stack, order, plan, began + plan.time_limit)
        sent = [r for r in results if r is not None]
        report.redelivered, report.still_failing = redeliver(stack, order, results, began + plan.time_limit)
    finally:
        sending.clear()
        drainer.join(REQUEST_TIMEOUT)
    checking = time.monotonic()
    check_answers(report, sent, seconds)
    # Expected: per integration, one lead per person who wrote to its account (or filled in its
    # advertiser's form), holding exactly that person's unique events (form entries).
    expected: dict[str, Expected] = {w: {} for w in workspaces}
    for (workspace, account), integration_id in integrations.items():
        for e in events:
            if e.account == account:
                for person, object_id in e.items:
                    expected[workspace].setdefault((integration_id, person), set()).add(object_id)
    lead_ids = check_people(report, stack, expected)
    # Every verified person became a lead, and every event an interaction, while the deliveries
    # were sent.
    if report.seconds:
        report.leads_per_second = round(report.people / report.seconds, 1)
        report.interactions_per_second = round(report.interactions / report.seconds, 1)
    check_bus(report, stack, lead_ids, set(workspaces))
    report.check_seconds = round(time.monotonic() - checking, 2)
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m orcapulse_local.load``: run the load test on a stack of its own."""
    parser = argparse.ArgumentParser(
        prog="python -m orcapulse_local.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--deliveries", type=int, default=Plan.deliveries)
    parser.add_argument("--duplicates", type=float, default=Plan.duplicate_share, help="share of repeats")
    parser.add_argument("--senders", type=int, default=Plan.senders)
    parser.add_argument("--time-limit", type=float, default=Plan.time_limit, help="seconds for the whole run")
    parser.add_argument("--seed", type=int, default=Plan.seed)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.deliveries <= 20_000 or not 1 <= args.senders <= 64 or not 0 <= args.duplicates < 1:
        parser.error("deliveries must be 1-20000, senders 1-64, duplicates in [0, 1)")
    plan = Plan(args.deliveries, args.duplicates, args.senders, args.time_limit, args.seed)

    from orcapulse_local.stack import LocalStack

    # This process talks to moto only: fake keys, so nothing can reach a real account.
    os.environ.update(config.AWS_CREDENTIALS)
    os.environ.pop("AWS_PROFILE", None)
    say = (lambda line: print(line, file=sys.stderr, flush=True)) if not args.json else None
    with LocalStack(config.Ports.ephemeral(), log_sink=None, run_schedules=False) as stack:
        if say:
            say(f"local stack on {stack.api_url}")
        report = run(stack, plan, say=say)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.table())
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
