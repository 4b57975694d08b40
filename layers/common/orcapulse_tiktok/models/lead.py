"""The shared social-lead record. Primary key (workspace_id, lead_id); the lead id is derived from
the integration and the TikTok object the event is about, so a redelivered event maps to the same
key and a conditional put makes it idempotent.

Every listing index is keyed by ``<workspace>#<value>`` and sorted by ``sort_key``
(``<captured epoch ms, 13 digits>#<lead_id>``), so each filter is one Query, newest first.

A lead that is not yet announced on the event bus carries a *pending announcement* marker
(``announce_pending`` + ``announce_due_at``), which puts it in the sparse ``by_pending_announcement``
index until the announcement is confirmed (see ``announce.py``)."""

from __future__ import annotations

import hashlib
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.models.base import bind

PENDING_SHARDS = "0123456789abcdef"


class _ListingIndex(GlobalSecondaryIndex["Lead"]):
    sort_key = UnicodeAttribute(range_key=True)


class ByWorkspaceIndex(_ListingIndex):
    class Meta:
        index_name = "by_workspace"
        projection = AllProjection()

    workspace_id = UnicodeAttribute(hash_key=True)


class ByPlatformIndex(_ListingIndex):
    class Meta:
        index_name = "by_platform"
        projection = AllProjection()

    gsi_platform = UnicodeAttribute(hash_key=True)


class BySourceIndex(_ListingIndex):
    class Meta:
        index_name = "by_capture_source"
        projection = AllProjection()

    gsi_capture_source = UnicodeAttribute(hash_key=True)


class ByStatusIndex(_ListingIndex):
    class Meta:
        index_name = "by_status"
        projection = AllProjection()

    gsi_status = UnicodeAttribute(hash_key=True)


class ByIntegrationIndex(_ListingIndex):
    class Meta:
        index_name = "by_integration"
        projection = AllProjection()

    gsi_integration = UnicodeAttribute(hash_key=True)


class PendingAnnouncementIndex(GlobalSecondaryIndex["Lead"]):
    """Sparse: only leads whose announcement is not confirmed yet. Keys only: whoever takes one
    over reads the lead back from the table with the conditional update that claims it."""

    class Meta:
        index_name = "by_pending_announcement"
        projection = KeysOnlyProjection()

    announce_pending = UnicodeAttribute(hash_key=True)
    announce_due_at = NumberAttribute(range_key=True)


class Author(MapAttribute[str, Any]):
    id = UnicodeAttribute(null=True)
    username = UnicodeAttribute(null=True)


class Lead(Model):
    class Meta:
        table_name = "leads-unbound"

    workspace_id = UnicodeAttribute(hash_key=True)
    lead_id = UnicodeAttribute(range_key=True)
    integration_id = UnicodeAttribute()
    platform = UnicodeAttribute()
    capture_source = UnicodeAttribute()
    status = UnicodeAttribute(default="new")
    author = Author()
    message = UnicodeAttribute(default="")
    source_ref = MapAttribute[str, Any]()
    high_intent = BooleanAttribute(default=False)
    source_state = UnicodeAttribute(default="present")
    # Event time (epoch ms) of the comment action that last set source_state: a late redelivery of
    # an older hide/delete never overwrites a newer state.
    source_state_ms = NumberAttribute(null=True)
    captured_at = UnicodeAttribute()
    captured_ms = NumberAttribute()
    created_at = UnicodeAttribute()
    event_type = UnicodeAttribute()
    sort_key = UnicodeAttribute()
    gsi_platform = UnicodeAttribute()
    gsi_capture_source = UnicodeAttribute()
    gsi_status = UnicodeAttribute()
    gsi_integration = UnicodeAttribute()
    # The pending-announcement marker: a shard of the index (one hex digit of the lead id, so no
    # single index partition takes every new lead) and, in epoch ms, when the announcement is due
    # from whoever finds it pending (until then, the writer that set it still owns it).
    announce_pending = UnicodeAttribute(null=True)
    announce_due_at = NumberAttribute(null=True)

    by_workspace = ByWorkspaceIndex()
    by_platform = ByPlatformIndex()
    by_capture_source = BySourceIndex()
    by_status = ByStatusIndex()
    by_integration = ByIntegrationIndex()
    by_pending_announcement = PendingAnnouncementIndex()

    def fill_index_keys(self) -> None:
        """Derive the listing-index attributes from the lead's own fields."""
        ws = self.workspace_id
        self.sort_key = sort_key(int(self.captured_ms), self.lead_id)
        self.gsi_platform = f"{ws}#{self.platform}"
        self.gsi_capture_source = f"{ws}#{self.capture_source}"
        self.gsi_status = f"{ws}#{self.status}"
        self.gsi_integration = f"{ws}#{self.integration_id}"

    @property
    def is_pending(self) -> bool:
        """Whether the lead's announcement on the event bus is not confirmed yet."""
        return self.announce_pending is not None

    def to_public(self) -> dict[str, Any]:
        """The lead as the API and the event bus show it."""
        author = self.author
        return {
            "lead_id": self.lead_id,
            "workspace_id": self.workspace_id,
            "integration_id": self.integration_id,
            "platform": self.platform,
            "capture_source": self.capture_source,
            "status": self.status,
            "author": {"id": author.id if author else None, "username": author.username if author else None},
            "message": self.message,
            "source_ref": dict(self.source_ref.as_dict()) if self.source_ref else {},
            "high_intent": bool(self.high_intent),
            "source_state": self.source_state,
            "captured_at": self.captured_at,
            "created_at": self.created_at,
        }


def sort_key(captured_ms: int, lead_id: str) -> str:
    return f"{captured_ms:013d}#{lead_id}"


def leads() -> type[Lead]:
    """The ``Lead`` model bound to ``LEADS_TABLE``."""
    return bind(Lead, get_settings().require("leads_table"))


def pending_shard(lead_id: str) -> str:
    """The ``by_pending_announcement`` partition of a lead: the last hex digit of its id."""
    last = lead_id[-1:].lower()
    return last if last and last in PENDING_SHARDS else PENDING_SHARDS[0]


def lead_id_for(integration_id: str, object_key: str) -> str:
    """Deterministic lead id for one TikTok object (comment or message) seen by one integration."""
    digest = hashlib.sha256(f"{integration_id}\x1f{object_key}".encode()).hexdigest()
    return f"ld_{digest[:26]}"
