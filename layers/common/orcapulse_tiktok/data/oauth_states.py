"""The OAuth states table: a pending authorization is put once and taken once."""

from __future__ import annotations

from pynamodb.exceptions import PynamoDBException

from orcapulse_tiktok.data import faults
from orcapulse_tiktok.models.oauth_state import OAuthState, oauth_states


def put_state(
    state_hash: str,
    *,
    workspace_id: str,
    user_id: str,
    scopes: str,
    created_at: str,
    expires_at: int,
    account_type: str = "personal",
) -> None:
    """Store a new pending authorization under the hash of its state (never the state itself)."""
    record = oauth_states()(
        state_hash,
        workspace_id=workspace_id,
        user_id=user_id,
        scopes=scopes,
        created_at=created_at,
        expires_at=expires_at,
        account_type=account_type,
    )
    try:
        record.save(condition=OAuthState.state_hash.does_not_exist())
    except PynamoDBException as exc:
        raise faults.fault("store oauth state", exc) from None


def take_state(state_hash: str) -> OAuthState | None:
    """Delete the pending authorization and return it, atomically (one conditional DeleteItem with
    ``ALL_OLD``): of two callbacks with the same state, exactly one gets it. ``None`` when there is
    none (never issued, already used, or removed by TTL). Expiry is the caller's to check."""
    model = oauth_states()
    try:
        result = model._get_connection().delete_item(
            state_hash, condition=OAuthState.state_hash.exists(), return_values="ALL_OLD"
        )
    except PynamoDBException as exc:
        if faults.condition_failed(exc):
            return None
        raise faults.fault("take oauth state", exc) from None
    return model.from_raw_data(result["Attributes"])
