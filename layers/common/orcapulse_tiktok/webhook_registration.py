"""Registering the webhook URL with the TikTok API for Business app (DESIGN §8).

Webhook configuration is per app, not per account: one ``business/webhook/update/`` per event type
points the app's deliveries at this deployment's ``POST /webhooks/tiktok``, and
``business/webhook/list/`` reads it back. Safe to run again: an event type already pointing at the
URL is left as it is. Run by the operator command ``make register-webhooks URL=...``."""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

from orcapulse_tiktok.errors import BadRequest
from orcapulse_tiktok.tiktok.business_client import business_client
from orcapulse_tiktok.tiktok.client import TikTokResponseError
from orcapulse_tiktok.tiktok.credentials import business_app_credentials

EVENT_TYPES = ("DIRECT_MESSAGE", "COMMENT")
# The local stack serves plain http on the loopback interface (its TikTok emulator registers it).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class Registration(NamedTuple):
    event_type: str
    callback_url: str
    changed: bool  # whether this run had to update TikTok's configuration


def register_webhooks(callback_url: str) -> list[Registration]:
    """Point every event type at ``callback_url`` and confirm it by reading it back. Raises
    ``BadRequest`` for a URL that is not https (plain http only on a loopback host: the local
    stack) and a ``TikTokError`` when TikTok refuses or the read-back disagrees."""
    parts = urlsplit(callback_url)
    local = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    if not (parts.scheme == "https" or local) or not parts.netloc:
        raise BadRequest("The webhook URL must be an absolute https URL", code="invalid_parameter")
    creds = business_app_credentials()
    client = business_client()
    done: list[Registration] = []
    for event_type in EVENT_TYPES:
        current = client.webhook_list(creds, event_type=event_type).get("callback_url")
        changed = current != callback_url
        if changed:
            client.webhook_update(creds, event_type=event_type, callback_url=callback_url)
            current = client.webhook_list(creds, event_type=event_type).get("callback_url")
            if current != callback_url:
                raise TikTokResponseError("webhook_not_registered", f"{event_type} reads back another URL")
        done.append(Registration(event_type, callback_url, changed))
    return done
