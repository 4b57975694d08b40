"""The token vault: one Secrets Manager secret per integration holds its TikTok tokens.

Tokens never go anywhere else: not DynamoDB, not logs, not responses. The secret's name is derived
from the integration id under ``TOKEN_SECRET_PREFIX`` (the functions' IAM policies are scoped to it).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from orcapulse_tiktok import aws
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.errors import TransientError
from orcapulse_tiktok.observability import logger


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


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _transient(action: str, exc: Exception) -> TransientError:
    code = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
    logger.warning("token vault call failed", extra={"action": action, "aws_error": code})
    return TransientError("The token store is unavailable, try again")


def load(integration_id: str) -> StoredTokens | None:
    """The integration's tokens, or ``None`` when it has no secret."""
    sm: Any = aws.client("secretsmanager")
    try:
        raw = sm.get_secret_value(SecretId=secret_name(integration_id))["SecretString"]
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return None
        raise _transient("load", exc) from None
    except BotoCoreError as exc:
        raise _transient("load", exc) from None
    return StoredTokens.from_json(raw)


def store(integration_id: str, tokens: StoredTokens, *, exists: bool | None = None) -> None:
    """Write the tokens as the secret's current version, creating the secret on first use.

    ``exists`` skips the create attempt when the caller already knows the secret is there."""
    sm: Any = aws.client("secretsmanager")
    name = secret_name(integration_id)
    try:
        if exists is not True:
            try:
                sm.create_secret(
                    Name=name,
                    SecretString=tokens.to_json(),
                    Description="TikTok user tokens of one OrcaPulse integration",
                    Tags=[{"Key": "orcapulse:integration_id", "Value": integration_id}],
                )
                return
            except ClientError as exc:
                if _code(exc) != "ResourceExistsException":
                    raise
        sm.put_secret_value(SecretId=name, SecretString=tokens.to_json())
    except (ClientError, BotoCoreError) as exc:
        raise _transient("store", exc) from None


def delete(integration_id: str) -> None:
    """Delete the secret now (no recovery window: a dead token has nothing to recover). Idempotent."""
    sm: Any = aws.client("secretsmanager")
    try:
        sm.delete_secret(SecretId=secret_name(integration_id), ForceDeleteWithoutRecovery=True)
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return
        raise _transient("delete", exc) from None
    except BotoCoreError as exc:
        raise _transient("delete", exc) from None
