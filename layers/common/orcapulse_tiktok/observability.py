"""The Powertools singletons every function shares: structured JSON logs with a correlation id,
CloudWatch EMF metrics and X-Ray traces.

Tracer responses and errors are never captured as trace metadata (the template turns both off):
a token in a return value must not reach a trace.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "orcapulse-tiktok"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="OrcaPulse/TikTok", service=SERVICE)
# Only botocore here: patching requests would import it in every function, and the webhook never
# calls TikTok. The TikTok client patches requests when a container first creates it.
tracer = Tracer(service=SERVICE, patch_modules=("botocore",))
