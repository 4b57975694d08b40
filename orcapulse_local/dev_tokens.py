"""Dev JWTs for the local gateway: HS256 with the published local key, the local issuer and
audience, the user in ``sub`` and the workspace in the template's workspace claim."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from orcapulse_local import config


def mint(
    *,
    workspace: str | None = config.DEFAULT_WORKSPACE,
    user: str = config.DEFAULT_USER,
    ttl_seconds: int = config.DEV_TOKEN_TTL_SECONDS,
    workspace_claim: str = "custom:workspace_id",
    secret: str = config.DEV_JWT_SECRET,
    issuer: str = config.DEV_JWT_ISSUER,
    audience: str = config.DEV_JWT_AUDIENCE,
    **extra: Any,
) -> str:
    """A signed dev token; ``workspace=None`` leaves the workspace claim out (to see a 403)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "token_use": "id",  # Cognito's claim naming an ID token  # nosec B105
        **extra,
    }
    if workspace is not None:
        claims[workspace_claim] = workspace
    return jwt.encode(claims, secret, algorithm="HS256")
