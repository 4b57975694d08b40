"""The token vault: one Secrets Manager secret per integration holds its TikTok tokens.

Tokens never go anywhere else: not DynamoDB, not logs, not responses. The secret's name is derived
from the integration id under ``TOKEN_SECRET_PREFIX`` (the functions' IAM policies are scoped to it).
"""

from __future__ import annotations

import json
from typing import NamedTuple

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.data import secrets


class StoredTokens(NamedTuple):
    open_id: str
    scopes: tuple[str, ...]
    access_expires_at: int
    refresh_expires_at: int
    issued_at: int
    access_token: str
    refresh_token: str

    def __repr__(self) -> str:  # the tokens never reach a log line or a traceback
        return (
            f"StoredTokens(open_id={self.open_id!r}, scopes={self.scopes!r}, "
            f"access_expires_at={self.access_expires_at}, refresh_expires_at={self.refresh_expires_at}, "
            f"issued_at={self.issued_at}, access_token='***', refresh_token='***')"
        )

    @property
    def lifetime(self) -> int | None:
        """Seconds the access token was issued for, when the record knows its issue time."""
        if not self.issued_at or self.access_expires_at <= self.issued_at:
            return None
        return self.access_expires_at - self.issued_at

    def refresh_due_at(self, margin_seconds: int) -> int:
        """When the scheduled refresher should renew these tokens: ``margin_seconds`` before the
        access token expires, but never earlier than half its lifetime (a short-lived token would
        otherwise be due again the moment it is issued)."""
        lifetime = self.lifetime
        margin = margin_seconds if lifetime is None else min(margin_seconds, lifetime // 2)
        return self.access_expires_at - margin

    def to_json(self) -> str:
        data = self._asdict()
        data["scopes"] = list(self.scopes)
        return json.dumps(data)

    @classmethod
    def from_json(cls, raw: str) -> StoredTokens:
        data = json.loads(raw)
        return cls(
            open_id=str(data["open_id"]),
            scopes=tuple(data.get("scopes") or ()),
            access_expires_at=int(data["access_expires_at"]),
            refresh_expires_at=int(data["refresh_expires_at"]),
            issued_at=int(data.get("issued_at") or 0),
            access_token=str(data["access_token"]),
            refresh_token=str(data["refresh_token"]),
        )


def secret_name(integration_id: str) -> str:
    return f"{get_settings().token_secret_prefix}{integration_id}"


def load(integration_id: str) -> StoredTokens | None:
    """The integration's tokens, or ``None`` when it has no secret."""
    raw = secrets.read_secret(secret_name(integration_id))
    return None if raw is None else StoredTokens.from_json(raw)


def store(integration_id: str, tokens: StoredTokens, *, exists: bool | None = None) -> None:
    """Write the tokens as the secret's current version, creating the secret on first use.

    ``exists`` skips the create attempt when the caller already knows the secret is there."""
    secrets.write_secret(
        secret_name(integration_id),
        tokens.to_json(),
        exists=exists,
        description="TikTok user tokens of one OrcaPulse integration",
        tag=("orcapulse:integration_id", integration_id),
    )


def delete(integration_id: str) -> None:
    """Delete the secret now (no recovery window: a dead token has nothing to recover). Idempotent."""
    secrets.delete_secret(secret_name(integration_id))
