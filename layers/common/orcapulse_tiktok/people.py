"""Who a lead is: the person key of an interaction, and the ids derived from it (DESIGN §6).

A lead is one person as seen by one integration. Its id is a keyed hash (HMAC) of the integration
and the person key, so every event of the person finds the same lead with no read, the id says
nothing about the person, and an erased person's tombstone can keep it without keeping them.

Person keys, as TikTok names people in each event:
- comments and high-intent comments: ``unique_identifier`` (the commenter's handle);
- DMs: the sender's handle ``from`` when TikTok sends it, else ``from_user.id``. The handle comes
  first so that a DM and a comment of one person — a DM's ``from`` equal to a commenter's
  ``unique_identifier`` — land on one lead without a lookup (docs/decisions.md says why this
  order, and what a renamed sender does);
- lead forms (issue "Lead forms"): the normalised email, else the phone, else the entry id.
Nothing is guessed beyond that: the merge route joins what the product could not know.
"""

from __future__ import annotations

import hashlib
import hmac

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.keys import derived_key

# The person-key secret never rotates: every lead id is derived from it.
CACHE_SECONDS = 86_400
_CONTEXT = b"orcapulse social-leads person v1"


def handle_key(handle: str) -> str:
    """The person key of a TikTok handle (``unique_identifier``, a DM's ``from``)."""
    return "handle:" + handle.strip().lstrip("@").lower()


def user_id_key(user_id: str) -> str:
    """The person key of a TikTok user id (a DM's ``from_user.id``) when no handle is known."""
    return "user:" + user_id.strip()


def object_key(kind: str, object_id: str) -> str:
    """The key of a person known only through one object (a comment without a commenter)."""
    return f"object:{kind}:{object_id}"


def _key() -> bytes:
    settings = get_settings()
    return derived_key(
        settings.person_key_secret_id,
        _CONTEXT,
        variable="PERSON_KEY_SECRET_ID",
        fallback=f"unkeyed-person\x1f{settings.require('leads_table')}",
        max_age=CACHE_SECONDS,
    )


def lead_id_for(integration_id: str, person_key: str) -> str:
    """The lead of ``person_key`` as seen by ``integration_id``: ``ld_`` + 26 hex of a keyed hash."""
    digest = hmac.new(_key(), f"{integration_id}\x1f{person_key}".encode(), hashlib.sha256).hexdigest()
    return f"ld_{digest[:26]}"


def interaction_id_for(integration_id: str, object_key: str) -> str:
    """The interaction one TikTok object (``comment:<id>``, ``dm:<message id>``) made for one
    integration: a redelivery, and TikTok's high-intent event about a comment, map to it."""
    digest = hashlib.sha256(f"{integration_id}\x1f{object_key}".encode()).hexdigest()
    return f"ix_{digest[:26]}"


def email_key(email: str) -> str | None:
    """The person key of an email address: trimmed and lowercased; ``None`` if it is not one."""
    value = email.strip().lower()
    if "@" not in value or len(value) > 320 or any(c.isspace() for c in value):
        return None
    return "email:" + value


def phone_key(phone: str) -> str | None:
    """The person key of a phone number: its digits, with ``+`` when it had one; ``None`` for fewer
    than 5 digits (not a number a person can be found by)."""
    digits = "".join(c for c in phone if c.isdigit())
    if len(digits) < 5 or len(digits) > 20:
        return None
    return "phone:" + ("+" if phone.strip().startswith("+") else "") + digits
