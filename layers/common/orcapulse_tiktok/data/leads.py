"""The leads table: idempotent lead writes, the announcement outbox kept in the lead item, and the
listing queries.

The two calls every new lead makes (the conditional put and the marker clear) are requests written
once here rather than rebuilt by PynamoDB's expression builder on every event: they are the
webhook's hot path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.data import faults
from orcapulse_tiktok.data.clients import client
from orcapulse_tiktok.models.lead import Lead, leads

# Listing filter → (index, its hash attribute, the lead attribute it holds), most selective first.
LISTING_INDEXES: tuple[tuple[str, str, str, str], ...] = tuple(
    (name, index.Meta.index_name, hash_attr, attribute)
    for name, index, hash_attr, attribute in (
        (
            "integration_id",
            Lead.by_integration,
            Lead.gsi_integration.attr_name,
            Lead.integration_id.attr_name,
        ),
        (
            "capture_source",
            Lead.by_capture_source,
            Lead.gsi_capture_source.attr_name,
            Lead.capture_source.attr_name,
        ),
        ("status", Lead.by_status, Lead.gsi_status.attr_name, Lead.status.attr_name),
        ("platform", Lead.by_platform, Lead.gsi_platform.attr_name, Lead.platform.attr_name),
    )
)
WORKSPACE_INDEX = Lead.by_workspace.Meta.index_name
WORKSPACE_ATTR = Lead.workspace_id.attr_name
SORT_ATTR = Lead.sort_key.attr_name


def _key(workspace_id: str, lead_id: str) -> dict[str, Any]:
    return {Lead.workspace_id.attr_name: {"S": workspace_id}, Lead.lead_id.attr_name: {"S": lead_id}}


# -- writes -----------------------------------------------------------------------------------------
def put_new_lead(lead: Lead) -> Lead | None:
    """Store ``lead`` unless a lead with its key exists (one conditional PutItem).

    ``None`` when it was created; otherwise the lead already stored, read from the failed condition
    itself (``ReturnValuesOnConditionCheckFailure``: no extra read). PynamoDB's ``save()`` drops that
    item, so this calls the table's client."""
    model = type(lead)
    table: Any = model._get_connection().connection.client
    try:
        table.put_item(
            TableName=model.Meta.table_name,
            Item=lead.serialize(),
            ConditionExpression="attribute_not_exists(lead_id)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except (ClientError, BotoCoreError) as exc:
        if not faults.condition_failed(exc):
            raise faults.fault("put lead", exc) from None
        item = exc.response.get("Item") if isinstance(exc, ClientError) else None
        if isinstance(item, dict):
            return model.from_raw_data(item)
        # Not expected with ALL_OLD; a lead of unknown state is left to the sweeper.
        return model(lead.workspace_id, lead.lead_id)
    return None


def flag_high_intent(workspace_id: str, lead_id: str) -> None:
    """Set ``high_intent`` on an existing lead (idempotent; an absent lead is left absent)."""
    try:
        leads()._get_connection().update_item(
            workspace_id,
            range_key=lead_id,
            actions=[Lead.high_intent.set(True)],
            condition=Lead.lead_id.exists(),
        )
    except PynamoDBException as exc:
        if not faults.condition_failed(exc):
            raise faults.fault("flag high intent", exc) from None


def set_source_state(workspace_id: str, lead_id: str, state: str, *, at_ms: int) -> str | None:
    """Record the state of the TikTok object behind a lead, unless a newer action (by event time)
    already did. Returns the state before (``""`` when none was set), or ``None`` when there is no
    such lead or a newer action won (one conditional UpdateItem)."""
    try:
        result = (
            leads()
            ._get_connection()
            .update_item(
                workspace_id,
                range_key=lead_id,
                actions=[Lead.source_state.set(state), Lead.source_state_ms.set(at_ms)],
                condition=Lead.lead_id.exists()
                & (Lead.source_state_ms.does_not_exist() | (Lead.source_state_ms <= at_ms)),
                return_values="ALL_OLD",
            )
        )
    except PynamoDBException as exc:
        if faults.condition_failed(exc):
            return None
        raise faults.fault("update lead source state", exc) from None
    return str(result.get("Attributes", {}).get(Lead.source_state.attr_name, {}).get("S", ""))


# -- the announcement outbox ------------------------------------------------------------------------
def claim_announcement(workspace_id: str, lead_id: str, *, now_ms: int, lease_until_ms: int) -> Lead | None:
    """Take over a pending announcement whose lease is over (one conditional UpdateItem that starts
    a new lease). The lead as stored now, or ``None`` when it is no longer pending or held."""
    model = leads()
    try:
        result = model._get_connection().update_item(
            workspace_id,
            range_key=lead_id,
            actions=[Lead.announce_due_at.set(lease_until_ms)],
            condition=Lead.announce_pending.exists() & (Lead.announce_due_at <= now_ms),
            return_values="ALL_NEW",
        )
    except PynamoDBException as exc:
        if faults.condition_failed(exc):
            return None
        raise faults.fault("claim announcement", exc) from None
    return model.from_raw_data(result["Attributes"])


_CLEAR_EXPRESSION = {
    "UpdateExpression": "REMOVE #pending, #due",
    "ConditionExpression": "attribute_exists(#lead_id)",
    "ExpressionAttributeNames": {
        "#pending": Lead.announce_pending.attr_name,
        "#due": Lead.announce_due_at.attr_name,
        "#lead_id": Lead.lead_id.attr_name,
    },
}


def clear_announcement(workspace_id: str, lead_id: str) -> None:
    """The lead is on the bus: drop its marker (and so its index entry). Never recreates a lead a
    concurrent delete removed."""
    model = leads()
    # The webhook's put went through PynamoDB's client: reuse it rather than make a second one.
    table: Any = model._get_connection().connection.client
    try:
        table.update_item(
            TableName=model.Meta.table_name,
            Key=_key(workspace_id, lead_id),
            **_CLEAR_EXPRESSION,
        )
    except (ClientError, BotoCoreError) as exc:
        if not faults.condition_failed(exc):
            raise faults.fault("clear announcement", exc) from None


def release_announcement(workspace_id: str, lead_id: str, *, held_until_ms: int, now_ms: int) -> bool:
    """Hand a pending announcement back at once (due ``now_ms``), only while the lease set at
    ``held_until_ms`` is still the caller's. Whether it was handed back."""
    try:
        leads()._get_connection().update_item(
            workspace_id,
            range_key=lead_id,
            actions=[Lead.announce_due_at.set(now_ms)],
            condition=Lead.announce_due_at == held_until_ms,
        )
    except PynamoDBException as exc:
        if faults.condition_failed(exc):
            return False
        raise faults.fault("release announcement", exc) from None
    return True


def overdue_announcements(shard: str, *, due_by_ms: int, page_size: int) -> Iterator[tuple[str, str]]:
    """Keys ``(workspace_id, lead_id)`` of one shard of the sparse ``by_pending_announcement`` index
    whose announcement is due: a Query, read lazily page by page."""
    rows = leads().by_pending_announcement.query(
        shard, Lead.announce_due_at <= due_by_ms, page_size=page_size
    )
    try:
        for row in rows:
            yield row.workspace_id, row.lead_id
    except PynamoDBException as exc:
        raise faults.fault("read pending announcements", exc) from None


# -- reads ------------------------------------------------------------------------------------------
def get_lead(workspace_id: str, lead_id: str) -> Lead | None:
    """The lead, read consistently, or ``None``."""
    try:
        response = client("dynamodb").get_item(
            TableName=get_settings().require("leads_table"),
            Key=_key(workspace_id, lead_id),
            ConsistentRead=True,
        )
    except (ClientError, BotoCoreError) as exc:
        raise faults.fault("read lead", exc) from None
    item = response.get("Item")
    return Lead.from_raw_data(item) if item else None


class ListingQuery(NamedTuple):
    """One listing: an index partition, a ``sort_key`` range, equality filters on other attributes."""

    index_name: str
    hash_attr: str
    hash_value: str
    lower: str | None
    upper: str | None
    post_filters: tuple[tuple[str, str], ...]


class ListingPage(NamedTuple):
    """One Query's answer: raw items, where it stopped, and what it cost."""

    items: list[dict[str, Any]]
    last_sort_key: str | None
    evaluated: int
    capacity_units: float


def query_listing(
    listing: ListingQuery, *, workspace_id: str, limit: int, after_sort_key: str | None
) -> ListingPage:
    """One Query of ``listing``, newest first, reading at most ``limit`` items after the position
    ``after_sort_key`` (keyset paging)."""
    request = _listing_request(listing)
    request["Limit"] = limit
    if after_sort_key is not None:
        request["ExclusiveStartKey"] = _start_key(listing, workspace_id, after_sort_key)
    try:
        response = client("dynamodb").query(**request)
    except (ClientError, BotoCoreError) as exc:
        raise faults.fault("list leads", exc) from None
    last = response.get("LastEvaluatedKey")
    return ListingPage(
        items=list(response.get("Items", [])),
        last_sort_key=last[SORT_ATTR]["S"] if last else None,
        evaluated=int(response.get("ScannedCount", 0)),
        capacity_units=float(response.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0)),
    )


