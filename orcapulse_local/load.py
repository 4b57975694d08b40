"""A bounded load test of the webhook through the local stack, on loopback only.

    python -m orcapulse_local.load                 # 2,000 deliveries, 20% duplicates, 16 senders
    python -m orcapulse_local.load --deliveries 200 --json

It starts its own stack on free 127.0.0.1 ports, connects a few TikTok accounts to two workspaces
through the real OAuth flow (one account in both), then sends signed webhook deliveries from
concurrent senders: every unique event once, and a share of them again — re-signed, as TikTok's
retries are — some right next to their original so the copies race. The events come from a pool
of people per account, each writing comments and DMs under one handle, so one person's events
race each other onto one lead. Afterwards it checks, through the product's own read API (the
listing and every lead's timeline) and the bus events the stack copies aside, that

- no delivery got a 5xx (or anything but 200 ``accepted``/``duplicate``);
- every integration has one lead per person who wrote to its account, with the right
  ``interaction_count``, and every unique event is exactly one interaction of the right person;
- the bus saw ``SocialLeadCaptured`` once per person and ``SocialLeadActivity`` once per later
  interaction (counted by ``detail.event_id``, as consumers deduplicate).

It stops by itself: a fixed number of deliveries, a time limit for the whole run, a timeout on
every request. The exit status is 0 only when every check passed."""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from orcapulse_local import config
from orcapulse_local.load_report import (
    REQUEST_TIMEOUT,
    Expected,
    Report,
    Sent,
    check_answers,
    check_bus,
    check_people,
)

WEBHOOK_PATH = "/webhooks/tiktok"
# (workspace, account) pairs: three accounts, two workspaces, one account connected by both.
CONNECTIONS = (
    ("ws-load-1", "open-id-load-a"),
    ("ws-load-1", "open-id-load-b"),
    ("ws-load-2", "open-id-load-c"),
    ("ws-load-2", "open-id-load-a"),
)


