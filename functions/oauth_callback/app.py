"""GET /integrations/tiktok/oauth/callback — TikTok sends the browser here after consent.

Every outcome is a 302 to the front end: connected with the integration id, or an error reason.
"""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from orcapulse_tiktok.http import make_resolver
from orcapulse_tiktok.oauth_ads import complete_ads_authorization
from orcapulse_tiktok.oauth_callback import complete_authorization
from orcapulse_tiktok.observability import logger, metrics, tracer

app = make_resolver()
SECURITY_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache", "Referrer-Policy": "no-referrer"}


@app.get("/integrations/tiktok/oauth/callback")
def callback() -> Response[str]:
    outcome = complete_authorization(dict(app.current_event.query_string_parameters or {}))
    return Response(status_code=302, body="", headers={"Location": outcome.location, **SECURITY_HEADERS})


@app.get("/integrations/tiktok-ads/oauth/callback")
def ads_callback() -> Response[str]:
    outcome = complete_ads_authorization(dict(app.current_event.query_string_parameters or {}))
    return Response(status_code=302, body="", headers={"Location": outcome.location, **SECURITY_HEADERS})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
