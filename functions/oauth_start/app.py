"""GET /integrations/tiktok/oauth/start — begin connecting a TikTok account to the caller's workspace."""

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from orcapulse_tiktok.http import current_caller, json_response, make_resolver
from orcapulse_tiktok.oauth_start import Authorization, start_ads_authorization, start_authorization
from orcapulse_tiktok.observability import logger, metrics, tracer

app = make_resolver(enable_validation=True, require_caller=True)


@app.get("/integrations/tiktok/oauth/start")
def start(
    redirect: Annotated[bool, Query()] = False,
    account_type: Annotated[Literal["personal", "business"], Query()] = "personal",
) -> Response[str]:
    caller = current_caller(app)
    auth = start_authorization(
        user_id=caller.user_id, workspace_id=caller.workspace_id, account_type=account_type
    )
    return _answer(auth, redirect)


@app.get("/integrations/tiktok-ads/oauth/start")
def start_ads(redirect: Annotated[bool, Query()] = False) -> Response[str]:
    caller = current_caller(app)
    return _answer(
        start_ads_authorization(user_id=caller.user_id, workspace_id=caller.workspace_id), redirect
    )


def _answer(auth: Authorization, redirect: bool) -> Response[str]:
    if redirect:
        return Response(
            status_code=302, body="", headers={"Location": auth.authorize_url, "Cache-Control": "no-store"}
        )
    return json_response(200, {"authorize_url": auth.authorize_url, "expires_at": auth.expires_at})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
