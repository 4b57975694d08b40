"""The leads table's writes of an erasure (``erasure.py`` has the protocol): mark the lead as being
erased, delete items, and replace the lead with a tombstone that names nobody."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import batched
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orcapulse_tiktok.data import faults
from orcapulse_tiktok.data.leads import _key, _table, _value
from orcapulse_tiktok.errors import TransientError
from orcapulse_tiktok.models.lead import LEAD_SK, Lead, leads

MAX_PER_BATCH = 25  # the BatchWriteItem limit
MAX_UNPROCESSED_ROUNDS = 5


def mark_erasing(lead_id: str, erased_ms: int) -> Lead | None:
    """Start an erasure: captures for the lead wait (503) until it ends, and it leaves the listing.
    The lead as it is now; ``None`` when it is gone, merged, or already being erased (the caller
    reads which)."""
    table, name = _table()
    try:
        response = table.update_item(
            TableName=name,
            Key=_key(lead_id),
            UpdateExpression="SET #erasing = :yes, #erased = :at REMOVE #a",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(#erasing) "
            "AND attribute_not_exists(#m)",
            ExpressionAttributeNames={
                "#erasing": "erasing",
                "#erased": "erased_ms",
                "#a": "activity_key",
                "#m": "merged_into",
            },
            ExpressionAttributeValues={":yes": {"BOOL": True}, ":at": {"N": str(erased_ms)}},
            ReturnValues="ALL_NEW",
        )
    except (ClientError, BotoCoreError) as exc:
        if faults.condition_failed(exc):
            return None
        raise faults.fault("mark lead erasing", exc) from None
    return leads().from_raw_data(response["Attributes"])


def delete_items(keys: Sequence[dict[str, Any]]) -> None:
    """Delete items by key (``{"pk", "sk"}``), 25 per BatchWriteItem. Deleting what is already
    gone is not an error, so a retry after any failure deletes what is left."""
    table, name = _table()
    for chunk in batched(keys, MAX_PER_BATCH):
        pending: dict[str, Any] = {name: [{"DeleteRequest": {"Key": key}} for key in chunk]}
        for _ in range(MAX_UNPROCESSED_ROUNDS):
            try:
                response = table.batch_write_item(RequestItems=pending)
            except (ClientError, BotoCoreError) as exc:
                raise faults.fault("delete lead items", exc) from None
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                break
        else:
            raise TransientError("A storage service is busy, try again")


def delete_interaction(lead_id: str, sk: str) -> None:
    """Delete one interaction item (an event refused by an erased person's tombstone)."""
    table, name = _table()
    try:
        table.delete_item(TableName=name, Key=_key(lead_id, sk))
    except (ClientError, BotoCoreError) as exc:
        raise faults.fault("delete refused interaction", exc) from None


def put_tombstone(lead: Lead, *, erased_ms: int, applied: dict[str, Any], only_if: str) -> bool:
    """Replace the lead item with its tombstone: ids, the erasure time and the next version, no
    personal data. ``only_if`` is ``erasing`` (the erased lead: only while its erasure runs) or
    the id the lead was merged into (a lead merged into the erased one). False when it no longer
    holds (the tombstone is already there)."""
    item = {
        **_key(lead.lead_id, LEAD_SK),
        "lead_id": {"S": lead.lead_id},
        "workspace_id": {"S": lead.workspace_id},
        "integration_id": {"S": lead.integration_id},
        "erased_ms": {"N": str(erased_ms)},
        "version": {"N": str(int(lead.version or 0) + 1)},
        "applied": _value("applied", applied),
    }
    if only_if == "erasing":
        # And at the version read: a write that slipped in meanwhile makes the caller read again,
        # so the tombstone's version (its SocialLeadErased event id) is never one already used.
        condition: dict[str, Any] = {
            "ConditionExpression": "attribute_exists(#c) AND #v = :v",
            "ExpressionAttributeNames": {"#c": "erasing", "#v": "version"},
            "ExpressionAttributeValues": {":v": {"N": str(int(lead.version or 0))}},
        }
    else:
        condition = {
            "ConditionExpression": "#c = :c",
            "ExpressionAttributeNames": {"#c": "merged_into"},
            "ExpressionAttributeValues": {":c": {"S": only_if}},
        }
    table, name = _table()
    try:
        table.put_item(TableName=name, Item=item, **condition)
    except (ClientError, BotoCoreError) as exc:
        if faults.condition_failed(exc):
            return False
        raise faults.fault("put lead tombstone", exc) from None
    return True
