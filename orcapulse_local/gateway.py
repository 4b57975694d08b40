"""A local stand-in for API Gateway HTTP APIs, driven by ``template.yaml``, served by Werkzeug.

Every ``HttpApi`` event of every function becomes a Werkzeug rule (``{name}`` a path variable,
``{name+}`` a greedy one): Werkzeug's router already ranks literal segments over variables over
greedy variables, as API Gateway does. A request becomes a payload-format-2.0 event shaped as API
Gateway sends it, the function is invoked through :class:`LambdaRuntime`, and its answer is turned
back into HTTP by the same rules API Gateway applies. The API's JWT authorizer is emulated: a
bearer token must carry a valid HS256 signature (the local key stands in for the issuer's JWKS),
the configured issuer, one of the audiences (or ``client_id``) and an unexpired ``exp``; anything
else is ``401 {"message": "Unauthorized"}`` before the function runs. CORS preflights are answered
from the API's ``CorsConfiguration``.

Paths no template route claims may be served by a ``fallback`` (the local stack puts its console
and ``/local/...`` helpers there), so the product's routes always win."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request as _Request
from werkzeug.wrappers import Response

from orcapulse_local.authorizer import AuthorizerError, Cors, JwtAuthorizer, claims_as_strings, scopes
from orcapulse_local.lambda_runtime import LambdaRuntime
from orcapulse_local.serving import AccessLog, LocalServer
from orcapulse_local.template import Context, Route, http_routes, resolve, resources_of_type

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["Gateway", "Request", "Response", "RouteTable", "build_event", "claims_as_strings"]
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "application/graphql")
GATEWAY_MESSAGES = {
    401: "Unauthorized",
    404: "Not Found",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
}


class Request(_Request):
    """A request to the gateway; bodies over API Gateway's limit are refused (413)."""

    max_content_length = MAX_BODY_BYTES


def json_response(status: int, document: Any, headers: Iterable[tuple[str, str]] = ()) -> Response:
    """``document`` as a JSON answer."""
    return Response(json.dumps(document), status, [("Content-Type", "application/json"), *headers])


def gateway_error(status: int, headers: Iterable[tuple[str, str]] = ()) -> Response:
    """An answer API Gateway itself gives: ``{"message": "..."}``."""
    return json_response(status, {"message": GATEWAY_MESSAGES[status]}, headers)


Fallback = Callable[[Request], Response | None]


class RouteTable:
    """The template's routes (``routes``), ordered and matched by Werkzeug's router."""

    def __init__(self, routes: list[Route]):
        self.routes = [r for r in routes if r.path != "$default"]
        self.default = next((r for r in routes if r.path == "$default"), None)
        rules = []
        for route in self.routes:
            path = re.sub(r"\{(\w+)\}", r"<\1>", re.sub(r"\{(\w+)\+\}", r"<path:\1>", route.path))
            rule = Rule(path, endpoint=route, methods=None if route.method == "ANY" else [route.method])
            if rule.methods is not None and route.method != "HEAD":
                rule.methods.discard("HEAD")  # Werkzeug adds HEAD to GET routes; API Gateway does not
            rules.append(rule)
        self._router = Map(rules, merge_slashes=False).bind("localhost")

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route serving ``method path`` and its path parameters (percent-decoded)."""
        try:
            route, params = self._router.match(path, method=method)
        except HTTPException:  # no rule, or no rule for this method
            return (self.default, {}) if self.default is not None else None
        return route, {k: unquote(str(v)) for k, v in params.items()}


def _is_text(content_type: str | None) -> bool:
    ctype = (content_type or "").split(";")[0].strip().lower()
    return ctype.startswith("text/") or ctype in TEXT_TYPES or ctype.endswith(("+json", "+xml"))


def build_event(
    request: Request,
    route_key: str,
    path_parameters: dict[str, str],
    claims: dict[str, Any] | None,
    *,
    account_id: str,
    api_id: str = "local",
    stage: str = "$default",
) -> dict[str, Any]:
    """The payload-format-2.0 event API Gateway sends for ``request``."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers.items():
        if name.lower() == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
        else:
            headers[name.lower()] = value  # the WSGI server already joined repeated headers with ","
    raw_path = str(request.environ.get("RAW_URI") or quote(request.path)).split("?", 1)[0]
    raw_query = request.query_string.decode("latin-1")
    source_ip = request.remote_addr or "127.0.0.1"
    host = headers.get("host", "localhost")
    headers.setdefault("x-forwarded-for", source_ip)
    headers.setdefault("x-forwarded-proto", "http")
    headers.setdefault("x-forwarded-port", host.rsplit(":", 1)[1] if ":" in host else "80")
    headers.setdefault("x-amzn-trace-id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}")
    domain = host.split(":")[0]
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": request.method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": f"{uuid.uuid4().hex[:16]}=",
            "routeKey": route_key,
            "stage": stage,
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in request.args.lists()}
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    body = request.get_data(cache=True)
    if body:
        try:
            event["body"] = body.decode("utf-8") if _is_text(headers.get("content-type")) else None
        except UnicodeDecodeError:
            event["body"] = None
        if event["body"] is None:  # binary, or text that is not UTF-8: base64, as API Gateway does
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    if claims is not None:
        event["requestContext"]["authorizer"] = {
            "jwt": {"claims": claims_as_strings(claims), "scopes": scopes(claims)}
        }
    return event


