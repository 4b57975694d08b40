"""The leads table's writes of a merge (``merge.py`` has the protocol; docs/lifecycle-merge-erase.md
says why each step is safe to run again). Every write here is conditional and idempotent in
effect, so a step whose answer was lost can simply run again."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orcapulse_tiktok.data import faults
from orcapulse_tiktok.data.leads import _key, _table, _value
from orcapulse_tiktok.models.lead import INTERACTION_PREFIX, Lead, interaction_sk, lead_pk, leads

# What a merged lead keeps: who it was merged into, and nothing of the person (its interactions
# moved, and the target carries the person's latest message, author and contact).
_PERSONAL = ("author", "message", "contact", "source_ref", "applied", "counted", "merged_from")
# What a moved interaction's stub keeps: its key and where it went (``moved_to``), so a redelivery
# of its TikTok event is still a duplicate; out of the timeline index (no ``ix_time``).
_STUB_DROPS = ("message", "author", "form_fields", "source_ref", "ix_time")


def person_items(lead_id: str) -> list[dict[str, Any]]:
    """Every item under the lead's partition (the lead and its interactions, stubs included),
    read consistently, page after page."""
    table, name = _table()
    request: dict[str, Any] = {
        "TableName": name,
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": {"#pk": "pk"},
        "ExpressionAttributeValues": {":pk": {"S": lead_pk(lead_id)}},
        "ConsistentRead": True,
    }
    items: list[dict[str, Any]] = []
    while True:
        try:
            page = table.query(**request)
        except (ClientError, BotoCoreError) as exc:
            raise faults.fault("read lead items", exc) from None
        items.extend(page.get("Items", []))
        if not page.get("LastEvaluatedKey"):
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def interaction_rows(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The live interactions among a partition's raw items (not the lead, not moved stubs)."""
    return [i for i in items if i["sk"]["S"].startswith(INTERACTION_PREFIX) and "moved_to" not in i]


def _update(lead_id: str, sk: str, request: dict[str, Any], action: str) -> bool:
    """One conditional UpdateItem; whether its condition held."""
    table, name = _table()
    try:
        table.update_item(TableName=name, Key=_key(lead_id, sk), **request)
    except (ClientError, BotoCoreError) as exc:
        if faults.condition_failed(exc):
            return False
        raise faults.fault(action, exc) from None
    return True


def mark_merged(source: Lead, target_id: str) -> bool:
    """Point ``source`` at ``target_id`` and take it out of the listing. From here on a capture
    for the person lands on the target. True when it is (or already was) merged into the target;
    False when it is gone, being erased, merged elsewhere, or of another workspace or integration."""
    return _update(
        source.lead_id,
        "L",
        {
            "UpdateExpression": "SET #m = :t REMOVE #a",
            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(#erasing) "
            "AND (attribute_not_exists(#m) OR #m = :t) AND #ws = :ws AND #int = :int",
            "ExpressionAttributeNames": {
                "#m": "merged_into",
                "#a": "activity_key",
                "#erasing": "erasing",
                "#ws": "workspace_id",
                "#int": "integration_id",
            },
            "ExpressionAttributeValues": {
                ":t": {"S": target_id},
                ":ws": {"S": source.workspace_id},
                ":int": {"S": source.integration_id},
            },
        },
        "merge lead",
    )


def stub_interaction(lead_id: str, sk: str, moved_to: str) -> None:
    """Leave a stub where an interaction was: ``moved_to`` and its key, none of its content."""
    names = {f"#d{n}": attr for n, attr in enumerate(_STUB_DROPS)}
    _update(
        lead_id,
        sk,
        {
            "UpdateExpression": f"SET #to = :to REMOVE {', '.join(names)}",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": {"#to": "moved_to", **names},
            "ExpressionAttributeValues": {":to": {"S": moved_to}},
        },
        "stub moved interaction",
    )


def recount(lead_id: str, version: int, fields: Mapping[str, Any], merged_from: set[str]) -> bool:
    """Rewrite the target's counters (``fields``: Lead attribute → value), add ``merged_from``
    and bump its version — only if it is still at ``version``, not merged and not being erased.
    False when something changed it meanwhile (the caller counts again)."""
    names = {"#v": "version", "#mf": "merged_from", "#m": "merged_into", "#erasing": "erasing"}
    values: dict[str, Any] = {
        ":v": {"N": str(version)},
        ":one": {"N": "1"},
        ":mf": {"SS": sorted(merged_from)},
    }
    sets = []
    for n, (attr, value) in enumerate(fields.items()):
        names[f"#f{n}"] = attr
        values[f":f{n}"] = _value(attr, value)
        sets.append(f"#f{n} = :f{n}")
    return _update(
        lead_id,
        "L",
        {
            "UpdateExpression": f"SET {', '.join(sets)} ADD #v :one, #mf :mf",
            "ConditionExpression": "#v = :v AND attribute_not_exists(#m) AND attribute_not_exists(#erasing)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        },
        "recount merged lead",
    )


def retire(source_id: str, target_id: str) -> None:
    """Drop what a merged lead still held of the person (the target has it all now)."""
    names = {f"#p{n}": attr for n, attr in enumerate(_PERSONAL)}
    _update(
        source_id,
        "L",
        {
            "UpdateExpression": f"REMOVE {', '.join(names)}",
            "ConditionExpression": "#m = :t",
            "ExpressionAttributeNames": {"#m": "merged_into", **names},
            "ExpressionAttributeValues": {":t": {"S": target_id}},
        },
        "retire merged lead",
    )


def repoint(lead_id: str, was: str, now: str) -> None:
    """A lead merged into ``was`` (itself merged now) points at ``now``: one hop for captures."""
    _update(
        lead_id,
        "L",
        {
            "UpdateExpression": "SET #m = :now",
            "ConditionExpression": "#m = :was",
            "ExpressionAttributeNames": {"#m": "merged_into"},
            "ExpressionAttributeValues": {":was": {"S": was}, ":now": {"S": now}},
        },
        "repoint merged lead",
    )


def moved_to(lead_id: str, interaction_id: str) -> str | None:
    """Where a merge moved the interaction (its stub's ``moved_to``), or ``None``."""
    table, name = _table()
    try:
        response = table.get_item(
            TableName=name,
            Key=_key(lead_id, interaction_sk(interaction_id)),
            ConsistentRead=True,
            ProjectionExpression="moved_to",
        )
    except (ClientError, BotoCoreError) as exc:
        raise faults.fault("read moved interaction", exc) from None
    target = response.get("Item", {}).get("moved_to", {}).get("S")
    return str(target) if target else None


def lead_of(raw: dict[str, Any]) -> Lead:
    """A raw lead item as the model."""
    return leads().from_raw_data(raw)
