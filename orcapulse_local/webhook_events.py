"""TikTok webhook events as the emulator sends them: the ``content`` of each kind shaped as TikTok
documents it, and the signed delivery of an envelope to the product's webhook URL."""

from __future__ import annotations

import hashlib
import itertools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from orcapulse_local.tiktok_state import TikTokState

if TYPE_CHECKING:
    from orcapulse_local.business_state import BusinessState

EVENT_KINDS = {
    "comment": "comment.update",
    "dm": "im_receive_msg",
    "high_intent": "im_receive_high_intent_comment",
    "removed": "authorization.removed",
}
_ids = itertools.count(7_300_000_000_000_000_000 + int(time.time()))


def person_id(author: str) -> str:
    """A stable TikTok-like numeric user id for ``author``: the same author is the same person."""
    return str(int(hashlib.sha256(author.encode()).hexdigest()[:15], 16))


def stranger() -> str:
    """A handle nobody used before in this process: an event without an author is a new person."""
    return f"stranger.{next(_ids) % 1_000_000:06d}"


def event_content(kind: str, open_id: str, text: str = "", *, author: str | None = None) -> dict[str, Any]:
    """The ``content`` of a webhook event of ``kind`` (comment, dm, high_intent, removed), shaped
    as TikTok documents it. Comment ids come as JSON numbers (int64), as TikTok sends them.
    ``author`` is who writes (the same author is the same person); without one, a new stranger."""
    now_ms = int(time.time() * 1000)
    author = author or stranger()
    if kind == "comment":
        return {
            "comment_id": next(_ids),
            "video_id": 7_290_000_000_000_000_001,
            "parent_comment_id": 0,
            "comment_type": "comment",
            "comment_action": "insert",
            "text": text,
            "timestamp": now_ms,
            "unique_identifier": author,
        }
    if kind == "high_intent":
        return {
            "comment_id": next(_ids),
            "comment_text": text,
            "unique_identifier": author,
            "is_follower": True,
            "timestamp": now_ms,
        }
    if kind == "dm":
        # An author keeps one conversation with the account.
        sender = person_id(author)
        return {
            "conversation_id": f"0:1:{sender}:{open_id}",
            "message_id": f"{next(_ids)}",
            "timestamp": now_ms,
            "type": "text",
            "text": {"body": text},
            "from": author,
            "from_user": {"id": sender},
            "to": open_id,
            "to_user": {"id": open_id},
        }
    if kind == "removed":
        return {"reason": 1}
    raise ValueError(f"unknown event kind {kind!r}; one of {', '.join(EVENT_KINDS)}")


@dataclass
class Delivery:
    """One signed POST of an event body to the webhook URL, and the product's answer."""

    id: str
    event: str
    open_id: str
    body: bytes
    status: int | None = None
    response: Any = None

    def summary(self) -> dict[str, Any]:
        """The delivery as the ``/local/...webhooks`` controls answer it."""
        return {
            "delivery_id": self.id,
            "event": self.event,
            "open_id": self.open_id,
            "status": self.status,
            "response": self.response,
        }


def deliver(
    state: TikTokState | BusinessState, url: str, body: bytes, timeout: float = 20.0
) -> tuple[int, Any]:
    """POST ``body`` to ``url`` signed as TikTok signs it (with the secret of the app ``state``
    models); the answer's status and JSON body."""
    resp = requests.post(
        url,
        data=body,
        headers={"Content-Type": "application/json", "TikTok-Signature": state.sign(body)},
        timeout=timeout,
    )
    try:
        return resp.status_code, resp.json() if resp.content else None
    except ValueError:
        return resp.status_code, resp.text
