"""The deliveries of the load test (:mod:`orcapulse_local.load`): what TikTok sends, to which route,
signed by which app, and whose events each one carries.

The mix (``MIX``) is comments and DMs of Login Kit accounts and of business accounts to
``POST /webhooks/tiktok`` (the §5 envelope, ``TikTok-Signature`` with the Login Kit app's or the
Business app's secret, DESIGN §8), and lead-form deliveries of ``LEAD_FORM_ENTRIES`` entries to
``POST /webhooks/tiktok/leads`` (``X-Open-Signature``, DESIGN §10). Each event is written by one of
a pool of people per account: a handle for comments and DMs, an email address for lead forms (the
person key is the normalised email, so the same address is written in different cases)."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WEBHOOK_PATH = "/webhooks/tiktok"
LEADS_PATH = "/webhooks/tiktok/leads"
LEAD_FORM_ENTRIES = 100
# The same person's address as different submissions write it: one lead, whatever the case.
EMAIL_SPELLINGS: tuple[Callable[[str], str], ...] = (str, str.upper, lambda e: f"  {e.title()} ")


@dataclass(frozen=True, eq=False)
class Event:
    """One delivery's content: its mix entry, route, the account it is for (a TikTok open_id or an
    advertiser id), the (person, TikTok object id) pairs it carries, its body and how it is signed
    (the headers, made when it is sent: a retry is signed again, as TikTok's are)."""

    kind: str
    path: str
    account: str
    items: tuple[tuple[str, str], ...]
    body: bytes
    headers: Callable[[bytes], dict[str, str]]


@dataclass(frozen=True)
class Sources:
    """The emulated TikTok apps that sign the deliveries and the accounts events are for."""

    login: Any  # tiktok_state.TikTokState
    business: Any  # business_state.BusinessState
    ads: Any  # ads_state.AdsState
    open_ids: tuple[str, ...]  # Login Kit accounts
    business_ids: tuple[str, ...]
    advertiser_id: str
    page_id: str


@dataclass
class Draw:
    """What one event is built from: its number, account, the person numbers it carries, its
    time and the first TikTok object id it may use."""

    n: int
    account: str
    people: list[int]
    now: int
    object_id: int


def _tiktok_headers(state: Any) -> Callable[[bytes], dict[str, str]]:
    return lambda body: {"Content-Type": "application/json", "TikTok-Signature": state.sign(body)}


def _comment_content(d: Draw, person: str) -> tuple[str, dict[str, Any]]:
    return "comment.update", {
        "comment_id": d.object_id,  # int64, as TikTok sends comment ids
        "video_id": 7_290_000_000_000_000_001,
        "parent_comment_id": 0,
        "comment_type": "comment",
        "comment_action": "insert",
        "text": f"load comment {d.n}: how much is the orca plush?",
        "timestamp": (d.now - 60) * 1000 + d.n,
        "unique_identifier": person,
    }


def _dm_content(d: Draw, person: str) -> tuple[str, dict[str, Any]]:
    user_id = str(8_000_000 + d.people[0])
    return "im_receive_msg", {
        "conversation_id": f"0:1:{user_id}:{d.account}",
        "message_id": str(d.object_id),
        "timestamp": (d.now - 60) * 1000 + d.n,
        "type": "text",
        "text": {"body": f"load message {d.n}: do you ship to Lisbon?"},
        "from": person,
        "from_user": {"id": user_id},
        "to": d.account,
        "to_user": {"id": d.account},
    }


def _webhook(kind: str, state: Any, content: Callable[[Draw, str], tuple[str, dict[str, Any]]]) -> Any:
    """A builder of one comment or DM delivery to the TikTok webhook, signed by ``state``'s app."""

    def build(d: Draw) -> Event:
        person = f"person.{d.people[0]}"
        event, body = content(d, person)
        envelope = state.envelope(event, d.account, body, d.now)
        return Event(
            kind, WEBHOOK_PATH, d.account, ((person, str(d.object_id)),), envelope, _tiktok_headers(state)
        )

    return build


def _lead_form(ads: Any, page_id: str) -> Callable[[Draw], Event]:
    """A builder of one lead-form delivery: an entry per person number, as TikTok posts it."""

    def build(d: Draw) -> Event:
        entries, items = [], []
        for offset, number in enumerate(d.people):
            email = f"lead.{number}@example.com"
            answers = {
                "name": f"Load Lead {number}",
                "email": EMAIL_SPELLINGS[(d.n + offset) % len(EMAIL_SPELLINGS)](email),
                "phone_number": f"+35191{number:07d}",
                "preferred_size": "XL",
            }
            entry_id = str(d.object_id + offset)
            entries.append(
                ads.submit_lead(d.account, page_id, answers, lead_id=entry_id, create_time=d.now - 60)
            )
            items.append((email, entry_id))
        body = ads.delivery(entries)
        headers = {"Content-Type": "application/json", "X-Open-Signature": ads.signature(body)}
        return Event("lead form", LEADS_PATH, d.account, tuple(items), body, lambda _body: headers)

    return build


@dataclass(frozen=True)
class MixEntry:
    """One kind of delivery in the load: its name (the report's per-route key), its weight in the
    mix, how many people's events one delivery carries, the accounts it is for and its builder."""

    kind: str
    weight: int
    people: int
    accounts: Callable[[Sources], tuple[str, ...]]
    build: Callable[[Sources], Callable[[Draw], Event]]


# The delivery mix, in turn, each as often as its weight. A lead-form delivery (100 entries, about
# 200 conditional writes) is one delivery in 100: its entries are as many as the webhook events, and
# the bounded run of ``make test`` (160 unique deliveries) still carries one.
MIX: tuple[MixEntry, ...] = (
    MixEntry(
        "comment", 30, 1, lambda s: s.open_ids, lambda s: _webhook("comment", s.login, _comment_content)
    ),
    MixEntry("dm", 15, 1, lambda s: s.open_ids, lambda s: _webhook("dm", s.login, _dm_content)),
    MixEntry(
        "business comment",
        30,
        1,
        lambda s: s.business_ids,
        lambda s: _webhook("business comment", s.business, _comment_content),
    ),
    MixEntry(
        "business dm",
        24,
        1,
        lambda s: s.business_ids,
        lambda s: _webhook("business dm", s.business, _dm_content),
    ),
    MixEntry(
        "lead form",
        1,
        LEAD_FORM_ENTRIES,
        lambda s: (s.advertiser_id,),
        lambda s: _lead_form(s.ads, s.page_id),
    ),
)


def entry_of(n: int) -> MixEntry:
    """The mix entry of the ``n``-th event: the entries in turn, each as often as its weight."""
    slot = n % sum(entry.weight for entry in MIX)
    for entry in MIX:
        if slot < entry.weight:
            return entry
        slot -= entry.weight
    return MIX[-1]


def make_events(sources: Sources, unique: int, per_person: int, rng: random.Random) -> list[Event]:
    """``unique`` distinct deliveries of the mix, shaped as TikTok documents them. Every account
    has a pool of people sized so each writes about ``per_person`` times (a person's DMs share one
    conversation; a person's form entries one email address)."""
    now = int(time.time())
    base = 7_400_000_000_000_000_000 + rng.randrange(10**15)
    plan: list[tuple[MixEntry, str]] = []
    turns: Counter[str] = Counter()
    writes: Counter[str] = Counter()
    for n in range(unique):
        entry = entry_of(n)
        accounts = entry.accounts(sources)
        account = accounts[turns[entry.kind] % len(accounts)]
        turns[entry.kind] += 1
        writes[account] += entry.people
        plan.append((entry, account))
    pools = {account: max(2, count // per_person) for account, count in writes.items()}
    builders = {entry.kind: entry.build(sources) for entry in MIX}
    out, object_id = [], base
    for n, (entry, account) in enumerate(plan):
        people = [rng.randrange(pools[account]) for _ in range(entry.people)]
        out.append(builders[entry.kind](Draw(n, account, people, now, object_id)))
        object_id += entry.people
    return out
