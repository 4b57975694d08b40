"""POST /webhooks/tiktok/leads: Marketing API lead deliveries become leads (DESIGN §10, §6).

A delivery is checked in a fixed order — size, ``X-Open-Signature`` over the body, JSON, shape — and
nothing is read or written before the signature passes. A verified delivery is kept raw in the
delivery archive before anything else (``archive.py``: a body over ~320 KiB as an S3 object; replay,
quarantine); one that is not JSON or not the documented shape is still 400 (and stays archived).
Then, for a lead object (``object`` 1), each entry is
routed by its ``advertiser_id`` to the ads integrations that authorised it and becomes a
``lead_form`` interaction on the lead of its person (email, else phone, else the entry id) through
the webhook's own capture path (``interactions.record``): one interaction per entry and
integration however often TikTok delivers it. Entries are applied in order; the first failure
stops the delivery with its 5xx (TikTok redelivers the whole delivery, whose applied entries then
answer duplicate). New leads and interactions are announced from the leads table's stream.

Email addresses, phone numbers and answers are never logged, counted or put in an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orcapulse_tiktok import archive, clock, people
from orcapulse_tiktok.capture import ACCEPTED, DUPLICATE, IGNORED
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.data import advertisers, lead_batches
from orcapulse_tiktok.data import integrations as integration_store
from orcapulse_tiktok.data.deliveries import Archived
from orcapulse_tiktok.data.integrations import Target
from orcapulse_tiktok.errors import DomainError, Unauthorized
from orcapulse_tiktok.interactions import Capture, interaction_of, record
from orcapulse_tiktok.models.lead import Interaction
from orcapulse_tiktok.observability import logger
from orcapulse_tiktok.tiktok import lead_events, lead_signature
from orcapulse_tiktok.tiktok.credentials import business_app_credentials
from orcapulse_tiktok.tiktok.lead_events import LeadEntry
from orcapulse_tiktok.webhook import raw_body, single

# 1,000 entries (TikTok's ceiling) of about 4 KiB each; base64 of it stays under Lambda's 6 MB
# request limit. docs/lead-forms.md says why.
MAX_BODY_BYTES = 4 * 1024 * 1024
CAPTURE_SOURCE = "tiktok_lead_form"
NAME_FIELDS = ("name", "full_name")
EMAIL_FIELDS = ("email",)
PHONE_FIELDS = ("phone_number", "phone")
ROUTE = "POST /webhooks/tiktok/leads"  # the archive's route key of these deliveries
# §10's refusals of a verified delivery: not JSON, not the documented shape. They stay 400 (the
# delivery stays archived); anything else the processing fails on is quarantined (archive.py).
REFUSALS = frozenset({"invalid_json", "invalid_payload"})


def receive_leads(body: str | None, is_base64_encoded: bool, headers: Mapping[str, Any] | None) -> str:
    """Handle one delivery; ``accepted``, ``duplicate`` or ``ignored``. Raises a ``DomainError``:
    413/401 refused (nothing stored), 400 not JSON or not the shape (archived, nothing else
    stored), 503 transient, 500 configuration (TikTok retries both). A verified delivery the code
    cannot process is quarantined and answered ``accepted`` (``archive.py``)."""
    try:
        raw = raw_body(body, is_base64_encoded, MAX_BODY_BYTES)
        _verify(raw, headers)
    except DomainError as exc:
        _refused("unverified", exc)
        raise
    if get_settings().webhook_mode == "sandbox":
        # Sandbox stores nothing, the archive included: it verifies, parses and acknowledges.
        return process(raw)
    return archive.ingest(ROUTE, raw, headers, process, refusals=REFUSALS)


def replay(delivery: Archived) -> str:
    """Run a kept delivery through the same processing again (``make replay``); its signature is
    checked once more, which proves the archive holds what TikTok sent."""
    _verify(delivery.body, delivery.headers)
    return archive.rerun(delivery, process, refusals=REFUSALS)


def process(raw: bytes) -> str:
    """A verified delivery parsed, then its entries captured (live) or counted (sandbox)."""
    try:
        delivery = lead_events.parse_delivery(raw)
    except DomainError as exc:
        _refused("unverified", exc)
        raise
    kind = "lead" if delivery.object == lead_events.LEAD_OBJECT else "other_object"
    if kind != "lead":
        logger.info("lead webhook object acknowledged", extra={"object": delivery.object[:4]})
        single("LeadDeliveries", kind=kind, outcome=IGNORED)
        return IGNORED
    if get_settings().webhook_mode == "sandbox":
        # Verified and parsed, never stored (DESIGN §1): counts only, no person's data.
        logger.info("lead delivery verified (sandbox: not stored)", extra={"entries": len(delivery.entries)})
        single("LeadDeliveries", kind=kind, outcome=ACCEPTED)
        return ACCEPTED
    try:
        counts = apply_entries(delivery.entries, delivery.time)
    except DomainError:
        single("LeadDeliveries", kind=kind, outcome="failed")
        raise
    outcome = ACCEPTED if counts[ACCEPTED] else DUPLICATE if counts[DUPLICATE] else IGNORED
    single("LeadDeliveries", kind=kind, outcome=outcome)
    for name, value in counts.items():
        if value:
            single("LeadFormEntries", value, outcome=name)
    logger.info(
        "lead delivery handled", extra={"outcome": outcome, "entries": len(delivery.entries), **counts}
    )
    return outcome


def apply_entries(entries: list[LeadEntry], delivered_at: int | None) -> dict[str, int]:
    """Capture each entry for every integration of its advertiser, in order; how many entries were
    ``accepted``, ``duplicate`` and ``ignored`` (unknown advertiser). The first failure raises."""
    counts = {ACCEPTED: 0, DUPLICATE: 0, IGNORED: 0}
    routes: dict[str, list[Target]] = {}
    for entry in entries:
        if entry.advertiser_id not in routes:
            routes[entry.advertiser_id] = advertisers.route(entry.advertiser_id)
    plans = [
        [(c, interaction_of(c)) for c in (capture_of(e, t, delivered_at) for t in routes[e.advertiser_id])]
        for e in entries
    ]
    # Entries a previous delivery finished are duplicates without a write (one read per 50).
    done = lead_batches.finished((item.lead_id, item.interaction_id) for plan in plans for _, item in plan)
    active: dict[tuple[str, str], float] = {}
    try:
        for entry, plan in zip(entries, plans, strict=True):
            targets = routes[entry.advertiser_id]
            outcomes = {
                _finished(item) if item.interaction_id in done else record(c).outcome for c, item in plan
            }
            outcome = ACCEPTED if ACCEPTED in outcomes else DUPLICATE if outcomes else IGNORED
            counts[outcome] += 1
            if outcome == ACCEPTED:
                for target in targets:
                    active[(target.workspace_id, target.integration_id)] = clock.now()
    finally:
        for key, at in active.items():
            _touch(key, at)
    return counts


def _finished(item: Interaction) -> str:
    """An entry a previous delivery finished: a duplicate, whose lead the delivery still touched
    (the archive remembers it, so an erasure of the person finds this delivery too)."""
    archive.touched(item.lead_id)
    return DUPLICATE


def capture_of(entry: LeadEntry, target: Target, delivered_at: int | None) -> Capture:
    """The interaction one form entry makes on ``target`` (a redelivery builds the same one)."""
    answers = entry.answers
    contact = contact_of(answers)
    person = (
        (people.email_key(contact["email"]) if "email" in contact else None)
        or (people.phone_key(contact["phone"]) if "phone" in contact else None)
        or people.object_key("lead_form", entry.lead_id)
    )
    seconds = entry.create_time or delivered_at
    source_ref = {
        "lead_id": entry.lead_id,
        "page_id": entry.page_id,
        "advertiser_id": entry.advertiser_id,
        "campaign_id": entry.campaign_id,
        "adgroup_id": entry.adgroup_id,
        "ad_id": entry.ad_id,
    }
    return Capture(
        integration_id=target.integration_id,
        workspace_id=target.workspace_id,
        kind="lead_form",
        capture_source=CAPTURE_SOURCE,
        person_key=person,
        object_key=f"lead_form:{entry.lead_id}",
        occurred_ms=int(seconds * 1000) if seconds else int(clock.now() * 1000),
        # For list views: which form, never an answer.
        message=f"Lead form: {entry.page_name}" if entry.page_name else "Lead form submitted",
        source_ref={k: v for k, v in source_ref.items() if v},
        author={"id": None, "username": None},
        form_fields=dict(answers),
        contact=contact or None,
    )


def contact_of(answers: Mapping[str, str]) -> dict[str, str]:
    """``name``, ``email`` and ``phone`` from the form's standard fields (those present)."""

    def first(names: tuple[str, ...]) -> str | None:
        for name in names:
            value = answers.get(name, "").strip()
            if value:
                return value
        return None

    name = first(NAME_FIELDS) or " ".join(
        v for v in (answers.get("first_name", "").strip(), answers.get("last_name", "").strip()) if v
    )
    contact = {"name": name, "email": first(EMAIL_FIELDS), "phone": first(PHONE_FIELDS)}
    return {k: v for k, v in contact.items() if v}


def _verify(raw: bytes, headers: Mapping[str, Any] | None) -> None:
    """401 unless ``X-Open-Signature`` signs ``raw`` with the Business app's secret."""
    signature = lead_signature.header_value(headers)
    if not signature:
        raise Unauthorized("The X-Open-Signature header is missing", code="signature_missing")
    if not lead_signature.verify(signature, raw, business_app_credentials().client_secret):
        raise Unauthorized("The signature does not match", code="signature_invalid")


def _refused(kind: str, exc: DomainError) -> None:
    """Count a delivery that did not get through: refused (4xx, by its code) or failed (5xx)."""
    if exc.status < 500:
        logger.warning("lead delivery rejected", extra={"error_code": exc.code})
        single("LeadDeliveries", kind=kind, outcome="rejected")
        single("WebhookRejected", error_code=exc.code)
    else:
        single("LeadDeliveries", kind=kind, outcome="failed")


def _touch(key: tuple[str, str], at: float) -> None:
    """Best effort ``last_event_at`` (once per integration and delivery): the leads are stored."""
    try:
        integration_store.touch_last_event(key[0], key[1], clock.iso(at))
    except DomainError:
        logger.warning("could not record last_event_at", extra={"integration_id": key[1]})
