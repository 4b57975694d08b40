"""The shared social-leads table: a lead is a *person* seen by one integration, and what they did
are its *interactions* (DESIGN §6). One table, two kinds of item, chosen for the fewest write units
per interaction (docs/leads-storage.md has the arithmetic):

- a lead: ``pk = L#<lead_id>``, ``sk = L``. Its id is a keyed hash of the integration and the
  person key, so every event of one person finds the same lead without a read. It is the only item
  in the ``by_activity`` index (workspace → ``activity_key``, newest first), which serves the
  listing; a merged lead drops its ``activity_key`` and so leaves the listing.
- an interaction: ``pk = L#<lead_id>``, ``sk = I#<interaction_id>``. Its id is a hash of the
  integration and the TikTok object (comment, message, form entry), so a redelivery, or the
  high-intent event about a comment that already made one, is the same item; a conditional put
  makes it exist once. The ``by_time`` local index orders a lead's interactions by time.

New leads and interactions are announced from the table's stream (``announce.py``), so capturing
an event costs no outbox write.

Both kinds carry ``expires_at`` (epoch seconds, the table's TTL attribute): an interaction its own
time plus ``LEAD_RETENTION_DAYS``, a lead its last activity plus the same, so an idle person's lead
and interactions expire together (docs/lifecycle.md).
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex
from pynamodb.models import Model

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.models.base import bind

LEAD_SK = "L"
INTERACTION_PREFIX = "I#"


class ByActivityIndex(GlobalSecondaryIndex["Lead"]):
    """The listing: a workspace's leads, most recent activity first. Sparse: only live leads carry
    ``activity_key`` (``<last activity, epoch ms, 13 digits>#<lead_id>``)."""

    class Meta:
        index_name = "by_activity"
        projection = AllProjection()

    workspace_id = UnicodeAttribute(hash_key=True)
    activity_key = UnicodeAttribute(range_key=True)


class ByTimeIndex(LocalSecondaryIndex["Interaction"]):
    """A lead's timeline: its interactions by ``ix_time`` (``<occurred, epoch ms>#<interaction_id>``)."""

    class Meta:
        index_name = "by_time"
        projection = AllProjection()

    pk = UnicodeAttribute(hash_key=True)
    ix_time = UnicodeAttribute(range_key=True)


class Author(MapAttribute[str, Any]):
    id = UnicodeAttribute(null=True)
    username = UnicodeAttribute(null=True)


class Lead(Model):
    class Meta:
        table_name = "leads-unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=LEAD_SK)
    lead_id = UnicodeAttribute()
    workspace_id = UnicodeAttribute()
    integration_id = UnicodeAttribute()
    platform = UnicodeAttribute()
    capture_source = UnicodeAttribute()  # of the first interaction
    capture_sources = UnicodeSetAttribute(null=True)
    status = UnicodeAttribute(default="new")
    author = Author(null=True)
    message = UnicodeAttribute(default="")  # the latest interaction's text, for list views
    source_ref = MapAttribute[str, Any](null=True)  # of the first interaction
    high_intent = BooleanAttribute(default=False)
    source_state = UnicodeAttribute(default="present")  # of the first interaction
    first_interaction_id = UnicodeAttribute(null=True)
    captured_at = UnicodeAttribute()
    created_at = UnicodeAttribute()
    first_seen_ms = NumberAttribute()
    last_activity_ms = NumberAttribute()
    interaction_count = NumberAttribute(default=0)
    version = NumberAttribute(default=0)
    assignee = UnicodeAttribute(null=True)
    labels = ListAttribute(of=UnicodeAttribute, null=True)
    contact = MapAttribute[str, Any](null=True)
    # The interaction the last write applied (the stream announces it), whatever its time order.
    applied = MapAttribute[str, Any](null=True)
    merged_into = UnicodeAttribute(null=True)
    activity_key = UnicodeAttribute(null=True)
    # Short ids of the interactions counted on this lead: makes the count idempotent. Kept out of
    # the listing index's projection, so it never costs an index write.
    counted = UnicodeSetAttribute(null=True)
    # The lifecycle (docs/lifecycle.md): what changed, by whom, oldest first (the last
    # ``HISTORY_LIMIT`` changes); when the last change was made (epoch ms: a pipeline decision
    # older than it never applies); the pipeline decisions applied at that very time; and what the
    # pipeline said last. None of these is in the listing index (an index write costs per byte).
    history = ListAttribute[Any](null=True)
    lifecycle_ms = NumberAttribute(null=True)
    decisions = UnicodeSetAttribute(null=True)
    score = NumberAttribute(null=True)
    route = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)  # TTL: last activity + LEAD_RETENTION_DAYS
    # -- merge and erasure (docs/lifecycle-merge-erase.md) --
    # Every lead merged into this one, at any depth: an erasure of this person erases them too.
    merged_from = UnicodeSetAttribute(null=True)
    # Set while an erasure runs (captures wait), and kept on the tombstone that replaces the lead:
    # an event no newer than ``erased_ms`` never brings the person back.
    erasing = BooleanAttribute(null=True)
    erased_ms = NumberAttribute(null=True)

    by_activity = ByActivityIndex()

    @property
    def etag(self) -> str:
        """The HTTP ETag of the lead: its version, quoted."""
        return f'"{int(self.version or 0)}"'

    @property
    def is_tombstone(self) -> bool:
        """An erased person's marker: no personal data, no interaction (``first_seen_ms`` unset)."""
        return self.erased_ms is not None and self.first_seen_ms is None

    def refuses(self, occurred_ms: int) -> bool:
        """Whether an interaction of ``occurred_ms`` cannot be counted here: the lead was merged,
        is being erased, or its person was erased at or after that time (an old event)."""
        erased = self.erased_ms is not None and int(self.erased_ms) >= occurred_ms
        return bool(self.merged_into or self.erasing or erased)

    def to_public(self, *, detail: bool = True) -> dict[str, Any]:
        """The lead as the API and the event bus show it; without ``detail`` (a listing row) the
        fields the listing index does not project (history, score, route) are left out."""
        author = self.author
        body: dict[str, Any] = {
            "lead_id": self.lead_id,
            "workspace_id": self.workspace_id,
            "integration_id": self.integration_id,
            "platform": self.platform,
            "capture_source": self.capture_source,
            "capture_sources": sorted(self.capture_sources or ()),
            "status": self.status,
            "author": {"id": author.id if author else None, "username": author.username if author else None},
            "message": self.message,
            "source_ref": _plain(self.source_ref),
            "high_intent": bool(self.high_intent),
            "source_state": self.source_state,
            "captured_at": self.captured_at,
            "created_at": self.created_at,
            "first_seen_at": _iso_ms(self.first_seen_ms),
            "last_activity_at": _iso_ms(self.last_activity_ms),
            "interaction_count": int(self.interaction_count or 0),
            "assignee": self.assignee,
            "labels": list(self.labels or []),
            "contact": _plain(self.contact) or None,
            "version": int(self.version or 0),
        }
        if detail:
            body["history"] = [dict(entry) for entry in self.history or []]
            body["score"] = None if self.score is None else float(self.score)
            body["route"] = self.route
        return body


