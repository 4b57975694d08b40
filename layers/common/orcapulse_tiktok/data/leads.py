"""The leads table: people (leads) and their interactions (models/lead.py has the key design).

Capturing one event is at most two writes, both written here once rather than rebuilt by
PynamoDB's expression builder on every event (they are the webhook's hot path): a conditional put
of the interaction, which makes a redelivery a duplicate, and an upsert of the lead that keeps its
counters consistent with its interactions."""

from __future__ import annotations

from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from orcapulse_tiktok.data import faults
from orcapulse_tiktok.data.clients import client
from orcapulse_tiktok.models.lead import (
    LEAD_SK,
    Interaction,
    Lead,
    interaction_sk,
    interactions,
    lead_pk,
    leads,
)


class LeadConflict(Exception):
    """The lead cannot take the write as asked: it was merged (``merged_into``) or a newer
    interaction already set its activity. ``current`` is the lead as stored."""

    def __init__(self, current: Lead | None) -> None:
        super().__init__("lead conflict")
        self.current = current


def _table() -> tuple[Any, str]:
    # The table's own client, shared with PynamoDB's model operations: every operation here goes
    # through the Lead model's connection (interactions included), so a container makes one client.
    model = leads()
    return model._get_connection().connection.client, model.Meta.table_name


def _key(lead_id: str, sk: str = LEAD_SK) -> dict[str, Any]:
    return {"pk": {"S": lead_pk(lead_id)}, "sk": {"S": sk}}


