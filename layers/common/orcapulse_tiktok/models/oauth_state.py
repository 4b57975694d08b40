"""Pending OAuth authorizations. The key is the SHA-256 of the state (the raw state only ever
travels in the browser's URL); DynamoDB TTL removes stale rows, and reads check expiry too."""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.models.base import bind


class OAuthState(Model):
    class Meta:
        table_name = "oauth-states-unbound"

    state_hash = UnicodeAttribute(hash_key=True)
    workspace_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    scopes = UnicodeAttribute()
    created_at = UnicodeAttribute()
    expires_at = NumberAttribute()  # epoch seconds; the table's TTL attribute
    account_type = UnicodeAttribute(null=True)  # the flow to complete; absent is personal


def oauth_states() -> type[OAuthState]:
    """The ``OAuthState`` model bound to ``OAUTH_STATES_TABLE``."""
    return bind(OAuthState, get_settings().require("oauth_states_table"))