class Interaction(Model):
    class Meta:
        table_name = "leads-unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    interaction_id = UnicodeAttribute()
    lead_id = UnicodeAttribute()
    integration_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    capture_source = UnicodeAttribute()
    message = UnicodeAttribute(default="")
    source_ref = MapAttribute[str, Any](null=True)
    occurred_ms = NumberAttribute()
    ix_time = UnicodeAttribute()
    source_state = UnicodeAttribute(default="present")
    source_state_ms = NumberAttribute(null=True)
    high_intent = BooleanAttribute(default=False)
    author = Author(null=True)
    form_fields = MapAttribute[str, Any](null=True)
    # A merge leaves a stub where an interaction was, so a redelivery of its event stays a duplicate.
    moved_to = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)  # TTL: occurred + LEAD_RETENTION_DAYS
    # The archived webhook delivery that stored it (DESIGN §11): an erasure finds the person's
    # deliveries here, so the common delivery writes no separate reference (archive.py).
    delivery_id = UnicodeAttribute(null=True)
    delivery_body = UnicodeAttribute(null=True)  # its S3 body's key, for a body too large for its item

    by_time = ByTimeIndex()

    def to_public(self) -> dict[str, Any]:
        """The interaction as the API and the event bus show it."""
        body: dict[str, Any] = {
            "interaction_id": self.interaction_id,
            "lead_id": self.lead_id,
            "kind": self.kind,
            "capture_source": self.capture_source,
            "message": self.message,
            "source_ref": _plain(self.source_ref),
            "occurred_at": _iso_ms(self.occurred_ms),
            "source_state": self.source_state,
            "high_intent": bool(self.high_intent),
        }
        if self.form_fields:
            body["form_fields"] = _plain(self.form_fields)
        return body


def _plain(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    return dict(value.as_dict()) if hasattr(value, "as_dict") else dict(value)


def _iso_ms(ms: Any) -> str | None:
    from orcapulse_tiktok import clock

    return None if ms is None else clock.iso(int(ms) / 1000)


def lead_pk(lead_id: str) -> str:
    return f"L#{lead_id}"


def interaction_sk(interaction_id: str) -> str:
    return f"{INTERACTION_PREFIX}{interaction_id}"


def time_key(occurred_ms: int, item_id: str) -> str:
    """Sort key of the activity and timeline indexes: 13-digit epoch ms, then the id."""
    return f"{max(occurred_ms, 0):013d}#{item_id}"


def expires_at(activity_ms: int) -> int:
    """The TTL (epoch seconds) of an item whose last activity was at ``activity_ms``."""
    return max(activity_ms, 0) // 1000 + get_settings().lead_retention_days * 86400


def leads() -> type[Lead]:
    """The ``Lead`` model bound to ``LEADS_TABLE``."""
    return bind(Lead, get_settings().require("leads_table"))


def interactions() -> type[Interaction]:
    """The ``Interaction`` model bound to ``LEADS_TABLE``."""
    return bind(Interaction, get_settings().require("leads_table"))
