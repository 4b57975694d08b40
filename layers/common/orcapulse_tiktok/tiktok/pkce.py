"""OAuth state and PKCE values.

The state is 256 bits from the OS CSPRNG. The PKCE verifier is derived from the state with an HMAC
keyed by the app's client secret, so nothing secret has to be stored to finish the flow: the state
table keeps only the state's hash. TikTok's S256 challenge is the *hex* SHA-256 of the verifier.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

STATE_BYTES = 32  # 256 bits


def new_state() -> str:
    return secrets.token_urlsafe(STATE_BYTES)


def hash_state(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def code_verifier(state: str, client_secret: str) -> str:
    """43 characters of ``[A-Za-z0-9-_]``, inside TikTok's 43 to 128 ``[A-Za-z0-9-._~]`` range."""
    mac = hmac.new(client_secret.encode(), b"pkce-verifier\x1f" + state.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def code_challenge(verifier: str) -> str:
    """TikTok's S256 challenge: hex SHA-256 of the verifier (not base64url as in RFC 7636)."""
    return hashlib.sha256(verifier.encode()).hexdigest()
