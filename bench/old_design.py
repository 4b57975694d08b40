"""The per-event lead design that "leads are people" replaced: its table (template.yaml before the
change) and the item its webhook stored for one comment or DM. The migration's tests fill a table
of this shape, and the capacity model (``bench/capacity.py``) prices it as today's per-event figure."""

from __future__ import annotations

import hashlib
from typing import Any

# The old LeadsTable's properties (template.yaml before "leads are people"): key
# (workspace_id, lead_id), five listing indexes and the pending-announcement index.
_LISTING = (
    ("by_workspace", "workspace_id"),
    ("by_platform", "gsi_platform"),
    ("by_capture_source", "gsi_capture_source"),
    ("by_status", "gsi_status"),
    ("by_integration", "gsi_integration"),
)
OLD_TABLE_PROPERTIES: dict[str, Any] = {
    "TableName": "orcapulse-social-leads-tiktok-test",
    "BillingMode": "PAY_PER_REQUEST",
    "AttributeDefinitions": [
        {"AttributeName": name, "AttributeType": kind}
        for name, kind in (
            ("workspace_id", "S"),
            ("lead_id", "S"),
            ("sort_key", "S"),
            ("gsi_platform", "S"),
            ("gsi_capture_source", "S"),
            ("gsi_status", "S"),
            ("gsi_integration", "S"),
            ("announce_pending", "S"),
            ("announce_due_at", "N"),
        )
    ],
    "KeySchema": [
        {"AttributeName": "workspace_id", "KeyType": "HASH"},
        {"AttributeName": "lead_id", "KeyType": "RANGE"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": index,
            "KeySchema": [
                {"AttributeName": hash_key, "KeyType": "HASH"},
                {"AttributeName": "sort_key", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
        for index, hash_key in _LISTING
    ]
    + [
        {
            "IndexName": "by_pending_announcement",
            "KeySchema": [
                {"AttributeName": "announce_pending", "KeyType": "HASH"},
                {"AttributeName": "announce_due_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ],
}


def old_item(
    workspace_id: str,
    integration_id: str,
    *,
    kind: str,
    object_id: str,
    ms: int,
    author_id: str | None,
    username: str | None,
    text: str = "Is it still available?",
    high_intent: bool = False,
    event_type: str | None = None,
    source_state: str = "present",
    source_state_ms: int | None = None,
    pending_until_ms: int | None = None,
) -> dict[str, Any]:
    """An item as the old webhook stored it (raw DynamoDB values, every index key filled); with
    ``pending_until_ms``, as its PutItem wrote it, still carrying the pending-announcement marker
    (a shard of the marker index and the lease's end) that the announcement then removed."""
    dm = kind == "dm"
    object_key = f"{'dm' if dm else 'comment'}:{object_id}"
    lead_id = "ld_" + hashlib.sha256(f"{integration_id}\x1f{object_key}".encode()).hexdigest()[:26]
    source = "tiktok_dm" if dm else "tiktok_comment"
    ref = (
        {"conversation_id": {"S": f"conv-{author_id or username}"}, "message_id": {"S": object_id}}
        if dm
        else {"video_id": {"S": "7300000000000000001"}, "comment_id": {"S": object_id}}
    )
    author = {
        "id": {"S": author_id} if author_id else {"NULL": True},
        "username": {"S": username} if username else {"NULL": True},
    }
    sort_key = f"{ms:013d}#{lead_id}"
    item: dict[str, Any] = {
        "workspace_id": {"S": workspace_id},
        "lead_id": {"S": lead_id},
        "integration_id": {"S": integration_id},
        "platform": {"S": "tiktok"},
        "capture_source": {"S": source},
        "status": {"S": "new"},
        "author": {"M": author},
        "message": {"S": text},
        "source_ref": {"M": ref},
        "high_intent": {"BOOL": high_intent},
        "source_state": {"S": source_state},
        "captured_at": {"S": "2025-11-25T08:00:00Z"},
        "captured_ms": {"N": str(ms)},
        "created_at": {"S": "2025-11-25T08:00:01Z"},
        "event_type": {"S": event_type or ("im_receive_msg" if dm else "comment.update")},
        "sort_key": {"S": sort_key},
        "gsi_platform": {"S": f"{workspace_id}#tiktok"},
        "gsi_capture_source": {"S": f"{workspace_id}#{source}"},
        "gsi_status": {"S": f"{workspace_id}#new"},
        "gsi_integration": {"S": f"{workspace_id}#{integration_id}"},
    }
    if source_state_ms is not None:
        item["source_state_ms"] = {"N": str(source_state_ms)}
    if pending_until_ms is not None:
        item["announce_pending"] = {"S": lead_id[-1]}
        item["announce_due_at"] = {"N": str(pending_until_ms)}
    return item
