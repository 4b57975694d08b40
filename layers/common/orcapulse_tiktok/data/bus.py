"""EventBridge: putting events on the leads bus."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import batched
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orcapulse_tiktok.data import faults
from orcapulse_tiktok.data.clients import client
from orcapulse_tiktok.errors import TransientError
from orcapulse_tiktok.observability import logger

MAX_ENTRIES_PER_CALL = 10  # the PutEvents limit


def entry(bus_name: str, source: str, detail_type: str, detail: Mapping[str, Any]) -> dict[str, Any]:
    """One PutEvents entry."""
    return {
        "EventBusName": bus_name,
        "Source": source,
        "DetailType": detail_type,
        "Detail": json.dumps(detail, separators=(",", ":")),
        "Resources": [],
    }


def put_events(entries: Sequence[dict[str, Any]]) -> list[bool]:
    """Put ``entries`` on the bus, ten per call; whether EventBridge accepted each, in order.

    A transient failure does not raise: the entries of the failed call are ``False``, and the
    caller keeps them for a later attempt (the outbox of ``announce.py``). A configuration fault
    (access denied, a missing bus) raises ``DependencyMisconfigured``: no later attempt can fix it."""
    accepted: list[bool] = []
    for chunk in batched(entries, MAX_ENTRIES_PER_CALL):
        accepted.extend(_put_chunk(list(chunk)))
    return accepted


def _put_chunk(chunk: list[dict[str, Any]]) -> list[bool]:
    events: Any = client("events")
    try:
        response = events.put_events(Entries=chunk)
    except (ClientError, BotoCoreError) as exc:
        error = faults.fault("put events", exc)
        if not isinstance(error, TransientError):
            raise error from None
        return [False] * len(chunk)
    results = list(response.get("Entries", []))
    if len(results) != len(chunk):
        # The response must pair up with the request; if it does not, trust none of it.
        logger.warning("PutEvents answered a different number of entries", extra={"entries": len(chunk)})
        return [False] * len(chunk)
    accepted = [bool(r.get("EventId")) and not r.get("ErrorCode") for r in results]
    if not all(accepted):
        codes = sorted({str(r.get("ErrorCode")) for r in results if r.get("ErrorCode")})
        logger.warning(
            "PutEvents refused entries", extra={"refused": accepted.count(False), "error_codes": codes}
        )
    return accepted
