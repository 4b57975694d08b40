"""The delivery archive (``models/delivery.py``): keep a verified delivery, mark it quarantined or
released, remember which leads it touched, find deliveries for a replay, and forget a person's.

Every write is idempotent: keeping a delivery again overwrites the same item (same id, same
bytes), references are keyed by lead and delivery, and deletes of absent items are done. A body too
large for an item goes to S3 (``data.delivery_bodies``): the object is written before the item that
names it, and deleted after it, so an item never names a missing object."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from pynamodb.exceptions import PynamoDBException

from orcapulse_tiktok.data import delivery_bodies, faults
from orcapulse_tiktok.models.delivery import (
    DELIVERY_PREFIX,
    DELIVERY_SK,
    QUARANTINED,
    Delivery,
    deliveries,
    delivery_pk,
    ref_pk,
)

# by_received's partition key is the hour and one of SHARDS shards: a burst of deliveries spreads
# over SHARDS index partitions (docs/scale.md), and a replay reads SHARDS queries per hour.
SHARDS = 4
HOUR_MS = 3_600_000


class Archived(NamedTuple):
    """A delivery as kept: what TikTok sent, where, and when it arrived."""

    delivery_id: str
    route: str
    body: bytes
    headers: dict[str, str]
    received_ms: int
    quarantined: bool = False
    failure: str | None = None


def bucket_of(delivery_id: str, received_ms: int) -> str:
    """The ``by_received`` partition of a delivery: ``<UTC hour YYYYMMDDHH>#<shard>``."""
    hour = time.strftime("%Y%m%d%H", time.gmtime(received_ms // 1000))
    return f"{hour}#{int(delivery_id[:2], 16) % SHARDS}"


def body_key_for(delivery: Archived) -> str | None:
    """The S3 key of the delivery's body, or ``None`` when the body is in its item."""
    return delivery_bodies.key_of(delivery.delivery_id) if delivery_bodies.overflows(delivery.body) else None


def keep(delivery: Archived, *, expires_at: int) -> None:
    """Store the delivery (one PutItem; a body too large for it is one PutObject first). A
    redelivery of the same bytes overwrites the same item and object, which also clears a
    quarantine mark: the latest attempt is what the item says."""
    body_key = body_key_for(delivery)
    if body_key is not None:
        delivery_bodies.put(body_key, delivery.body)
    item = deliveries()(
        delivery_pk(delivery.delivery_id),
        DELIVERY_SK,
        expires_at=expires_at,
        route=delivery.route,
        body=None if body_key else delivery.body,
        body_key=body_key,
        headers=json.dumps(delivery.headers, separators=(",", ":"), ensure_ascii=False),
        received_ms=delivery.received_ms,
        bucket=bucket_of(delivery.delivery_id, delivery.received_ms),
    )
    try:
        item.save()
    except PynamoDBException as exc:
        raise faults.fault("keep delivery", exc) from None


def mark_quarantined(delivery_id: str, failure: str) -> bool:
    """Put the kept delivery in quarantine with the reason (an error code or an exception type);
    ``False`` when there is no such delivery (it cannot be quarantined, so it must be retried)."""
    try:
        deliveries()._get_connection().update_item(
            delivery_pk(delivery_id),
            range_key=DELIVERY_SK,
            actions=[
                Delivery.quarantine.set(QUARANTINED),
                Delivery.failure.set(failure[:128]),
                Delivery.attempts.add(1),
            ],
            condition=Delivery.pk.exists(),
        )
    except PynamoDBException as exc:
        if faults.condition_failed(exc):
            return False
        raise faults.fault("quarantine delivery", exc) from None
    return True


def release(delivery_id: str) -> None:
    """Take the delivery out of quarantine (a replay processed it). Absent is done."""
    try:
        deliveries()._get_connection().update_item(
            delivery_pk(delivery_id),
            range_key=DELIVERY_SK,
            actions=[Delivery.quarantine.remove(), Delivery.failure.remove()],
            condition=Delivery.pk.exists(),
        )
    except PynamoDBException as exc:
        if not faults.condition_failed(exc):
            raise faults.fault("release delivery", exc) from None


def drop(delivery_id: str, body_key: str | None = None) -> None:
    """Delete one kept delivery (an erased person's old event): the item, then its S3 body if it
    has one. Absent is done."""
    try:
        deliveries()(delivery_pk(delivery_id), DELIVERY_SK).delete()
    except PynamoDBException as exc:
        raise faults.fault("drop delivery", exc) from None
    if body_key is not None:
        delivery_bodies.delete(body_key)


def note_leads(
    delivery_id: str, lead_ids: Iterable[str], *, expires_at: int, body_key: str | None = None
) -> None:
    """Remember that the delivery touched these leads (one reference item each, batched, naming
    the delivery's S3 body if it has one), so an erasure of a lead finds what carried the person."""
    model = deliveries()
    try:
        with model.batch_write() as batch:
            for lead_id in sorted(set(lead_ids)):
                batch.save(model(ref_pk(lead_id), delivery_id, expires_at=expires_at, body_key=body_key))
    except PynamoDBException as exc:
        raise faults.fault("note delivery leads", exc) from None


def load(delivery_id: str) -> Archived | None:
    """The kept delivery, or ``None`` (never kept, expired, or forgotten)."""
    try:
        item = deliveries().get(delivery_pk(delivery_id), DELIVERY_SK, consistent_read=True)
    except Delivery.DoesNotExist:
        return None
    except PynamoDBException as exc:
        raise faults.fault("load delivery", exc) from None
    if item.body_key:
        body = delivery_bodies.get(item.body_key)
        if body is None:  # the object expired (or was erased) before its item
            return None
        return _archived(item, body)
    return _archived(item, bytes(item.body or b""))


def received_between(start_ms: int, end_ms: int) -> Iterator[str]:
    """Ids of the deliveries that arrived in ``[start_ms, end_ms]``, oldest first (hour by hour)."""
    deliveries()
    hour = start_ms - start_ms % HOUR_MS
    while hour <= end_ms:
        found: list[tuple[int, str]] = []
        for shard in range(SHARDS):
            bucket = f"{time.strftime('%Y%m%d%H', time.gmtime(hour // 1000))}#{shard}"
            condition = Delivery.received_ms.between(max(start_ms, hour), min(end_ms, hour + HOUR_MS - 1))
            found.extend(_index_ids(Delivery.by_received, bucket, condition))
        yield from (delivery_id for _, delivery_id in sorted(found))
        hour += HOUR_MS


def quarantined() -> Iterator[str]:
    """Ids of the quarantined deliveries, oldest first."""
    deliveries()
    yield from (delivery_id for _, delivery_id in _index_ids(Delivery.by_quarantine, QUARANTINED, None))


def forget_deliveries(lead_ids: Iterable[str], *, also: Mapping[str, str | None] | None = None) -> int:
    """Erase every kept delivery that touched any of ``lead_ids`` (DESIGN §9: an erased person's
    raw deliveries go too) — the referenced ones and ``also`` (the ids the person's interactions
    carry, with their S3 body's key if any) — and the references themselves; the number of
    deliveries erased.

    A delivery is removed whole, other people in it included (a lead-form delivery carries many):
    the archive is a replay buffer, and what it loses here the stored leads still hold. Safe to
    repeat: deleting what is gone is done; a referenced delivery's item goes before its S3 body
    (the reference keeps the key), a named one's after it (the item keeps it), and the references
    last, so a retry after a failure finds what it has not yet removed."""
    model = deliveries()
    erased: set[str] = set()
    if also:
        erased.update(_forget_named(also))
    for lead_id in sorted(set(lead_ids)):
        try:
            refs = list(model.query(ref_pk(lead_id), consistent_read=True))
            with model.batch_write() as batch:
                for ref in refs:
                    if ref.sk not in erased:
                        batch.delete(model(delivery_pk(ref.sk), DELIVERY_SK))
        except PynamoDBException as exc:
            raise faults.fault("forget deliveries", exc) from None
        for ref in refs:
            if ref.sk not in erased and ref.body_key:
                delivery_bodies.delete(ref.body_key)
            erased.add(ref.sk)
        _delete_all(refs)
    return len(erased)


def _forget_named(named: Mapping[str, str | None]) -> set[str]:
    """Delete the named deliveries and their S3 bodies (the item first, then the body, whose key
    the naming interaction keeps for a retry); the ids of those that were still kept."""
    model = deliveries()
    try:
        items = list(
            model.batch_get([(delivery_pk(d), DELIVERY_SK) for d in sorted(named)], consistent_read=True)
        )
    except PynamoDBException as exc:
        raise faults.fault("forget deliveries", exc) from None
    _delete_all(items)
    for body_key in sorted({key for key in named.values() if key}):
        delivery_bodies.delete(body_key)
    return {item.pk.removeprefix(DELIVERY_PREFIX) for item in items}


def _delete_all(items: Iterable[Delivery]) -> None:
    try:
        with deliveries().batch_write() as batch:
            for item in items:
                batch.delete(item)
    except PynamoDBException as exc:
        raise faults.fault("forget deliveries", exc) from None


def _index_ids(index: Any, hash_key: str, condition: Any) -> list[tuple[int, str]]:
    try:
        return [
            (int(item.received_ms or 0), item.pk.removeprefix(DELIVERY_PREFIX))
            for item in index.query(hash_key, condition)
        ]
    except PynamoDBException as exc:
        raise faults.fault("find deliveries", exc) from None


def _archived(item: Delivery, body: bytes) -> Archived:
    headers = json.loads(item.headers or "{}")
    return Archived(
        delivery_id=item.pk.removeprefix(DELIVERY_PREFIX),
        route=item.route or "",
        body=body,
        headers={str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
        received_ms=int(item.received_ms or 0),
        quarantined=item.quarantine is not None,
        failure=item.failure,
    )
