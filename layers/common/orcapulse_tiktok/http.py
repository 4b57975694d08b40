"""The HTTP edge shared by every API function: the resolver factory, the caller taken from the
JWT authorizer's claims, and the one mapping from domain errors to the JSON error shape
``{"error": {"code", "message"}}``."""

from __future__ import annotations

import base64
import json
from typing import Any, NamedTuple

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.errors import BadRequest, DomainError, Forbidden, Unauthorized, UnsupportedMediaType
from orcapulse_tiktok.proxy import JSON, NO_STORE, error_body, error_result, note_failure

MAX_CLAIM_LENGTH = 256


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=error_body(code, message),
        headers={**NO_STORE, **(headers or {})},
    )


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers={**NO_STORE, **(headers or {})},
    )


def merged_response(exc: DomainError) -> Response[str]:
    """The one error that says more than code and message: where a merged person's lead went."""
    error = {"code": exc.code, "message": exc.message, "merged_into": getattr(exc, "merged_into", None)}
    return json_response(exc.status, {"error": error})


def make_resolver(
    *, enable_validation: bool = False, require_caller: bool = False, precondition_header: str | None = None
) -> APIGatewayHttpResolver:
    """An HTTP API (payload v2) resolver with the project's error mapping registered.

    ``require_caller`` (routes behind the JWT authorizer): parameter validation runs before the
    route, so a request with bad parameters and no usable claims still answers 401/403 first.
    ``precondition_header`` (``if-match``): a required header whose absence is 428
    ``precondition_required`` (RFC 6585), not a 400, whatever else the request got wrong.
    """
    app = APIGatewayHttpResolver(enable_validation=enable_validation)

    @app.exception_handler(DomainError)
    def _domain(exc: DomainError) -> Response[str]:
        note_failure(exc)
        if exc.details:
            return json_response(
                exc.status, {"error": {"code": exc.code, "message": exc.message, **exc.details}}
            )
        return error_response(exc.status, exc.code, exc.message)

    @app.not_found
    def _not_found(_exc: Exception) -> Response[str]:
        return error_response(404, "route_not_found", "No such route")

    if enable_validation:
        from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

        @app.exception_handler(RequestValidationError)
        def _invalid(exc: RequestValidationError) -> Response[str]:
            if require_caller:
                try:
                    caller_from_event(app.current_event)
                except DomainError as denied:
                    return error_response(denied.status, denied.code, denied.message)
            missing = {tuple(e["loc"]) for e in exc.errors() if e["type"] == "missing"}
            if precondition_header and ("header", precondition_header) in missing:
                message = f"Send {precondition_header} with the ETag of the version you change"
                return error_response(428, "precondition_required", message)
            fields = sorted(
                {".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]) for e in exc.errors()}
            )
            # A request body is not a parameter: its own code, so clients can tell them apart.
            body = any(e["loc"] and e["loc"][0] == "body" for e in exc.errors())
            code = "invalid_body" if body else "invalid_parameter"
            shown = [field[:40] for field in fields[:5] if field.isprintable()]
            return error_response(400, code, f"Invalid value for: {', '.join(shown) or '?'}")

    return app


class Caller(NamedTuple):
    user_id: str
    workspace_id: str


def _claim(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_CLAIM_LENGTH or not value.isprintable():
        return None
    return value


def caller_from_event(event: APIGatewayProxyEventV2) -> Caller:
    """The user and workspace from the HTTP API JWT authorizer's claims (Powertools' ``jwt_claim``).

    No authorizer context or no ``sub`` is 401; no usable workspace claim is 403.
    """
    try:
        claims: Any = event.request_context.authorizer.jwt_claim
    except (KeyError, AttributeError, TypeError):
        # No requestContext, or an authorizer/jwt that is not an object: no caller at all.
        claims = None
    if not isinstance(claims, dict):
        raise Unauthorized("Authentication required")
    user_id = _claim(claims, "sub")
    if user_id is None:
        raise Unauthorized("Authentication required")
    workspace_id = _claim(claims, get_settings().workspace_claim)
    if workspace_id is None:
        raise Forbidden("The token carries no workspace", code="workspace_required")
    return Caller(user_id=user_id, workspace_id=workspace_id)


def current_caller(app: APIGatewayHttpResolver) -> Caller:
    """The caller of the request ``app`` is resolving."""
    return caller_from_event(app.current_event)


def refuse_unreadable_body(event: dict[str, Any]) -> dict[str, Any] | None:
    """The answer to a request whose body is declared as anything but JSON (400 `unsupported_media_type`) or is not UTF-8
    text (400), after 401/403; ``None`` for any other. Checked before the resolver, whose body
    parser fails on such bodies (a multipart type without its boundary, bytes that are not UTF-8)
    instead of refusing them."""
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = str(headers.get("content-type") or "").strip().lower()
    refusal: DomainError | None = None
    if content_type and not content_type.startswith(JSON):
        refusal = UnsupportedMediaType("Send the body as application/json")
    elif not _utf8(event.get("body"), bool(event.get("isBase64Encoded"))):
        refusal = BadRequest("The body is not UTF-8 JSON", code="invalid_body")
    if refusal is None:
        return None
    try:
        caller_from_event(APIGatewayProxyEventV2(event))
    except DomainError as denied:
        refusal = denied
    return error_result(refusal)


def _utf8(body: Any, encoded: bool) -> bool:
    if body is None:
        return True
    try:
        raw = base64.b64decode(str(body), validate=True) if encoded else str(body).encode("utf-8")
        raw.decode("utf-8")
    except (ValueError, UnicodeError):  # binascii.Error is a ValueError
        return False
    return True
