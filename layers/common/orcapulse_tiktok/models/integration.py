"""The shared social-media integration record (one per workspace and connected account).

Tokens never live here: they are in Secrets Manager, under a name derived from the integration id.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.models.base import bind

REFRESH_BUCKET = "tiktok"
CATCHUP_BUCKET = "tiktok_business"
# Ads integrations (DESIGN §10) share the sparse catch-up index under their own bucket.
ADS_BUCKET = "tiktok_ads"
# Partition of the advertiser route items (data/advertisers.py): never an integration record.
ADS_ROUTE_PREFIX = "ads-route#"


class ByOpenIdIndex(GlobalSecondaryIndex["Integration"]):
    """Webhook routing: every workspace's integration of one TikTok account, with its status and
    ``last_event_at`` (so the webhook only writes ``last_event_at`` when it has gone stale)."""

    class Meta:
        index_name = "by_open_id"
        projection = IncludeProjection(["status", "last_event_at"])

    open_id = UnicodeAttribute(hash_key=True)


class RefreshDueIndex(GlobalSecondaryIndex["Integration"]):
    """Sparse: only integrations with live tokens carry ``refresh_bucket``/``refresh_due_at``."""

    class Meta:
        index_name = "by_refresh_due"
        projection = KeysOnlyProjection()

    refresh_bucket = UnicodeAttribute(hash_key=True)
    refresh_due_at = NumberAttribute(range_key=True)


class CatchupIndex(GlobalSecondaryIndex["Integration"]):
    """Sparse: only business integrations carry ``catchup_bucket`` (the scheduled catch-up reads it)."""

    class Meta:
        index_name = "by_catchup"
        projection = KeysOnlyProjection()

    catchup_bucket = UnicodeAttribute(hash_key=True)


class Integration(Model):
    class Meta:
        table_name = "integrations-unbound"

    workspace_id = UnicodeAttribute(hash_key=True)
    integration_id = UnicodeAttribute(range_key=True)
    platform = UnicodeAttribute(default="tiktok")
    status = UnicodeAttribute()
    open_id = UnicodeAttribute()
    union_id = UnicodeAttribute(null=True)
    display_name = UnicodeAttribute(null=True)
    avatar_url = UnicodeAttribute(null=True)
    scopes = ListAttribute(of=UnicodeAttribute, default=list)
    connected_at = UnicodeAttribute()
    connected_by = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    last_event_at = UnicodeAttribute(null=True)
    revoked_reason = UnicodeAttribute(null=True)
    # Token lifecycle bookkeeping (times are epoch seconds); no token value is ever stored here.
    access_expires_at = NumberAttribute(null=True)
    refresh_expires_at = NumberAttribute(null=True)
    refresh_bucket = UnicodeAttribute(null=True)
    refresh_due_at = NumberAttribute(null=True)
    refresh_failures = NumberAttribute(default=0)
    refresh_lease_until = NumberAttribute(null=True)
    refresh_lease_owner = UnicodeAttribute(null=True)
    # DESIGN §8: personal (Login Kit) or business (Accounts API); absent on older records: personal.
    account_type = UnicodeAttribute(null=True)
    # Business catch-up: the index bucket, and the newest comment time seen (epoch seconds).
    catchup_bucket = UnicodeAttribute(null=True)
    catchup_watermark = NumberAttribute(null=True)
    catchup_at = UnicodeAttribute(null=True)
    # Ads (DESIGN §10): the advertisers the token covers, their LEAD subscriptions (advertiser id →
    # subscription id) and the advertisers still waiting for one (a failed subscribe: the
    # scheduled check completes it).
    advertiser_ids = ListAttribute(of=UnicodeAttribute, null=True)
    subscriptions = MapAttribute[str, Any](null=True)
    pending_subscriptions = UnicodeSetAttribute(null=True)

    by_open_id = ByOpenIdIndex()
    by_refresh_due = RefreshDueIndex()
    by_catchup = CatchupIndex()

    def to_public(self) -> dict[str, Any]:
        """The integration as the API shows it: profile and status, never token bookkeeping."""
        from orcapulse_tiktok.platforms import account_capabilities
        from orcapulse_tiktok.tiktok.accounts import kind_of

        kind = kind_of(self.account_type)
        return {
            "integration_id": self.integration_id,
            "platform": self.platform,
            "status": self.status,
            "open_id": self.open_id,
            "union_id": self.union_id,
            "display_name": self.display_name,
            "avatar_url": self.avatar_url,
            "scopes": list(self.scopes or []),
            "connected_at": self.connected_at,
            "connected_by": self.connected_by,
            "updated_at": self.updated_at,
            "last_event_at": self.last_event_at,
            "revoked_reason": self.revoked_reason,
            "account_type": kind,
            "capabilities": account_capabilities(kind),
            **(self._ads_public() if kind == "ads" else {}),
        }

    def _ads_public(self) -> dict[str, Any]:
        pending = sorted(self.pending_subscriptions or ())
        return {
            "advertiser_ids": list(self.advertiser_ids or []),
            "subscription_status": "pending" if pending else "subscribed",
            "pending_advertiser_ids": pending,
        }


def integrations() -> type[Integration]:
    """The ``Integration`` model bound to ``INTEGRATIONS_TABLE``."""
    return bind(Integration, get_settings().require("integrations_table"))


def integration_id_for(workspace_id: str, open_id: str) -> str:
    """Deterministic id: reconnecting the same account to the same workspace keeps its id, and two
    concurrent callbacks for it converge on one record."""
    digest = hashlib.sha256(f"tiktok\x1f{workspace_id}\x1f{open_id}".encode()).hexdigest()
    return f"tt_{digest[:24]}"


_INTEGRATION_ID = re.compile(r"tt_[0-9a-f]{24}")


def is_integration_id(value: str) -> bool:
    """Whether ``value`` has the shape of an id this service issues (anything else is unknown)."""
    return bool(_INTEGRATION_ID.fullmatch(value))
