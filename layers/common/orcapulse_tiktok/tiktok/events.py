"""TikTok webhook bodies: the envelope and the typed content of the events this product acts on.

The envelope is ``{"client_key", "event", "create_time", "user_openid", "content"}`` where
``content`` is a JSON *string*. Every documented field is type-checked (a wrong type is
``invalid_content``); fields TikTok may add later are ignored. TikTok ids arrive as JSON numbers
(int64) or strings: both become strings, and a float or a bool is refused, because a float cannot
hold an int64 exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from orcapulse_tiktok.errors import BadRequest

COMMENT_UPDATE = "comment.update"
MESSAGE_RECEIVED = "im_receive_msg"
HIGH_INTENT_COMMENT = "im_receive_high_intent_comment"
AUTHORIZATION_REMOVED = "authorization.removed"
LEAD_EVENTS = frozenset({COMMENT_UPDATE, MESSAGE_RECEIVED, HIGH_INTENT_COMMENT})

# A DM to a business account in the EEA, Switzerland or the UK: TikTok sends it without text or
# sender (DESIGN §8), so there is no one to make a lead of. Acknowledged and counted
# (WebhookEvents, event_type im_receive_msg_eu, outcome ignored); see docs/business-accounts.md.
MESSAGE_RECEIVED_EU = "im_receive_msg_eu"

# Documented events this product acknowledges without acting on them.
ACKNOWLEDGED_EVENTS = frozenset(
    {
        MESSAGE_RECEIVED_EU,
        "im_send_msg",
        "im_mark_read_msg",
        "video.upload.failed",
        "video.publish.completed",
        "post.publish.failed",
        "post.publish.complete",
        "post.publish.inbox_delivered",
        "post.publish.publicly_available",
        "post.publish.no_longer_publicly_available",
        "portability.download.ready",
    }
)
KNOWN_EVENTS = LEAD_EVENTS | ACKNOWLEDGED_EVENTS | {AUTHORIZATION_REMOVED}

MAX_NAME_LENGTH = 128
MAX_OPEN_ID_LENGTH = 256
MAX_ID_LENGTH = 128
UINT64_LIMIT = 2**64
# captured times are stored as 13-digit epoch milliseconds (the leads' sort key).
MS_LIMIT = 10**13
# Below this a "millisecond" timestamp is really in seconds (10**11 ms is March 1973).
SECONDS_CUTOFF = 10**11


class Envelope(NamedTuple):
    client_key: str
    event: str
    create_time: int
    user_openid: str
    content: str


class CommentUpdate(NamedTuple):
    comment_id: str
    action: str
    video_id: str | None
    parent_comment_id: str | None
    comment_type: str | None
    text: str | None
    timestamp_ms: int | None
    unique_identifier: str | None
    user_id: str | None


class MessageReceived(NamedTuple):
    message_id: str
    conversation_id: str | None
    message_type: str | None
    text: str | None
    timestamp_ms: int | None
    from_username: str | None
    from_user_id: str | None
    to_user_id: str | None


class HighIntentComment(NamedTuple):
    comment_id: str
    video_id: str | None
    text: str | None
    unique_identifier: str | None
    user_id: str | None
    is_follower: bool | None
    timestamp_ms: int | None


class AuthorizationRemoved(NamedTuple):
    reason: int


Payload = CommentUpdate | MessageReceived | HighIntentComment | AuthorizationRemoved | None


class WebhookEvent(NamedTuple):
    """A verified, parsed delivery. ``payload`` is ``None`` for events the product only acknowledges."""

    envelope: Envelope
    content: dict[str, Any]
    payload: Payload

    @property
    def type(self) -> str:
        return self.envelope.event

    def occurred_ms(self) -> int:
        """When the thing happened: the content's own timestamp if it has one, else ``create_time``."""
        own = getattr(self.payload, "timestamp_ms", None)
        return own if isinstance(own, int) else self.envelope.create_time * 1000


def metric_type(event: str) -> str:
    """The event name as a metric dimension: documented names as they are, anything else ``other``
    (an unbounded dimension would be a cost and an injection vector)."""
    return event if event in KNOWN_EVENTS else "other"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(text: str | bytes) -> Any:
    # NaN/Infinity are not JSON; Python's parser would accept them.
    return json.loads(text, parse_constant=_reject_constant)


