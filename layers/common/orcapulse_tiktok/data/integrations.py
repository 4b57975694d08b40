"""The integrations table: connect, route, revoke, the refresh lease and schedule, disconnect.

Each function is one named operation on the table; conditions that make an operation safe to
repeat or to race live here with it. Index names come from the model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import DoesNotExist, PynamoDBException

from orcapulse_tiktok.data import faults
from orcapulse_tiktok.models.integration import ADS_ROUTE_PREFIX as ROUTE_ITEM
from orcapulse_tiktok.models.integration import CATCHUP_BUCKET, REFRESH_BUCKET, Integration, integrations

Key = tuple[str, str]  # (workspace_id, integration_id)


class RefreshSchedule(NamedTuple):
    """The token bookkeeping kept on the record (epoch seconds); never a token."""

    access_expires_at: int
    refresh_expires_at: int
    refresh_due_at: int


class Connection(NamedTuple):
    """What a completed OAuth callback writes onto the integration."""

    open_id: str
    union_id: str | None
    display_name: str | None
    avatar_url: str | None
    scopes: tuple[str, ...]
    connected_by: str
    stamp: str
    schedule: RefreshSchedule
    account_type: str = "personal"


class Target(NamedTuple):
    """One integration a webhook event is routed to (from the ``by_open_id`` index)."""

    workspace_id: str
    integration_id: str
    status: str
    last_event_at: str | None = None


def get(workspace_id: str, integration_id: str) -> Integration | None:
    """The record, read consistently, or ``None``."""
    try:
        return integrations().get(workspace_id, integration_id, consistent_read=True)
    except DoesNotExist:
        return None
    except PynamoDBException as exc:
        raise faults.fault("read integration", exc) from None


def list_workspace(workspace_id: str, platform: str | None = None) -> list[Integration]:
    """The workspace's integrations: one Query on the table's partition."""
    condition = Integration.platform == platform if platform else None
    try:
        return list(integrations().query(workspace_id, filter_condition=condition))
    except PynamoDBException as exc:
        raise faults.fault("list integrations", exc) from None


def delete(workspace_id: str, integration_id: str) -> None:
    """Remove the record (idempotent)."""
    try:
        integrations()(workspace_id, integration_id).delete()
    except PynamoDBException as exc:
        raise faults.fault("delete integration", exc) from None


# -- connect ----------------------------------------------------------------------------------------
def snapshot(workspace_id: str, integration_id: str) -> dict[str, Any] | None:
    """The record as stored now (raw attributes), for a compensation to put back."""
    record = get(workspace_id, integration_id)
    return None if record is None else record.serialize()


def upsert_connected(workspace_id: str, integration_id: str, connection: Connection) -> None:
    """Create or refresh the record in one UpdateItem: a reconnect keeps the id and the last event
    time, makes the integration ``active`` again and clears a previous revocation."""
    schedule = connection.schedule
    try:
        integrations()(workspace_id, integration_id).update(
            actions=[
                Integration.platform.set("tiktok"),
                Integration.status.set("active"),
                Integration.open_id.set(connection.open_id),
                _set_or_remove(Integration.union_id, connection.union_id),
                _set_or_remove(Integration.display_name, connection.display_name),
                _set_or_remove(Integration.avatar_url, connection.avatar_url),
                Integration.scopes.set(list(connection.scopes)),  # type: ignore[arg-type]
                Integration.connected_at.set(connection.stamp),
                Integration.connected_by.set(connection.connected_by),
                Integration.updated_at.set(connection.stamp),
                Integration.revoked_reason.remove(),
                *_schedule_actions(schedule),
                Integration.refresh_lease_until.remove(),
                Integration.refresh_lease_owner.remove(),
                Integration.account_type.set(connection.account_type),
                # Business accounts are caught up on schedule; a kind change leaves the index.
                (
                    Integration.catchup_bucket.set(CATCHUP_BUCKET)
                    if connection.account_type == "business"
                    else Integration.catchup_bucket.remove()
                ),
            ]
        )
    except PynamoDBException as exc:
        raise faults.fault("write integration", exc) from None


def restore(workspace_id: str, integration_id: str, previous: dict[str, Any] | None) -> None:
    """Put the record back as ``snapshot`` found it: delete it when there was none. Safe to repeat,
    and right whether or not the write it undoes took effect."""
    if previous is None:
        delete(workspace_id, integration_id)
        return
    try:
        integrations().from_raw_data(previous).save()
    except PynamoDBException as exc:
        raise faults.fault("restore integration", exc) from None


def _set_or_remove(attribute: Any, value: str | None) -> Any:
    return attribute.remove() if value is None else attribute.set(value)


def _schedule_actions(schedule: RefreshSchedule) -> list[Any]:
    return [
        Integration.access_expires_at.set(schedule.access_expires_at),
        Integration.refresh_expires_at.set(schedule.refresh_expires_at),
        Integration.refresh_bucket.set(REFRESH_BUCKET),
        Integration.refresh_due_at.set(schedule.refresh_due_at),
        Integration.refresh_failures.set(0),
    ]


# -- webhook ----------------------------------------------------------------------------------------
_ROUTE_QUERY = {
    "IndexName": Integration.by_open_id.Meta.index_name,
    "KeyConditionExpression": "#open_id = :open_id",
    "ExpressionAttributeNames": {"#open_id": Integration.open_id.attr_name},
}


def route(open_id: str) -> list[Target]:
    """Every integration of a TikTok account, any workspace: one Query on ``by_open_id``, paged only
    when one account is connected to more workspaces than a page holds.

    Read with the table's client and a request written once: this runs on every delivery, and
    building PynamoDB models of the projected items would cost more than the rest of the routing."""
    model = integrations()
    client: Any = model._get_connection().connection.client
    request: dict[str, Any] = {
        "TableName": model.Meta.table_name,
        **_ROUTE_QUERY,
        "ExpressionAttributeValues": {":open_id": {"S": open_id}},
    }
    targets: list[Target] = []
    try:
        while True:
            page = client.query(**request)
            # An advertiser's route item (lead forms) is never a TikTok account's integration.
            items = (i for i in page.get("Items", ()) if not i["workspace_id"]["S"].startswith(ROUTE_ITEM))
            targets.extend(_target(item) for item in items)
            if "LastEvaluatedKey" not in page:
                return targets
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except (ClientError, BotoCoreError) as exc:
        raise faults.fault("route event", exc) from None


def _target(item: dict[str, Any]) -> Target:
    def text(attribute: Any) -> str | None:
        value = item.get(attribute.attr_name)
        return value.get("S") if isinstance(value, dict) else None

    return Target(
        # An index item always carries the table's keys.
        workspace_id=item[Integration.workspace_id.attr_name]["S"],
        integration_id=item[Integration.integration_id.attr_name]["S"],
        # A record without a status is not one the webhook may write leads for.
        status=text(Integration.status) or "revoked",
        last_event_at=text(Integration.last_event_at),
    )


def mark_revoked(
    workspace_id: str, integration_id: str, *, reason: str, stamp: str, connected_by_then: str | None
) -> bool:
    """TikTok removed the authorization: ``revoked`` with its reason, out of the refresh schedule.
    ``connected_by_then`` (an ISO time) skips a record connected after it — a late redelivery must
    not revoke a newer connection. Whether the record was revoked."""
    condition = Integration.integration_id.exists()
    if connected_by_then is not None:
        condition &= Integration.connected_at <= connected_by_then
    try:
        integrations()._get_connection().update_item(
            workspace_id,
            range_key=integration_id,
            actions=[
                Integration.status.set("revoked"),
                Integration.revoked_reason.set(reason),
                Integration.updated_at.set(stamp),
                Integration.last_event_at.set(stamp),
                Integration.refresh_bucket.remove(),
                Integration.refresh_due_at.remove(),
                Integration.refresh_lease_until.remove(),
                Integration.refresh_lease_owner.remove(),
            ],
            condition=condition,
        )
    except PynamoDBException as exc:
        if faults.condition_failed(exc):
            return False
        raise faults.fault("revoke integration", exc) from None
    return True


def touch_last_event(workspace_id: str, integration_id: str, stamp: str) -> None:
    """Move ``last_event_at`` forward to ``stamp``. Never resurrects a record a concurrent disconnect
    deleted, never touches a revoked one, never moves the time back."""
    try:
        integrations()._get_connection().update_item(
            workspace_id,
            range_key=integration_id,
            actions=[Integration.last_event_at.set(stamp)],
            condition=Integration.integration_id.exists()
            & (Integration.status != "revoked")
            & (Integration.last_event_at.does_not_exist() | (Integration.last_event_at < stamp)),
        )
    except PynamoDBException as exc:
        if not faults.condition_failed(exc):
            raise faults.fault("record last event", exc) from None


# -- the refresh lease ------------------------------------------------------------------------------
def take_refresh_lease(workspace_id: str, integration_id: str, *, owner: str, now: int, until: int) -> bool:
    """Take the integration's refresh lease (one conditional UpdateItem): only an ``active``
    integration whose lease is free or over. Whether this caller holds it now."""
    try:
        integrations()(workspace_id, integration_id).update(
            actions=[
                Integration.refresh_lease_owner.set(owner),
                Integration.refresh_lease_until.set(until),
            ],
            condition=(Integration.status == "active")
            & (Integration.refresh_lease_until.does_not_exist() | (Integration.refresh_lease_until < now)),
        )
    except PynamoDBException as exc:
        if faults.condition_failed(exc):
            return False
        raise faults.fault("take refresh lease", exc) from None
    return True


def _end_lease(key: Key, owner: str, actions: list[Any], extra_condition: Any = None) -> bool:
    """Apply ``actions`` and release the lease in one write, only while ``owner`` still holds it.
    Whether it was written; a refused condition is ``False``, other failures raise."""
    condition = Integration.refresh_lease_owner == owner
    if extra_condition is not None:
        condition &= extra_condition
    try:
        integrations()(*key).update(
            actions=[
                *actions,
                Integration.refresh_lease_owner.remove(),
                Integration.refresh_lease_until.remove(),
            ],
            condition=condition,
        )
    except PynamoDBException as exc:
        if faults.condition_failed(exc):
            return False
        raise faults.fault("end refresh lease", exc) from None
    return True


def release_refresh_lease(key: Key, owner: str) -> bool:
    """Give the lease back without changing anything else."""
    return _end_lease(key, owner, [])


def record_refreshed(key: Key, owner: str, schedule: RefreshSchedule) -> bool:
    """Fresh tokens are in the vault: new schedule, failures reset, lease released."""
    return _end_lease(key, owner, _schedule_actions(schedule))


def record_refresh_failure(key: Key, owner: str, *, failures: int, retry_at: int) -> bool:
    """A transient refresh failure: count it, push the next attempt out, release the lease."""
    return _end_lease(
        key,
        owner,
        [Integration.refresh_failures.set(failures), Integration.refresh_due_at.set(retry_at)],
    )


def mark_needs_reauth(key: Key, owner: str, *, stamp: str) -> bool:
    """The grant is dead: an ``active`` integration becomes ``needs_reauth``, off the schedule."""
    return _end_lease(
        key,
        owner,
        [
            Integration.status.set("needs_reauth"),
            Integration.updated_at.set(stamp),
            Integration.refresh_bucket.remove(),
            Integration.refresh_due_at.remove(),
        ],
        extra_condition=Integration.status == "active",
    )


def drop_from_refresh_schedule(key: Key) -> None:
    """Take a non-active integration out of the ``by_refresh_due`` index (a revoked one, say)."""
    try:
        integrations()(*key).update(
            actions=[Integration.refresh_bucket.remove(), Integration.refresh_due_at.remove()],
            condition=Integration.status != "active",
        )
    except PynamoDBException as exc:
        if not faults.condition_failed(exc):
            raise faults.fault("drop from refresh schedule", exc) from None


def refresh_due(until: int, *, page_size: int) -> Iterator[Key]:
    """Keys of the integrations whose refresh is due by ``until``: a Query on the sparse
    ``by_refresh_due`` index (never a Scan), read lazily page by page."""
    rows = integrations().by_refresh_due.query(
        REFRESH_BUCKET, Integration.refresh_due_at <= until, page_size=page_size
    )
    try:
        for row in rows:
            yield row.workspace_id, row.integration_id
    except PynamoDBException as exc:
        raise faults.fault("read refresh schedule", exc) from None
