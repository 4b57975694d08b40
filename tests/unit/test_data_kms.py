"""The optional customer-managed key (stack parameter DataKmsKeyArn → DATA_KMS_KEY_ID): token
secrets, created at run time, are encrypted with it when it is set, and with Secrets Manager's
AWS-managed key when it is not."""

from __future__ import annotations

import pytest
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.data import secrets


@pytest.mark.parametrize("with_key", [True, False])
def test_token_secrets_use_the_configured_key(aws, monkeypatch, with_key):
    key_arn = (
        aws.client("kms").create_key(Description="orcapulse data")["KeyMetadata"]["Arn"] if with_key else ""
    )
    monkeypatch.setenv("DATA_KMS_KEY_ID", key_arn)
    get_settings.cache_clear()
    secrets.write_secret(
        "orcapulse/tiktok/test/tokens/int_1", "{}", exists=None, description="t", tag=("k", "v")
    )
    described = aws.client("secretsmanager").describe_secret(SecretId="orcapulse/tiktok/test/tokens/int_1")
    assert described.get("KmsKeyId") == (key_arn or None)
