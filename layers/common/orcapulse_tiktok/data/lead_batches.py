"""Batch reads of the leads table: for a delivery of many entries (lead forms, DESIGN §10), and
for the stream publisher, which reads the interactions a batch of lead writes announces.

The capture path's writes are conditional (that is what makes a redelivery a duplicate), and
``BatchWriteItem`` takes no condition, so entries cannot be written in batches. What batches is the
check before them: one ``BatchGetItem`` (up to 100 keys) tells which entries a previous delivery
already finished — their interaction is stored and counted on its lead — so a redelivery of 1,000
entries costs about 20 reads instead of 2,000 conditional writes. Eventually consistent reads are
enough: a finished entry never becomes unfinished, and an entry the read misses just goes through
the capture path, which decides exactly."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orcapulse_tiktok.data import faults
from orcapulse_tiktok.data.leads import _short, _table
from orcapulse_tiktok.errors import TransientError
from orcapulse_tiktok.models.lead import LEAD_SK, Interaction, interaction_sk, interactions, lead_pk

MAX_KEYS = 100  # BatchGetItem's limit per request
MAX_ROUNDS = 5  # unprocessed keys are asked again this many times, then left to the capture path


def finished(pairs: Iterable[tuple[str, str]]) -> set[str]:
    """Of ``(lead_id, interaction_id)`` pairs, the interaction ids already stored and counted on their
    lead (or moved to a merge target, which has them)."""
    pairs = list(dict.fromkeys(pairs))
    keys: dict[tuple[str, str], dict[str, Any]] = {}
    for lead_id, interaction_id in pairs:
        keys[(lead_pk(lead_id), interaction_sk(interaction_id))] = {}
        keys[(lead_pk(lead_id), LEAD_SK)] = {}
    items, _ = _get(list(keys), projection="pk, sk, #counted, moved_to", consistent=False)
    done: set[str] = set()
    for lead_id, interaction_id in pairs:
        interaction = items.get((lead_pk(lead_id), interaction_sk(interaction_id)))
        if interaction is None:
            continue
        if "moved_to" in interaction:
            done.add(interaction_id)
            continue
        lead = items.get((lead_pk(lead_id), LEAD_SK)) or {}
        if _short(interaction_id) in lead.get("counted", {}).get("SS", []):
            done.add(interaction_id)
    return done


def interactions_at(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Interaction]:
    """The interactions at ``(lead_id, interaction_id)``, read consistently; a missing one is
    absent. Keys DynamoDB leaves unprocessed round after round are a transient fault (retry)."""
    wanted = sorted(set(pairs))
    items, complete = _get(
        [(lead_pk(lead), interaction_sk(ix)) for lead, ix in wanted], projection=None, consistent=True
    )
    if not complete:
        raise TransientError("The leads table is busy, try again")
    model = interactions()
    found = [model.from_raw_data(raw) for raw in items.values()]
    return {(item.lead_id, item.interaction_id): item for item in found}


def _get(
    keys: list[tuple[str, str]], *, projection: str | None, consistent: bool
) -> tuple[dict[tuple[str, str], dict[str, Any]], bool]:
    """The items at ``(pk, sk)`` keys, and whether every key was answered."""
    table, name = _table()
    found: dict[tuple[str, str], dict[str, Any]] = {}
    complete = True
    for chunk in itertools.batched(keys, MAX_KEYS):
        wanted: dict[str, Any] = {"Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in chunk]}
        if projection is not None:
            wanted["ProjectionExpression"] = projection
            wanted["ExpressionAttributeNames"] = {"#counted": "counted"}
        if consistent:
            wanted["ConsistentRead"] = True
        request: dict[str, Any] = {name: wanted}
        for _ in range(MAX_ROUNDS):
            try:
                response = table.batch_get_item(RequestItems=request)
            except (ClientError, BotoCoreError) as exc:
                raise faults.fault("read leads in a batch", exc) from None
            for item in response.get("Responses", {}).get(name, []):
                found[(item["pk"]["S"], item["sk"]["S"])] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
        complete = complete and not request
    return found, complete
