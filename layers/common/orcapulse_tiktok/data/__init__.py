"""The data-access package: the only part of the domain that talks to AWS.

Every DynamoDB, Secrets Manager and EventBridge call of the product is a named operation here
(``put_new_lead``, ``claim_announcement``, ``take_refresh_lease``, ...). The domain modules above it
never build a request, never import boto3, botocore or PynamoDB, and never read an AWS error code:
an AWS failure reaches them already classified by ``data.faults`` — ``TransientError`` (503, try
again) or ``DependencyMisconfigured`` (500, logged with the AWS error code and alarmed).
"""
