"""Batch reads of the leads table for a delivery of many entries (lead forms, DESIGN §10).

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
from orcapulse_tiktok.models.lead import LEAD_SK, interaction_sk, lead_pk

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
    items = _get(list(keys))
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


def _get(keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    table, name = _table()
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for chunk in itertools.batched(keys, MAX_KEYS):
        request: dict[str, Any] = {
            name: {
                "Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in chunk],
                "ProjectionExpression": "pk, sk, #counted, moved_to",
                "ExpressionAttributeNames": {"#counted": "counted"},
            }
        }
        for _ in range(MAX_ROUNDS):
            try:
                response = table.batch_get_item(RequestItems=request)
            except (ClientError, BotoCoreError) as exc:
                raise faults.fault("read delivery entries", exc) from None
            for item in response.get("Responses", {}).get(name, []):
                found[(item["pk"]["S"], item["sk"]["S"])] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
    return found