# -- interactions -----------------------------------------------------------------------------------
def put_interaction(item: Interaction) -> Interaction | None:
    """Store a new interaction unless it exists (one conditional PutItem). ``None`` when it was
    created, else the stored one, read from the failed condition itself (no extra read)."""
    table, name = _table()
    try:
        table.put_item(
            TableName=name,
            Item=item.serialize(),
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except (ClientError, BotoCoreError) as exc:
        if not faults.condition_failed(exc):
            raise faults.fault("put interaction", exc) from None
        old = exc.response.get("Item") if isinstance(exc, ClientError) else None
        return interactions().from_raw_data(old) if isinstance(old, dict) else item
    return None


def flag_interaction_high_intent(lead_id: str, interaction_id: str) -> bool:
    """Mark a stored interaction high-intent; whether it changed (False: already, or absent)."""
    try:
        leads()._get_connection().update_item(
            lead_pk(lead_id),
            range_key=interaction_sk(interaction_id),
            actions=[Interaction.high_intent.set(True)],
            condition=Interaction.pk.exists() & (Interaction.high_intent != True),  # noqa: E712
        )
    except PynamoDBException as exc:
        if faults.condition_failed(exc):
            return False
        raise faults.fault("flag interaction high intent", exc) from None
    return True


def set_interaction_state(lead_id: str, interaction_id: str, state: str, *, at_ms: int) -> str | None:
    """Record the state of the TikTok object behind an interaction unless a newer action (by event
    time) already did. The state before (``""`` if none), or ``None`` when there is no such
    interaction or a newer action won."""
    try:
        result = (
            leads()
            ._get_connection()
            .update_item(
                lead_pk(lead_id),
                range_key=interaction_sk(interaction_id),
                actions=[Interaction.source_state.set(state), Interaction.source_state_ms.set(at_ms)],
                condition=Interaction.pk.exists()
                & Interaction.moved_to.does_not_exist()
                & (Interaction.source_state_ms.does_not_exist() | (Interaction.source_state_ms <= at_ms)),
                return_values="ALL_OLD",
            )
        )
    except PynamoDBException as exc:
        if faults.condition_failed(exc):
            return None
        raise faults.fault("update interaction state", exc) from None
    return str(result.get("Attributes", {}).get("source_state", {}).get("S", ""))


def set_first_state(lead_id: str, interaction_id: str, state: str) -> None:
    """Mirror the first interaction's source state on the lead (a no-op for any other one)."""
    try:
        leads()._get_connection().update_item(
            lead_pk(lead_id),
            range_key=LEAD_SK,
            actions=[Lead.source_state.set(state)],
            condition=Lead.first_interaction_id == interaction_id,
        )
    except PynamoDBException as exc:
        if not faults.condition_failed(exc):
            raise faults.fault("update lead state", exc) from None


def flag_lead_high_intent(lead_id: str) -> None:
    """Mark a lead high-intent (an interaction of it became so); a new version when it changed."""
    try:
        leads()._get_connection().update_item(
            lead_pk(lead_id),
            range_key=LEAD_SK,
            actions=[Lead.high_intent.set(True), Lead.version.add(1)],
            condition=Lead.pk.exists() & Lead.merged_into.does_not_exist() & (Lead.high_intent != True),  # noqa: E712
        )
    except PynamoDBException as exc:
        if not faults.condition_failed(exc):
            raise faults.fault("flag lead high intent", exc) from None


# -- the lead upsert --------------------------------------------------------------------------------
class Touch(NamedTuple):
    """What one new interaction does to its lead: lead attribute name → value."""

    lead_id: str
    interaction_id: str
    once: dict[str, Any]  # set only when the lead is created
    latest: dict[str, Any]  # set when this is the newest interaction so far
    always: dict[str, Any]  # set on every interaction (``applied``)
    occurred_ms: int
    capture_source: str
    high_intent: bool


def _short(interaction_id: str) -> str:
    # 12 hex digits (48 bits) identify an interaction among one person's: the set stays small.
    return interaction_id.removeprefix("ix_")[:12]


def _value(name: str, value: Any) -> dict[str, Any]:
    """``value`` as the DynamoDB attribute value the ``Lead`` model's attribute ``name`` stores."""
    attribute = Lead.get_attributes()[name]
    return {attribute.attr_type: attribute.serialize(value)}


def _expression(touch: Touch, mode: str) -> dict[str, Any]:
    """The UpdateItem for ``mode``: ``newest`` (the usual case: it moves the lead's activity),
    ``earliest`` (a late event older than any seen: it moves ``first_seen_ms``) or ``count``
    (a late event in between: counters only)."""
    names = {"#count": "interaction_count", "#version": "version", "#sources": "capture_sources"}
    names.update({"#merged": "merged_into", "#hi": "high_intent", "#seen": "counted"})
    values: dict[str, Any] = {
        ":one": {"N": "1"},
        ":src": {"SS": [touch.capture_source]},
        ":ix": {"S": _short(touch.interaction_id)},
        ":ixs": {"SS": [_short(touch.interaction_id)]},
        ":hi": {"BOOL": touch.high_intent},
    }
    sets = ["#hi = :hi" if touch.high_intent else "#hi = if_not_exists(#hi, :hi)"]
    once = touch.once if mode == "newest" else {}
    for n, (attr, value) in enumerate(once.items()):
        names[f"#o{n}"] = attr
        values[f":o{n}"] = _value(attr, value)
        sets.append(f"#o{n} = if_not_exists(#o{n}, :o{n})")
    fields = {**touch.always, **(touch.latest if mode == "newest" else {})}
    for n, (attr, value) in enumerate(fields.items()):
        names[f"#s{n}"] = attr
        values[f":s{n}"] = _value(attr, value)
        sets.append(f"#s{n} = :s{n}")
    # Counted once: a redelivery that finds the interaction stored runs this update again (the
    # first delivery may have failed before it), and the lead's set of counted ids refuses it.
    condition = "attribute_not_exists(#merged) AND NOT contains(#seen, :ix)"
    # An erasure in progress makes captures wait; its tombstone refuses events no newer than it.
    names.update({"#erasing": "erasing", "#erased": "erased_ms"})
    values[":t"] = {"N": str(touch.occurred_ms)}
    condition += " AND attribute_not_exists(#erasing) AND (attribute_not_exists(#erased) OR #erased < :t)"
    if mode == "newest":
        names["#last"] = "last_activity_ms"
        condition += " AND (attribute_not_exists(#last) OR #last <= :t)"
    elif mode == "earliest":
        names["#first"] = "first_seen_ms"
        sets.append("#first = :t")
        condition += " AND #first > :t"
    return {
        "UpdateExpression": f"SET {', '.join(sets)} ADD #count :one, #version :one, #sources :src, #seen :ixs",
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def touch_lead(touch: Touch) -> Lead | None:
    """Apply a new interaction to its lead, creating the lead on its first one (one UpdateItem in
    the common case): counters, capture sources, high intent, and — when it is the newest — the
    activity time, listing position and latest message. Returns the lead as it is now.

    A late older interaction counts without moving the activity back, and moves ``first_seen``
    when it is the earliest seen (a second UpdateItem, only then). Returns ``None`` when the lead
    has counted this interaction already; raises ``LeadConflict`` for a merged or erased lead."""
    current: Lead | None = None
    for mode in ("newest", "earliest", "count"):
        if mode == "earliest" and (current is None or int(current.first_seen_ms) <= touch.occurred_ms):
            continue
        applied, current = _update(touch, mode)
        if applied is not None:
            return applied
        if current is None or current.refuses(touch.occurred_ms):
            raise LeadConflict(current)
        if _short(touch.interaction_id) in (current.counted or set()):
            return None
    raise LeadConflict(current)  # pragma: no cover - the count mode only fails for a merged lead


def has_counted(lead_id: str, interaction_id: str) -> bool:
    """Whether the lead has counted the interaction and is neither merged nor being erased: one
    consistent GetItem of just those attributes. False sends the caller to the lead write, which
    decides every other case (a missing count, a merge, an erasure) under its condition."""
    table, name = _table()
    try:
        response = table.get_item(
            TableName=name,
            Key=_key(lead_id),
            ConsistentRead=True,
            ProjectionExpression="#seen, #merged, #erasing",
            ExpressionAttributeNames={"#seen": "counted", "#merged": "merged_into", "#erasing": "erasing"},
        )
    except (ClientError, BotoCoreError) as exc:
        raise faults.fault("read lead", exc) from None
    item = response.get("Item") or {}
    if "merged_into" in item or item.get("erasing", {}).get("BOOL"):
        return False
    return _short(interaction_id) in item.get("counted", {}).get("SS", [])


def _update(touch: Touch, mode: str) -> tuple[Lead | None, Lead | None]:
    """``(the lead after the update, None)``, or ``(None, the lead as stored)`` when the
    condition of ``mode`` did not hold."""
    table, name = _table()
    try:
        response = table.update_item(
            TableName=name,
            Key=_key(touch.lead_id),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **_expression(touch, mode),
        )
    except (ClientError, BotoCoreError) as exc:
        if not faults.condition_failed(exc):
            raise faults.fault("update lead", exc) from None
        old = exc.response.get("Item") if isinstance(exc, ClientError) else None
        return None, leads().from_raw_data(old) if isinstance(old, dict) else None
    return leads().from_raw_data(response["Attributes"]), None


# -- reads ------------------------------------------------------------------------------------------
def get_lead(lead_id: str) -> Lead | None:
    """The lead, read consistently, or ``None``."""
    try:
        response = client("dynamodb").get_item(
            TableName=leads().Meta.table_name, Key=_key(lead_id), ConsistentRead=True
        )
    except (ClientError, BotoCoreError) as exc:
        raise faults.fault("read lead", exc) from None
    item = response.get("Item")
    return leads().from_raw_data(item) if item else None
