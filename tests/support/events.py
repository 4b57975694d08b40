"""API Gateway HTTP API (payload format 2.0) events, shaped as API Gateway sends them and as
``sam local generate-event apigateway http-api-proxy`` makes them."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

WORKSPACE_CLAIM = "custom:workspace_id"


def claims(user: str = "user-1", workspace: str | None = "ws-1", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sub": user,
        "iss": "https://issuer.orcapulse.test",
        "aud": "orcapulse-web",
        "exp": str(int(time.time()) + 3600),
        "iat": str(int(time.time())),
        **extra,
    }
    if workspace is not None:
        out[WORKSPACE_CLAIM] = workspace
    return out


def http_event(
    method: str,
    path: str,
    *,
    route: str | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: str | bytes | None = None,
    jwt_claims: dict[str, Any] | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """One HTTP API request. ``jwt_claims=None`` means the route has no authorizer context."""
    hdrs = {
        "accept": "application/json",
        "content-length": str(len(body or b"")),
        "host": "api.orcapulse.test",
        "user-agent": "pytest",
        "x-amzn-trace-id": "Root=1-5e4f7b2c-0123456789abcdef01234567",
        "x-forwarded-for": "203.0.113.10",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        **{k.lower(): v for k, v in (headers or {}).items()},
    }
    raw_body: str | None
    if isinstance(body, bytes):
        raw_body = (
            base64.b64encode(body).decode() if base64_body else body.decode("utf-8", errors="surrogateescape")
        )
    else:
        raw_body = base64.b64encode(body.encode()).decode() if (base64_body and body is not None) else body
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {route or path}",
        "rawPath": path,
        # surrogatepass: property tests send lone surrogates in parameter values on purpose.
        "rawQueryString": urlencode(query or {}, errors="surrogatepass"),
        "cookies": [],
        "headers": hdrs,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api-id",
            "domainName": "api.orcapulse.test",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "pytest",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": f"{method} {route or path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": bool(base64_body and body is not None),
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if raw_body is not None:
        event["body"] = raw_body
    if jwt_claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": jwt_claims, "scopes": None}}
    return event


def json_body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


# -- Lambda context and scheduled functions ---------------------------------------------------------------------------
@dataclass
class LambdaContext:
    """The context Lambda passes a handler: what Powertools reads, and the time budget left."""

    function_name: str = "test-function"
    remaining_ms: int = 15_000
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def scheduled_event() -> dict[str, Any]:
    """What EventBridge Scheduler delivers with the template's ``Input``."""
    return {"execution_id": str(uuid.uuid4()), "scheduled_time": "2026-11-25T08:00:00Z"}
