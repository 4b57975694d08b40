"""Every verified webhook delivery is kept, and none is dropped by a bug (DESIGN §11).

``ingest`` is the ingress wrapper of every webhook route (comments and DMs, business accounts, lead
forms): once a delivery's signature has verified, it keeps the raw bytes and headers in the
delivery archive (a body too large for a DynamoDB item in S3, ``data.delivery_bodies``), then runs
the route's own processing on them:

- the processing answers (``accepted``/``duplicate``/``ignored``): that is the answer;
- it refuses the delivery with one of the route's contract refusals (§3: not JSON, not the
  envelope, another app's client_key; §10: not JSON, not the documented shape): a 4xx, as the
  contract says; the delivery stays archived;
- it fails with a transient or configuration fault (5xx): TikTok retries, and the retry finishes;
- it fails any other way (content the parser does not know, an unexpected exception): the
  delivery is *quarantined* — marked in the archive, counted (``DeliveryQuarantined``, alarmed) —
  and only then answered 200, so TikTok stops retrying something it cannot fix. If the mark
  cannot be written, the answer is 5xx and TikTok retries.

``rerun`` runs an archived delivery through the same processing again (``replay.py``): a replay
that succeeds takes it out of quarantine; one that fails the same way quarantines it again.
Idempotency makes both safe: what a delivery already did, doing again changes nothing.

While a delivery is processed, the leads it touches are collected (``touched``, called by
``interactions.record``) so an erasure finds the person's deliveries. The usual delivery needs no
write for that: the interaction it stores carries its id (``in_process``), and the erasure reads
it there (``kept_on_interaction``). A reference item is written only for a lead the delivery
touched without storing such an interaction (a redelivery in other bytes, a high-intent flag on a
known comment) and, best effort, for every lead of a delivery that failed.
"""

from __future__ import annotations

import hashlib
import traceback
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import clock
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.data import deliveries as store
from orcapulse_tiktok.data.deliveries import Archived
from orcapulse_tiktok.errors import DomainError, TransientError
from orcapulse_tiktok.observability import logger, metrics

# What a delivery answers once quarantined: TikTok needs a 200 to stop, and the §3 contract has
# three statuses; the delivery *was* accepted into the product's custody.
QUARANTINED_ANSWER = "accepted"
QUARANTINED = "quarantined"  # what a replay reports for a delivery that failed again
# §3's refusals of a verified delivery that are not the code's fault: the body is not JSON, not
# TikTok's envelope, or names another app. They stay 4xx (the delivery stays archived).
ENVELOPE_REFUSALS = frozenset({"invalid_json", "invalid_envelope", "unknown_client_key"})
MAX_HEADER_CHARS = 16_384
DAY_SECONDS = 86_400

Process = Callable[[bytes], str]

_touched: ContextVar[set[str] | None] = ContextVar("orcapulse_delivery_leads", default=None)
# The leads whose interaction stored by this delivery carries its id: no reference needed.
_covered: ContextVar[set[str] | None] = ContextVar("orcapulse_delivery_covered", default=None)
# The delivery being processed: its id, and its S3 body's key when it has one.
_delivery: ContextVar[tuple[str, str | None] | None] = ContextVar("orcapulse_delivery", default=None)
# Set while a delivery is processed: marks that it carries an erased person's older event.
_erased: ContextVar[list[str] | None] = ContextVar("orcapulse_delivery_erased", default=None)


def delivery_id_of(route: str, raw: bytes) -> str:
    """The archive id of a delivery: a hash of its route and bytes (a redelivery is the same id)."""
    return hashlib.sha256(route.encode() + b"\n" + raw).hexdigest()[:32]


def ingest(
    route: str,
    raw: bytes,
    headers: Mapping[str, Any] | None,
    process: Process,
    *,
    refusals: Collection[str] = ENVELOPE_REFUSALS,
) -> str:
    """Keep a verified delivery, then ``process`` it (see the module docstring). A failure to keep
    it is a 5xx: a delivery that is not safely kept is never acknowledged."""
    received_ms = int(clock.now() * 1000)
    delivery = Archived(
        delivery_id=delivery_id_of(route, raw),
        route=route,
        body=raw,
        headers=_headers(headers),
        received_ms=received_ms,
    )
    store.keep(delivery, expires_at=_expires_at())
    outcome, _ = _run(delivery, process, refusals)
    return outcome


