"""Secrets Manager: the per-integration token secrets and the app credentials.

Values go in and out as strings; what they hold (and that they never reach a log) is the vault's
and the credentials module's business. Every failure is classified by ``data.faults``."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.data import faults
from orcapulse_tiktok.data.clients import client

_NOT_FOUND = "ResourceNotFoundException"
_EXISTS = "ResourceExistsException"


def read_secret(name: str) -> str | None:
    """The secret's current value, or ``None`` when there is no such secret."""
    sm: Any = client("secretsmanager")
    try:
        return str(sm.get_secret_value(SecretId=name)["SecretString"])
    except (ClientError, BotoCoreError) as exc:
        if faults.error_code(exc) == _NOT_FOUND:
            return None
        raise faults.fault("read secret", exc) from None


def write_secret(
    name: str, value: str, *, exists: bool | None, description: str, tag: tuple[str, str]
) -> None:
    """Make ``value`` the secret's current version, creating the secret when needed.

    ``exists=True`` skips the create attempt when the caller knows the secret is there. Safe to
    repeat: a create whose answer was lost is found existing and overwritten."""
    sm: Any = client("secretsmanager")
    try:
        if exists is not True:
            try:
                # With DATA_KMS_KEY_ID set, the secret is encrypted with that customer-managed key;
                # without it, Secrets Manager's AWS-managed key (DESIGN section 11).
                key_id = get_settings().data_kms_key_id
                sm.create_secret(
                    Name=name,
                    SecretString=value,
                    Description=description,
                    Tags=[{"Key": tag[0], "Value": tag[1]}],
                    **({"KmsKeyId": key_id} if key_id else {}),
                )
                return
            except ClientError as exc:
                if faults.error_code(exc) != _EXISTS:
                    raise
        sm.put_secret_value(SecretId=name, SecretString=value)
    except (ClientError, BotoCoreError) as exc:
        raise faults.fault("write secret", exc) from None


def delete_secret(name: str) -> None:
    """Delete the secret now, without a recovery window. Idempotent (an absent secret is done)."""
    sm: Any = client("secretsmanager")
    try:
        sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    except (ClientError, BotoCoreError) as exc:
        if faults.error_code(exc) == _NOT_FOUND:
            return
        raise faults.fault("delete secret", exc) from None


def cached_secret(secret_id: str, *, max_age: int, json: bool = False) -> Any:
    """A secret read through Powertools' parameter cache (the app credentials, the cursor key);
    parsed when ``json``. A value that is not JSON comes back as ``None``: the caller names the
    variable that points at the bad secret."""
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.exceptions import (
        GetParameterError,
        TransformParameterError,
    )

    try:
        return parameters.get_secret(secret_id, transform="json" if json else None, max_age=max_age)
    except TransformParameterError:
        return None
    except GetParameterError as exc:
        # Powertools wraps the SDK's exception without chaining it as the cause.
        cause = exc.__cause__ or exc.__context__
        raise faults.fault("read app secret", cause if cause is not None else exc) from None