def _listing_request(listing: ListingQuery) -> dict[str, Any]:
    names = {"#h": listing.hash_attr}
    values: dict[str, Any] = {":h": {"S": listing.hash_value}}
    condition = "#h = :h"
    if listing.lower is not None or listing.upper is not None:
        names["#s"] = SORT_ATTR
    if listing.lower is not None and listing.upper is not None:
        condition += " AND #s BETWEEN :lo AND :hi"
        values[":lo"], values[":hi"] = {"S": listing.lower}, {"S": listing.upper}
    elif listing.lower is not None:
        condition += " AND #s >= :lo"
        values[":lo"] = {"S": listing.lower}
    elif listing.upper is not None:
        condition += " AND #s <= :hi"
        values[":hi"] = {"S": listing.upper}
    request: dict[str, Any] = {
        "TableName": get_settings().require("leads_table"),
        "IndexName": listing.index_name,
        "KeyConditionExpression": condition,
        "ScanIndexForward": False,
        "ReturnConsumedCapacity": "TOTAL",
    }
    if listing.post_filters:
        clauses = []
        for n, (attribute, value) in enumerate(listing.post_filters):
            names[f"#f{n}"] = attribute
            values[f":f{n}"] = {"S": value}
            clauses.append(f"#f{n} = :f{n}")
        request["FilterExpression"] = " AND ".join(clauses)
    request["ExpressionAttributeNames"] = names
    request["ExpressionAttributeValues"] = values
    return request


def _start_key(listing: ListingQuery, workspace_id: str, position: str) -> dict[str, Any]:
    # A position is "<13-digit ms>#<lead_id>", written by the read API and signed in its cursor.
    key = _key(workspace_id, position.split("#", 1)[1])
    key[SORT_ATTR] = {"S": position}
    if listing.hash_attr != WORKSPACE_ATTR:
        key[listing.hash_attr] = {"S": listing.hash_value}
    return key