def response_from_result(result: Any) -> Response:
    """Turn a function's result into HTTP as API Gateway does for payload format 2.0."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # No statusCode: API Gateway answers 200 with the result as a JSON body.
        return Response(
            result if isinstance(result, str) else json.dumps(result), 200, mimetype="application/json"
        )
    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError("statusCode must be an HTTP status")
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(v)) for v in values)
    headers.extend(("Set-Cookie", str(c)) for c in result.get("cookies") or [])
    raw = result.get("body")
    if raw is None:
        body = b""
    elif result.get("isBase64Encoded"):
        body = base64.b64decode(str(raw))
    else:
        body = (raw if isinstance(raw, str) else json.dumps(raw)).encode()
    if body and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    response = Response(body, status, headers)
    if not body:
        del response.headers["Content-Type"]  # Werkzeug's text/plain default, for an empty body
    return response


def _authorizer(api: dict[str, Any], ctx: Context, secret: str) -> JwtAuthorizer | None:
    auth = api.get("Properties", {}).get("Auth", {})
    default = auth.get("DefaultAuthorizer")
    spec = auth.get("Authorizers", {}).get(default) if default else None
    if not spec or "JwtConfiguration" not in spec:
        return None
    jwt_config = resolve(spec["JwtConfiguration"], ctx)
    audience = jwt_config.get("audience") or []
    if isinstance(audience, str):
        audience = [a.strip() for a in audience.split(",") if a.strip()]
    source = str(spec.get("IdentitySource", "$request.header.Authorization"))
    return JwtAuthorizer(
        issuer=str(jwt_config["issuer"]),
        audiences=tuple(str(a) for a in audience),
        secret=secret,
        identity_header=source.rsplit(".", 1)[-1].lower(),
    )


class Gateway:
    """The HTTP API of ``template`` served on ``host:port`` (port 0 takes a free one)."""

    def __init__(
        self,
        template: dict[str, Any],
        *,
        jwt_secret: str,
        host: str = "127.0.0.1",
        port: int = 0,
        fallback: Fallback | None = None,
        access_log: AccessLog | None = None,
    ):
        apis = resources_of_type(template, "AWS::Serverless::HttpApi")
        # One HTTP API per template is what this project has; a second one would need its own port.
        if len(apis) > 1:
            raise ValueError("the local gateway serves one AWS::Serverless::HttpApi")
        self._api = next(iter(apis.values()), {})
        self._jwt_secret = jwt_secret
        self.routes = RouteTable(http_routes(template))
        self.fallback = fallback
        self.ctx: Context | None = None
        self.runtime: LambdaRuntime | None = None
        self.authorizer: JwtAuthorizer | None = None
        self.cors: Cors | None = None
        # The socket is bound now, so the URL is known before the deployment is resolved (the
        # front end and the OAuth callback of the local deployment are on this very gateway).
        self._server = LocalServer(self.wsgi, host, port, "api", access_log)

    def configure(self, ctx: Context, runtime: LambdaRuntime) -> None:
        """Resolve the authorizer and CORS settings for the deployment and attach the functions."""
        self.ctx = ctx
        self.runtime = runtime
        self.authorizer = _authorizer(self._api, ctx, self._jwt_secret)
        self.cors = Cors.from_spec(resolve(self._api.get("Properties", {}).get("CorsConfiguration"), ctx))

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        return self._server.url

    def start(self) -> None:
        """Serve on a background thread."""
        self._server.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.stop()

    def wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """The gateway as a WSGI application."""
        return self.handle(Request(environ))(environ, start_response)

    def handle(self, request: Request) -> Response:
        """The whole request path, without sockets: tests call it directly too."""
        if self.cors and request.method == "OPTIONS" and request.headers.get("access-control-request-method"):
            return self.cors.preflight(request.headers.get("origin"))
        try:
            request.get_data(cache=True)
        except RequestEntityTooLarge:
            return gateway_error(413)
        except ClientDisconnected:
            return Response(status=400)  # nobody is left to read it; the server drops it quietly
        matched = self.routes.match(request.method, request.path)
        if matched is None:
            local = self.fallback(request) if self.fallback else None
            response = local if local is not None else gateway_error(404)
        else:
            response = self._invoke(request, *matched)
        if self.cors:
            self.cors.decorate(request.headers.get("origin"), response.headers)
        return response

    def _invoke(self, request: Request, route: Route, params: dict[str, str]) -> Response:
        claims = None
        if route.authorized and self.authorizer is not None:
            try:
                claims = self.authorizer.claims(request.headers.get(self.authorizer.identity_header))
            except AuthorizerError as exc:
                return gateway_error(401, [("www-authenticate", exc.challenge)])
        route_key = "$default" if route.path == "$default" else f"{route.method} {route.path}"
        if self.ctx is None or self.runtime is None:
            raise RuntimeError("configure() the gateway before serving")
        event = build_event(request, route_key, params, claims, account_id=self.ctx.account_id)
        outcome = self.runtime.invoke(route.function, event)
        try:
            # A handler error, crash or timeout is a Lambda error: API Gateway answers 500.
            response = response_from_result(outcome.result) if outcome.ok else gateway_error(500)
        except (ValueError, TypeError):
            response = gateway_error(500)
        response.headers["apigw-requestid"] = event["requestContext"]["requestId"]
        return response