def rerun(delivery: Archived, process: Process, *, refusals: Collection[str] = ENVELOPE_REFUSALS) -> str:
    """Process an archived delivery again (a replay): its outcome, or ``quarantined`` when it failed
    again. Released from quarantine when it succeeds."""
    outcome, quarantined = _run(delivery, process, refusals)
    if quarantined:
        return QUARANTINED
    if delivery.quarantined:
        store.release(delivery.delivery_id)
    return outcome


def touched(lead_id: str) -> None:
    """Note that the delivery being processed touched ``lead_id`` (no-op outside a delivery: the
    scheduled catch-up and the migration write leads without one)."""
    leads = _touched.get()
    if leads is not None:
        leads.add(lead_id)


def in_process() -> tuple[str, str | None] | None:
    """The delivery being processed: its id and its S3 body's key, if any (``None`` outside one)."""
    return _delivery.get()


def kept_on_interaction(lead_id: str) -> None:
    """The interaction this delivery stored on ``lead_id`` carries the delivery's id: the erasure
    finds the delivery there, so no reference item is written for that lead."""
    covered = _covered.get()
    if covered is not None:
        covered.add(lead_id)


def erased_person(lead_id: str) -> None:
    """The delivery being processed carries an event older than its person's erasure (ignored): it
    is not kept either (its item, and its S3 body if it has one), so neither the archive nor a
    replay of it brings the person back (DESIGN §9). No-op outside a delivery."""
    marks = _erased.get()
    if marks is not None:
        marks.append(lead_id)


def _run(delivery: Archived, process: Process, refusals: Collection[str]) -> tuple[str, bool]:
    """The answer, and whether the delivery was quarantined."""
    with _collecting(delivery):
        try:
            return process(delivery.body), False
        except DomainError as exc:
            if exc.status >= 500 or exc.code in refusals:
                raise
            failure = exc.code
        # Deliberately broad: the point is that no bug drops a verified delivery.
        except Exception as exc:
            failure = type(exc).__name__
            # The type and where it was raised, never the message or the traceback's values: they
            # may quote the payload (people's messages).
            frames = traceback.extract_tb(exc.__traceback__)
            where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "unknown"
            logger.error(
                "delivery processing failed unexpectedly",
                extra={"delivery_id": delivery.delivery_id, "failure": failure, "raised_at": where},
            )
        _quarantine(delivery, failure)
        return QUARANTINED_ANSWER, True


@contextmanager
def _collecting(delivery: Archived) -> Iterator[None]:
    """Collect the leads the processing touches, and remember them with the delivery: on success
    a failure to remember them is a 5xx (an erasure must find the delivery); on failure, best
    effort (the delivery is already failing, and its retry collects them again)."""
    leads: set[str] = set()
    covered: set[str] = set()
    erased: list[str] = []
    body_key = store.body_key_for(delivery)
    tokens = (_touched.set(leads), _covered.set(covered), _delivery.set((delivery.delivery_id, body_key)))
    erased_token = _erased.set(erased)
    ok = False
    try:
        yield
        ok = True
    finally:
        _touched.reset(tokens[0])
        _covered.reset(tokens[1])
        _delivery.reset(tokens[2])
        _erased.reset(erased_token)
        if ok and erased:
            # A failure is a 5xx: the redelivery is ignored again and drops it again.
            store.drop(delivery.delivery_id, body_key)
        elif leads:
            if ok:
                if leads - covered:
                    store.note_leads(
                        delivery.delivery_id, leads - covered, expires_at=_expires_at(), body_key=body_key
                    )
            else:
                with suppress(DomainError):
                    store.note_leads(delivery.delivery_id, leads, expires_at=_expires_at(), body_key=body_key)


def _quarantine(delivery: Archived, failure: str) -> None:
    if not store.mark_quarantined(delivery.delivery_id, failure):
        # Gone from the archive (expired, or erased meanwhile): not safely kept, so not acknowledged.
        raise TransientError("The delivery could not be quarantined, try again")
    logger.warning(
        "delivery quarantined",
        extra={"delivery_id": delivery.delivery_id, "route": delivery.route, "failure": failure},
    )
    # Alarmed (DeliveryQuarantinedAlarm, dimension service only).
    metrics.add_metric(name="DeliveryQuarantined", unit=MetricUnit.Count, value=1)


def _expires_at() -> int:
    return int(clock.now()) + get_settings().delivery_retention_days * DAY_SECONDS


def _headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """The headers as received (names lower-cased), bounded in size."""
    out: dict[str, str] = {}
    used = 0
    for name, value in (headers or {}).items():
        key, text = str(name).lower(), str(value)
        used += len(key) + len(text)
        if used > MAX_HEADER_CHARS:
            break
        out[key] = text
    return out
