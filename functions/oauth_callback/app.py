"""GET /integrations/tiktok/oauth/callback — TikTok sends the browser here after consent.

Every outcome is a 302 to the front end: connected with the integration id, or an error reason.
"""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.errors import DomainError
from orcapulse_tiktok.http import make_resolver
from orcapulse_tiktok.oauth import CallbackFailed, callback_redirect, complete_authorization
from orcapulse_tiktok.observability import logger, metrics, tracer

# Every callback calls TikTok: load the client (and requests) while the container initialises, not
# on its first request (orcapulse_tiktok.oauth imports it lazily, for the start function's sake).
from orcapulse_tiktok.tiktok import client as _tiktok_client  # noqa: F401

app = make_resolver()
SECURITY_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache", "Referrer-Policy": "no-referrer"}


@app.get("/integrations/tiktok/oauth/callback")
def callback() -> Response[str]:
    frontend_url = get_settings().require("frontend_url")
    params = dict(app.current_event.query_string_parameters or {})
    try:
        location = callback_redirect(frontend_url, integration_id=complete_authorization(params))
    except CallbackFailed as failure:
        location = callback_redirect(frontend_url, reason=failure.reason)
    except DomainError as exc:
        logger.error("callback failed", extra={"error_code": exc.code})
        location = callback_redirect(frontend_url, reason="internal_error")
    if "reason=" in location:
        metrics.add_metric(name="OAuthCallbackFailed", unit="Count", value=1)
    return Response(status_code=302, body="", headers={"Location": location, **SECURITY_HEADERS})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
