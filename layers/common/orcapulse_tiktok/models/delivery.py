"""The delivery archive (DESIGN §11): every verified webhook delivery, raw with its headers, for
``DELIVERY_RETENTION_DAYS``; docs/operations.md has the layout's reasons and its cost.

Two kinds of item in one table, both expiring through DynamoDB TTL (``expires_at``):

- a delivery: ``pk = D#<delivery_id>``, ``sk = D``; the body as sent (binary), the headers, the
  route, when it arrived; a body too large for an item is an S3 object instead, named by
  ``body_key`` (``data.delivery_bodies``). The id is a hash of the route and the body, so
  TikTok's redeliveries of one delivery are one item. ``bucket`` (``<UTC hour>#<shard>``) puts it in the ``by_received``
  index, which a time-range replay reads; a quarantined delivery also carries ``quarantine``,
  which puts it in the sparse ``by_quarantine`` index.
- a lead reference: ``pk = R#<lead_id>``, ``sk = <delivery_id>``: a delivery that touched the
  lead. An erasure reads them to find the person's deliveries (``data.deliveries.forget_deliveries``);
  a reference to a delivery whose body is in S3 carries its ``body_key`` too.
"""

from __future__ import annotations

from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.models.base import bind

DELIVERY_SK = "D"
DELIVERY_PREFIX = "D#"
REF_PREFIX = "R#"
QUARANTINED = "Q"


class ByReceivedIndex(GlobalSecondaryIndex["Delivery"]):
    """Deliveries by arrival: ``bucket`` is the UTC hour and a shard, ``received_ms`` orders them."""

    class Meta:
        index_name = "by_received"
        projection = KeysOnlyProjection()

    bucket = UnicodeAttribute(hash_key=True)
    received_ms = NumberAttribute(range_key=True)


class ByQuarantineIndex(GlobalSecondaryIndex["Delivery"]):
    """The quarantined deliveries (sparse: only they carry ``quarantine``), by arrival."""

    class Meta:
        index_name = "by_quarantine"
        projection = KeysOnlyProjection()

    quarantine = UnicodeAttribute(hash_key=True)
    received_ms = NumberAttribute(range_key=True)


class Delivery(Model):
    class Meta:
        table_name = "deliveries-unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    expires_at = NumberAttribute()  # epoch seconds; the table's TTL attribute
    route = UnicodeAttribute(null=True)
    body = BinaryAttribute(null=True, legacy_encoding=False)
    headers = UnicodeAttribute(null=True)  # JSON object, header names in lower case
    body_key = UnicodeAttribute(null=True)  # the S3 object holding a body too large for the item
    received_ms = NumberAttribute(null=True)
    bucket = UnicodeAttribute(null=True)
    quarantine = UnicodeAttribute(null=True)
    # Why it was quarantined: an error code or an exception's type, never a message (it may quote data).
    failure = UnicodeAttribute(null=True)
    attempts = NumberAttribute(null=True)

    by_received = ByReceivedIndex()
    by_quarantine = ByQuarantineIndex()


def deliveries() -> type[Delivery]:
    """The ``Delivery`` model bound to ``DELIVERIES_TABLE``."""
    return bind(Delivery, get_settings().require("deliveries_table"))


def delivery_pk(delivery_id: str) -> str:
    return DELIVERY_PREFIX + delivery_id


def ref_pk(lead_id: str) -> str:
    return REF_PREFIX + lead_id
