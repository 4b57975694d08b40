"""The token service: every caller that needs a TikTok access token goes through here."""

from __future__ import annotations

from orcapulse_tiktok import vault
from orcapulse_tiktok.models.integration import Integration


def access_token_for_revoke(integration: Integration) -> str | None:
    """The token to revoke on disconnect, or ``None`` when the integration has none left."""
    stored = vault.load(integration.integration_id)
    return stored.access_token if stored else None
