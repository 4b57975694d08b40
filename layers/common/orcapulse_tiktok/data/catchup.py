"""The integrations table's catch-up operations (business accounts, DESIGN §8): which integrations
the scheduled catch-up visits, and the watermark it keeps on each. Kept apart from
``data.integrations`` (connect, route, lease) so neither module is two."""

from __future__ import annotations

from collections.abc import Iterator

from pynamodb.exceptions import PynamoDBException

from orcapulse_tiktok.data import faults
from orcapulse_tiktok.data.integrations import Key
from orcapulse_tiktok.models.integration import CATCHUP_BUCKET, Integration, integrations


def catchup_targets(*, page_size: int) -> Iterator[Key]:
    """Keys of the business integrations: a Query on the sparse ``by_catchup`` index (never a
    Scan), read lazily page by page."""
    rows = integrations().by_catchup.query(CATCHUP_BUCKET, page_size=page_size)
    try:
        for row in rows:
            yield row.workspace_id, row.integration_id
    except PynamoDBException as exc:
        raise faults.fault("read catch-up targets", exc) from None


def record_catchup(key: Key, *, watermark: int, stamp: str) -> None:
    """Move the integration's catch-up watermark (epoch seconds of the newest comment seen) forward
    and note when the run finished. Never moves it back, never resurrects a deleted record."""
    condition = Integration.integration_id.exists() & (
        Integration.catchup_watermark.does_not_exist() | (Integration.catchup_watermark <= watermark)
    )
    try:
        integrations()(*key).update(
            actions=[Integration.catchup_watermark.set(watermark), Integration.catchup_at.set(stamp)],
            condition=condition,
        )
    except PynamoDBException as exc:
        if not faults.condition_failed(exc):
            raise faults.fault("record catch-up", exc) from None


def drop_from_catchup(key: Key) -> None:
    """Take an integration that is no longer an active business account out of ``by_catchup``."""
    try:
        integrations()(*key).update(
            actions=[Integration.catchup_bucket.remove()],
            condition=Integration.integration_id.exists() & (Integration.status != "active"),
        )
    except PynamoDBException as exc:
        if not faults.condition_failed(exc):
            raise faults.fault("drop from catch-up", exc) from None
