"""Ads integrations (DESIGN §10) in the integrations table: the record's ads fields, and the small
route items that send a lead-form delivery to the integrations of its ``advertiser_id``.

Routing reuses the webhook's ``by_open_id`` index: one route item per (integration, advertiser),
its ``open_id`` ``advertiser:<id>``, kept under a partition of its own (``ads-route#<workspace>``)
so the workspace's listing never sees it and no integration index (refresh, catch-up) holds it.
An advertiser authorised by two workspaces (or two users) has two route items: a delivery reaches
both integrations, as a TikTok account connected by two workspaces does."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from orcapulse_tiktok.data import faults
from orcapulse_tiktok.data import integrations as integration_store
from orcapulse_tiktok.data.integrations import Target
from orcapulse_tiktok.models.integration import ADS_BUCKET, ADS_ROUTE_PREFIX, Integration, integrations

ROUTE_PREFIX = ADS_ROUTE_PREFIX
ROUTE_OPEN_ID = "advertiser:"
_SEPARATOR = "#"


def _client() -> tuple[Any, str]:
    model = integrations()
    return model._get_connection().connection.client, model.Meta.table_name


def route_key(workspace_id: str, integration_id: str, advertiser_id: str) -> dict[str, Any]:
    return {
        Integration.workspace_id.attr_name: {"S": ROUTE_PREFIX + workspace_id},
        Integration.integration_id.attr_name: {"S": f"{integration_id}{_SEPARATOR}{advertiser_id}"},
    }


def put_routes(workspace_id: str, integration_id: str, advertiser_ids: Iterable[str], stamp: str) -> None:
    """One route item per advertiser (idempotent: a put of the same item again changes nothing)."""
    table, name = _client()
    for advertiser_id in advertiser_ids:
        item = {
            **route_key(workspace_id, integration_id, advertiser_id),
            Integration.open_id.attr_name: {"S": ROUTE_OPEN_ID + advertiser_id},
            Integration.status.attr_name: {"S": "active"},
            Integration.updated_at.attr_name: {"S": stamp},
        }
        try:
            table.put_item(TableName=name, Item=item)
        except (ClientError, BotoCoreError) as exc:
            raise faults.fault("write advertiser route", exc) from None


def delete_routes(workspace_id: str, integration_id: str, advertiser_ids: Iterable[str]) -> None:
    """Remove route items (idempotent)."""
    table, name = _client()
    for advertiser_id in advertiser_ids:
        try:
            table.delete_item(TableName=name, Key=route_key(workspace_id, integration_id, advertiser_id))
        except (ClientError, BotoCoreError) as exc:
            raise faults.fault("delete advertiser route", exc) from None


def route(advertiser_id: str) -> list[Target]:
    """The integrations a delivery for ``advertiser_id`` goes to: one Query on ``by_open_id``."""
    table, name = _client()
    request: dict[str, Any] = {
        "TableName": name,
        "IndexName": Integration.by_open_id.Meta.index_name,
        "KeyConditionExpression": "#open_id = :open_id",
        "ExpressionAttributeNames": {"#open_id": Integration.open_id.attr_name},
        "ExpressionAttributeValues": {":open_id": {"S": ROUTE_OPEN_ID + advertiser_id}},
    }
    targets: list[Target] = []
    try:
        while True:
            page = table.query(**request)
            for item in page.get("Items", ()):
                workspace = item[Integration.workspace_id.attr_name]["S"].removeprefix(ROUTE_PREFIX)
                integration_id = item[Integration.integration_id.attr_name]["S"].split(_SEPARATOR, 1)[0]
                targets.append(Target(workspace_id=workspace, integration_id=integration_id, status="active"))
            if "LastEvaluatedKey" not in page:
                return targets
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except (ClientError, BotoCoreError) as exc:
        raise faults.fault("route lead delivery", exc) from None


def upsert_ads(
    workspace_id: str,
    integration_id: str,
    *,
    owner: str,
    advertiser_ids: list[str],
    display_name: str | None,
    connected_by: str,
    stamp: str,
) -> None:
    """Create or refresh an ads integration: ``active``, its advertisers, every advertiser without
    a subscription pending one, in the catch-up index; never in the token refresh schedule (an
    advertiser token does not expire)."""
    record = integrations()(workspace_id, integration_id)
    current = integration_store.get(workspace_id, integration_id)
    subscribed = current.subscriptions.as_dict() if current is not None and current.subscriptions else {}
    kept = {a: s for a, s in subscribed.items() if a in advertiser_ids}
    pending = {a for a in advertiser_ids if a not in kept}
    try:
        record.update(
            actions=[
                Integration.platform.set("tiktok"),
                Integration.status.set("active"),
                Integration.open_id.set(owner),
                (
                    Integration.display_name.set(display_name)
                    if display_name
                    else Integration.display_name.remove()
                ),
                Integration.scopes.set([]),  # type: ignore[arg-type]
                Integration.connected_at.set(stamp),
                Integration.connected_by.set(connected_by),
                Integration.updated_at.set(stamp),
                Integration.revoked_reason.remove(),
                Integration.account_type.set("ads"),
                Integration.advertiser_ids.set(advertiser_ids),  # type: ignore[arg-type]
                Integration.subscriptions.set(kept),  # type: ignore[arg-type]
                (
                    Integration.pending_subscriptions.set(pending)
                    if pending
                    else Integration.pending_subscriptions.remove()
                ),
                Integration.catchup_bucket.set(ADS_BUCKET),
                Integration.refresh_bucket.remove(),
                Integration.refresh_due_at.remove(),
            ]
        )
    except PynamoDBException as exc:
        raise faults.fault("write integration", exc) from None


def record_subscription(
    workspace_id: str, integration_id: str, advertiser_id: str, subscription_id: str
) -> bool:
    """Keep one advertiser's subscription id and take it off the pending list (one UpdateItem);
    ``False`` when the integration is gone (a concurrent disconnect)."""
    try:
        integrations()._get_connection().update_item(
            workspace_id,
            range_key=integration_id,
            actions=[
                Integration.subscriptions[advertiser_id].set(subscription_id),  # type: ignore[index]
                Integration.pending_subscriptions.delete({advertiser_id}),
            ],
            condition=Integration.integration_id.exists(),
        )
    except PynamoDBException as exc:
        if faults.condition_failed(exc):
            return False
        raise faults.fault("record subscription", exc) from None
    return True


def forget_subscription(workspace_id: str, integration_id: str, advertiser_id: str) -> None:
    """An unsubscribed advertiser leaves the record's subscriptions (a retried disconnect skips it)."""
    try:
        integrations()._get_connection().update_item(
            workspace_id,
            range_key=integration_id,
            actions=[Integration.subscriptions[advertiser_id].remove()],  # type: ignore[index]
            condition=Integration.integration_id.exists(),
        )
    except PynamoDBException as exc:
        if not faults.condition_failed(exc):
            raise faults.fault("forget subscription", exc) from None


def mark_needs_reauth(workspace_id: str, integration_id: str, stamp: str) -> None:
    """TikTok reported the advertiser token invalid: ``needs_reauth`` (deliveries still land)."""
    try:
        integrations()._get_connection().update_item(
            workspace_id,
            range_key=integration_id,
            actions=[Integration.status.set("needs_reauth"), Integration.updated_at.set(stamp)],
            condition=Integration.integration_id.exists() & (Integration.status == "active"),
        )
    except PynamoDBException as exc:
        if not faults.condition_failed(exc):
            raise faults.fault("mark needs reauth", exc) from None


def ads_integrations(page_size: int = 25) -> list[tuple[str, str]]:
    """Keys of every ads integration: a Query of the sparse catch-up index's ads bucket."""
    try:
        return [
            (row.workspace_id, row.integration_id)
            for row in integrations().by_catchup.query(ADS_BUCKET, page_size=page_size)
        ]
    except PynamoDBException as exc:
        raise faults.fault("read ads integrations", exc) from None