def parse_envelope(raw_body: bytes) -> Envelope:
    """The envelope of a webhook body: ``invalid_json`` if it is not JSON, ``invalid_envelope`` if it
    is not TikTok's envelope. ``content`` is checked to be a string here and parsed later."""
    try:
        body = _loads(raw_body)
    except (ValueError, RecursionError):
        raise BadRequest("The body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise _envelope("the body must be a JSON object")
    client_key = _name(body.get("client_key"), MAX_NAME_LENGTH)
    event = _name(body.get("event"), MAX_NAME_LENGTH)
    user_openid = _name(body.get("user_openid"), MAX_OPEN_ID_LENGTH)
    if client_key is None:
        raise _envelope("client_key must be a non-empty string")
    if event is None:
        raise _envelope("event must be a non-empty string")
    if user_openid is None:
        raise _envelope("user_openid must be a non-empty string")
    create_time = _integer(body.get("create_time"))
    if create_time is None or not 0 <= create_time < MS_LIMIT // 1000:
        raise _envelope("create_time must be epoch seconds")
    if "content" not in body:
        raise _envelope("content is missing")
    content = body["content"]
    if not isinstance(content, str):
        raise _content("content must be a JSON object serialised as a string")
    return Envelope(
        client_key=client_key, event=event, create_time=create_time, user_openid=user_openid, content=content
    )


def parse_event(envelope: Envelope) -> WebhookEvent:
    """Parse ``content`` and type the fields of the events this product acts on."""
    try:
        content = _loads(envelope.content)
    except (ValueError, RecursionError):
        raise _content("content is not valid JSON") from None
    if not isinstance(content, dict):
        raise _content("content must be a JSON object")
    try:
        # JSON can escape a lone surrogate ("\ud800"), which no store or log line can encode.
        json.dumps(content, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise _content("content holds text that is not valid Unicode") from None
    parser = _PARSERS.get(envelope.event)
    payload = parser(content) if parser else None
    return WebhookEvent(envelope=envelope, content=content, payload=payload)


def _comment_update(c: dict[str, Any]) -> CommentUpdate:
    action = _text(c, "comment_action")
    if not action:
        raise _content("comment_action must be a non-empty string")
    return CommentUpdate(
        comment_id=_required_id(c, "comment_id"),
        action=action,
        video_id=_id(c, "video_id"),
        parent_comment_id=_id(c, "parent_comment_id"),
        comment_type=_text(c, "comment_type"),
        text=_text(c, "text"),
        timestamp_ms=_timestamp_ms(c, "timestamp"),
        unique_identifier=_text(c, "unique_identifier"),
        user_id=_id(c, "user_id"),
    )


def _message_received(c: dict[str, Any]) -> MessageReceived:
    text = c.get("text")
    # Documented as an object {"body": ...}; a bare string is taken as the body too.
    if isinstance(text, dict):
        body = _text(text, "body")
    elif text is None or isinstance(text, str):
        body = text
    else:
        raise _content("text must be an object with a string body")
    return MessageReceived(
        message_id=_required_id(c, "message_id"),
        conversation_id=_id(c, "conversation_id"),
        message_type=_text(c, "type"),
        text=body,
        timestamp_ms=_timestamp_ms(c, "timestamp"),
        from_username=_text(c, "from"),
        from_user_id=_id(_object(c, "from_user"), "id"),
        to_user_id=_id(_object(c, "to_user"), "id"),
    )


def _high_intent_comment(c: dict[str, Any]) -> HighIntentComment:
    follower = c.get("is_follower")
    if follower is not None and not isinstance(follower, bool):
        raise _content("is_follower must be a boolean")
    return HighIntentComment(
        comment_id=_required_id(c, "comment_id"),
        video_id=_id(c, "video_id"),
        text=_text(c, "comment_text"),
        unique_identifier=_text(c, "unique_identifier"),
        user_id=_id(c, "user_id"),
        is_follower=follower,
        timestamp_ms=_timestamp_ms(c, "timestamp"),
    )


def _authorization_removed(c: dict[str, Any]) -> AuthorizationRemoved:
    reason = c.get("reason")
    if reason is None:
        return AuthorizationRemoved(reason=0)
    value = _integer(reason)
    if value is None:
        raise _content("reason must be an integer")
    return AuthorizationRemoved(reason=value)


_PARSERS: dict[str, Callable[[dict[str, Any]], Payload]] = {
    COMMENT_UPDATE: _comment_update,
    MESSAGE_RECEIVED: _message_received,
    HIGH_INTENT_COMMENT: _high_intent_comment,
    AUTHORIZATION_REMOVED: _authorization_removed,
}


def _integer(value: Any) -> int | None:
    """An int from a JSON integer or a string of ASCII digits; never a bool or a float."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and 0 < len(value) <= 19 and value.isascii() and value.isdigit():
        return int(value)
    return None


def _id(c: dict[str, Any], key: str) -> str | None:
    """A TikTok id as a string. Absent, null or empty is ``None``; a float, bool or other is refused."""
    value = c.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _content(f"{key} must be an integer or a string")
    if isinstance(value, int):
        if not -(2**63) <= value < UINT64_LIMIT:
            raise _content(f"{key} is out of range")
        return str(value)
    if len(value) > MAX_ID_LENGTH or not value.isprintable() or not value.strip():
        raise _content(f"{key} is not a valid id")
    return value


def _required_id(c: dict[str, Any], key: str) -> str:
    value = _id(c, key)
    if value is None:
        raise _content(f"{key} is required")
    return value


def _text(c: dict[str, Any], key: str) -> str | None:
    value = c.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _content(f"{key} must be a string")


def _object(c: dict[str, Any], key: str) -> dict[str, Any]:
    value = c.get(key)
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise _content(f"{key} must be an object")


def _timestamp_ms(c: dict[str, Any], key: str) -> int | None:
    """Epoch milliseconds as documented; a value that can only be seconds is scaled up."""
    value = c.get(key)
    if value is None:
        return None
    number = _integer(value)
    ms = None if number is None else number * 1000 if number < SECONDS_CUTOFF else number
    if ms is None or not 0 <= ms < MS_LIMIT:
        raise _content(f"{key} must be epoch milliseconds")
    return ms


def _name(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > limit or not value.isprintable():
        return None
    return value


def _envelope(message: str) -> BadRequest:
    return BadRequest(f"Not a TikTok webhook envelope: {message}", code="invalid_envelope")


def _content(message: str) -> BadRequest:
    return BadRequest(f"Invalid event content: {message}", code="invalid_content")
