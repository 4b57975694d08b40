"""Runs before anything imports boto3: fake AWS credentials and region, Powertools in test mode,
and the functions' environment taken from ``template.yaml`` (the template is the source of truth)."""

import os

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_DISABLED": "0",
    }
)
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_name, None)

from tests.support.deployment import TEST_ENVIRONMENT  # noqa: E402

os.environ.update(TEST_ENVIRONMENT)
