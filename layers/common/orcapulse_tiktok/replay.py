"""Replaying kept webhook deliveries through the code that first received them (DESIGN §11).

``make replay`` (scripts/replay_deliveries.py) selects deliveries from the archive — a list of ids,
a time range, or the quarantined ones — and runs each through its route's own ``replay`` (the
comment/DM webhook checks the signature again at the time it was signed, the lead-form webhook its
``X-Open-Signature``, then each processes the delivery as on arrival; ``archive.rerun``). Capture
is idempotent, so a delivery that already made its interaction answers ``duplicate`` and changes
nothing; an erased person's tombstone keeps an older delivery from bringing them back.

A route joins by one entry in ``replayers``: its path and its ``replay(delivery) -> outcome``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from orcapulse_tiktok import clock
from orcapulse_tiktok.data import deliveries as store
from orcapulse_tiktok.data.deliveries import Archived
from orcapulse_tiktok.errors import DomainError

Replayer = Callable[[Archived], str]


def replayers() -> dict[str, Replayer]:
    """Each webhook route's replay, by the route key its deliveries are kept under."""
    from orcapulse_tiktok import lead_forms, webhook

    return {webhook.ROUTE: webhook.replay, lead_forms.ROUTE: lead_forms.replay}


class Replayed(NamedTuple):
    """One replayed delivery: its outcome (``accepted``, ``duplicate``, ``ignored``,
    ``quarantined``), or why it was not processed (``missing``, ``unknown_route``, ``<status>
    <error code>``)."""

    delivery_id: str
    route: str
    outcome: str


def select(
    *,
    ids: Iterable[str] = (),
    since_ms: int | None = None,
    until_ms: int | None = None,
    quarantined: bool = False,
) -> Iterator[str]:
    """The ids to replay: the given ones, those received in ``[since_ms, until_ms]``, or the
    quarantined ones (oldest first)."""
    if quarantined:
        yield from store.quarantined()
    elif since_ms is not None:
        # Nothing arrives in the future: the range ends now at the latest (one query per hour).
        now_ms = int(clock.now() * 1000)
        yield from store.received_between(since_ms, min(until_ms if until_ms is not None else now_ms, now_ms))
    else:
        yield from ids


def replay(delivery_ids: Iterable[str]) -> Iterator[Replayed]:
    """Replay each delivery in turn. A delivery that fails (a fault, a refusal) is reported and the
    rest go on; a transient fault can be retried by replaying the same ids again."""
    routes = replayers()
    for delivery_id in delivery_ids:
        delivery = store.load(delivery_id)
        if delivery is None:
            yield Replayed(delivery_id, "", "missing")
            continue
        replayer = routes.get(delivery.route)
        if replayer is None:
            yield Replayed(delivery_id, delivery.route, "unknown_route")
            continue
        try:
            outcome = replayer(delivery)
        except DomainError as exc:
            outcome = f"{exc.status} {exc.code}"
        yield Replayed(delivery_id, delivery.route, outcome)