@dataclass(frozen=True)
class Plan:
    """How many deliveries, which share of them repeats, how many senders, how long at most."""

    deliveries: int = 2000
    duplicate_share: float = 0.2
    senders: int = 16
    time_limit: float = 600.0
    seed: int = 7
    interactions_per_person: int = 4  # on average, per account

    def people_per_account(self, accounts: int) -> int:
        return max(2, self.unique // (self.interactions_per_person * accounts))

    @property
    def duplicates(self) -> int:
        return round(self.deliveries * self.duplicate_share)

    @property
    def unique(self) -> int:
        return self.deliveries - self.duplicates


@dataclass(frozen=True)
class Event:
    """One TikTok event: its body (what TikTok signs) and the object it is about."""

    open_id: str
    kind: str  # comment or dm
    object_id: str
    person: str  # the writer's handle: a comment's unique_identifier, a DM's from
    body: bytes
    path: str = WEBHOOK_PATH


# -- set-up -----------------------------------------------------------------------------------------
def connect(stack: Any, workspace: str, open_id: str) -> str:
    """OAuth start → approve at the emulator's consent page → callback; the integration id."""
    token = stack.dev_token(workspace, "load-user")
    start = requests.get(
        stack.api_url + "/integrations/tiktok/oauth/start",
        headers={"Authorization": f"Bearer {token}"},
        timeout=REQUEST_TIMEOUT,
    )
    start.raise_for_status()
    authorize = start.json()["authorize_url"]
    query = dict(parse_qsl(urlsplit(authorize).query))
    approved = requests.post(
        authorize.split("?")[0],
        data={**query, "decision": "approve", "open_id": open_id},
        allow_redirects=False,
        timeout=REQUEST_TIMEOUT,
    )
    landing = requests.get(approved.headers["Location"], allow_redirects=False, timeout=REQUEST_TIMEOUT)
    result = dict(parse_qsl(urlsplit(landing.headers.get("Location", "")).query))
    if result.get("status") != "connected":
        raise RuntimeError(f"connecting {open_id} to {workspace} failed: {result}")
    return result["integration_id"]


def _comment(
    n: int, open_id: str, object_id: str, ms: int, person: str, number: int
) -> tuple[str, dict[str, Any]]:
    return "comment.update", {
        "comment_id": int(object_id),  # int64, as TikTok sends comment ids
        "video_id": 7_290_000_000_000_000_001,
        "parent_comment_id": 0,
        "comment_type": "comment",
        "comment_action": "insert",
        "text": f"load comment {n}: how much is the orca plush?",
        "timestamp": ms,
        "unique_identifier": person,
    }


def _dm(
    n: int, open_id: str, object_id: str, ms: int, person: str, number: int
) -> tuple[str, dict[str, Any]]:
    user_id = str(8_000_000 + number)
    return "im_receive_msg", {
        "conversation_id": f"0:1:{user_id}:{open_id}",
        "message_id": object_id,
        "timestamp": ms,
        "type": "text",
        "text": {"body": f"load message {n}: do you ship to Lisbon?"},
        "from": person,
        "from_user": {"id": user_id},
        "to": open_id,
        "to_user": {"id": open_id},
    }


@dataclass(frozen=True)
class MixEntry:
    """One kind of delivery in the load: its name (the report's per-route key), its route, its
    weight in the mix, and how to build one event's TikTok name and content."""

    kind: str
    path: str
    weight: int
    build: Callable[[int, str, str, int, str, int], tuple[str, dict[str, Any]]]


# The delivery mix: comments and DMs to the TikTok webhook, 2:1. A new kind of delivery (business
# accounts, lead forms) is one entry here.
MIX: tuple[MixEntry, ...] = (
    MixEntry("comment", WEBHOOK_PATH, 2, _comment),
    MixEntry("dm", WEBHOOK_PATH, 1, _dm),
)


def _entry(n: int) -> MixEntry:
    """The mix entry of the ``n``-th event: the entries in turn, each as often as its weight."""
    slot = n % sum(entry.weight for entry in MIX)
    for entry in MIX:
        if slot < entry.weight:
            return entry
        slot -= entry.weight
    return MIX[-1]


def make_events(state: Any, plan: Plan, open_ids: list[str], rng: random.Random) -> list[Event]:
    """``plan.unique`` distinct events of the mix, shaped as TikTok documents them, each written by
    one of a pool of people per account (a person's DMs share one conversation)."""
    now = int(time.time())
    base = 7_400_000_000_000_000_000 + rng.randrange(10**15)
    pool = plan.people_per_account(len(open_ids))
    out = []
    for n in range(plan.unique):
        open_id, object_id, ms = open_ids[n % len(open_ids)], str(base + n), (now - 60) * 1000 + n
        number = rng.randrange(pool)
        person = f"person.{number}"
        entry = _entry(n)
        event, content = entry.build(n, open_id, object_id, ms, person, number)
        body = state.envelope(event, open_id, content, now)
        out.append(Event(open_id, entry.kind, object_id, person, body, entry.path))
    return out


def schedule(events: list[Event], plan: Plan, rng: random.Random) -> list[Event]:
    """Every event once, plus ``plan.duplicates`` repeats: half of them right after their
    original (concurrent senders race them), half anywhere later."""
    order = list(events)
    rng.shuffle(order)
    for n, event in enumerate([rng.choice(events) for _ in range(plan.duplicates)]):
        at = order.index(event)
        order.insert(at + 1 if n % 2 == 0 else rng.randrange(at + 1, len(order) + 1), event)
    return order


# -- sending ----------------------------------------------------------------------------------------
def send_all(
    stack: Any, state: Any, order: list[Event], plan: Plan, deadline: float
) -> tuple[list[Sent], float, bool]:
    """Send ``order`` from ``plan.senders`` threads until done or ``deadline``; what each got,
    the seconds it took and whether the deadline cut it short."""
    local = threading.local()

    def send(event: Event) -> Sent | None:
        if time.monotonic() > deadline:
            return None
        if not hasattr(local, "http"):
            local.http = requests.Session()
        started = time.perf_counter()
        headers = {"Content-Type": "application/json", "TikTok-Signature": state.sign(event.body)}
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
    sent = [r for r in results if r is not None]
    return sent, time.monotonic() - started, len(sent) < len(order)


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
    state = stack.emulator.state
    open_ids = sorted({open_id for _, open_id in CONNECTIONS})
    for open_id in open_ids:
        if open_id not in state.accounts:
            state.add_account(open_id, display_name=f"Load {open_id[-1].upper()}")
    integrations = {(w, o): connect(stack, w, o) for w, o in CONNECTIONS}
    workspaces = sorted({w for w, _ in CONNECTIONS})
    say(
        f"connected {len(open_ids)} accounts to {len(workspaces)} workspaces ({len(integrations)} integrations)"
    )
    events = make_events(state, plan, open_ids, rng)
    order = schedule(events, plan, rng)
    report = Report(len(order), len(events), len(order) - len(events), plan.senders)
    report.accounts, report.workspaces, report.integrations = (
        len(open_ids),
        len(workspaces),
        len(integrations),
    )
    say(f"sending {len(order)} deliveries ({len(events)} unique) from {plan.senders} senders")
    report.setup_seconds = round(time.monotonic() - began, 2)
    # The stack copies bus events to a local queue; keep it short while sending (moto reads a long
    # queue slowly), so checking the announcements afterwards costs seconds, not minutes.
    sending = threading.Event()
    sending.set()
    drainer = threading.Thread(target=_drain_while, args=(stack, sending), name="bus-drain", daemon=True)
    drainer.start()
    try:
        sent, seconds, report.timed_out = send_all(stack, state, order, plan, began + plan.time_limit)
    finally:
        sending.clear()
        drainer.join(REQUEST_TIMEOUT)
    checking = time.monotonic()
    check_answers(report, sent, seconds)
    # Expected: per integration, one lead per person who wrote to its account, holding exactly
    # that person's unique events.
    expected: dict[str, Expected] = {w: {} for w in workspaces}
    for (workspace, open_id), integration_id in integrations.items():
        for e in events:
            if e.open_id == open_id:
                expected[workspace].setdefault((integration_id, e.person), set()).add(e.object_id)
    lead_ids = check_people(report, stack, expected)
    # Every verified person became a lead while the deliveries were sent.
    report.leads_per_second = round(report.people / report.seconds, 1) if report.seconds else 0.0
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
