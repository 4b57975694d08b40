"""A local stand-in for API Gateway HTTP APIs, driven by ``template.yaml``.

Every ``HttpApi`` event of every function becomes a route (path parameters and greedy ``{name+}``
included, matched most-specific first as API Gateway does). A request becomes a payload-format-2.0
event shaped as API Gateway sends it, the function is invoked through :class:`LambdaRuntime`, and
its answer is turned back into HTTP by the same rules API Gateway applies. The API's JWT
authorizer is emulated: a bearer token must carry a valid HS256 signature (the local key stands in
for the issuer's JWKS), the configured issuer, one of the audiences (or ``client_id``) and an
unexpired ``exp``; anything else is ``401 {"message": "Unauthorized"}`` before the function runs.
CORS preflights are answered from the API's ``CorsConfiguration``.

Paths no template route claims may be served by a ``fallback`` (the local stack puts its console
and ``/local/...`` helpers there), so the product's routes always win."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote

import jwt

from orcapulse_local.lambda_runtime import LambdaRuntime
from orcapulse_local.serving import LocalServer
from orcapulse_local.template import Context, Route, http_routes, resolve, resources_of_type

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "application/graphql")
GATEWAY_MESSAGES = {
    401: "Unauthorized",
    404: "Not Found",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass
class Request:
    method: str
    raw_path: str
    raw_query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    source_ip: str = "127.0.0.1"

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ",".join(values) if values else None


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def json(cls, status: int, document: Any, headers: list[tuple[str, str]] | None = None) -> Response:
        return cls(
            status, [("Content-Type", "application/json"), *(headers or [])], json.dumps(document).encode()
        )

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def gateway_error(status: int, headers: list[tuple[str, str]] | None = None) -> Response:
    """An answer API Gateway itself gives: ``{"message": "..."}``."""
    return Response.json(status, {"message": GATEWAY_MESSAGES[status]}, headers)


Fallback = Callable[[Request], Response | None]


# -- routes --------------------------------------------------------------------------------------
_SEGMENT_VARIABLE = re.compile(r"^\{([A-Za-z0-9_.\-]+)(\+?)\}$")


@dataclass(frozen=True)
class CompiledRoute:
    route: Route
    pattern: re.Pattern[str]
    variables: tuple[str, ...]
    literal_segments: int
    greedy: bool

    @property
    def key(self) -> str:
        return f"{self.route.method} {self.route.path}"

    def priority(self) -> tuple[int, int, int, int]:
        # API Gateway: an exact path beats path variables, which beat a greedy variable; a route
        # for the method beats ANY; more literal segments win among variable routes.
        return (
            0 if not self.variables else (2 if self.greedy else 1),
            0 if self.route.method != "ANY" else 1,
            -self.literal_segments,
            -len(self.route.path),
        )


def compile_route(route: Route) -> CompiledRoute:
    parts: list[str] = []
    variables: list[str] = []
    literals, greedy = 0, False
    for segment in route.path.strip("/").split("/") if route.path.strip("/") else []:
        m = _SEGMENT_VARIABLE.match(segment)
        if m is None:
            parts.append(re.escape(segment))
            literals += 1
        elif m.group(2):
            parts.append(f"(?P<v{len(variables)}>.+)")
            variables.append(m.group(1))
            greedy = True
        else:
            parts.append(f"(?P<v{len(variables)}>[^/]+)")
            variables.append(m.group(1))
    pattern = re.compile("^/" + "/".join(parts) + "$")
    return CompiledRoute(route, pattern, tuple(variables), literals, greedy)


class RouteTable:
    """The template's routes, ordered as API Gateway selects them."""

    def __init__(self, routes: list[Route]):
        compiled = [compile_route(r) for r in routes if r.path != "$default"]
        self.routes = sorted(compiled, key=CompiledRoute.priority)
        self.default = next((r for r in routes if r.path == "$default"), None)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for compiled in self.routes:
            if compiled.route.method not in (method, "ANY"):
                continue
            m = compiled.pattern.match(path)
            if m is not None:
                params = {name: unquote(m.group(f"v{i}")) for i, name in enumerate(compiled.variables)}
                return compiled.route, params
        if self.default is not None:
            return self.default, {}
        return None

    def claims_path(self, path: str) -> bool:
        """Whether any route (of any method) serves ``path``."""
        return any(c.pattern.match(path) for c in self.routes) or self.default is not None


# -- the JWT authorizer ---------------------------------------------------------------------------
class AuthorizerError(Exception):
    """The request carries no token the JWT authorizer would accept (API Gateway answers 401)."""


@dataclass(frozen=True)
class JwtAuthorizer:
    """API Gateway's JWT authorizer, with an HS256 key standing in for the issuer's JWKS."""

    issuer: str
    audiences: tuple[str, ...]
    secret: str
    identity_header: str = "authorization"

    def claims(self, request: Request) -> dict[str, Any]:
        raw = (request.header(self.identity_header) or "").strip()
        if not raw:
            raise AuthorizerError("no token")
        token = raw[7:].strip() if raw[:7].lower() == "bearer " else raw
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                issuer=self.issuer,
                options={"require": ["exp", "iss"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise AuthorizerError("the token has expired") from None
        except jwt.InvalidIssuerError:
            raise AuthorizerError("the token has an invalid issuer") from None
        except jwt.InvalidTokenError:
            raise AuthorizerError("the token is invalid") from None
        aud = claims.get("aud")
        token_audiences = [aud] if isinstance(aud, str) else list(aud or [])
        if "aud" not in claims and isinstance(claims.get("client_id"), str):
            token_audiences = [claims["client_id"]]
        if not set(token_audiences) & set(self.audiences):
            raise AuthorizerError("the token does not have a valid audience")
        return claims


def claims_as_strings(claims: dict[str, Any]) -> dict[str, str]:
    """Claims as API Gateway hands them to the function: every value a string, arrays as
    ``[a b]``."""

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return "[" + " ".join(text(v) for v in value) + "]"
        if isinstance(value, dict):
            return json.dumps(value, separators=(",", ":"))
        return str(value)

    return {k: text(v) for k, v in claims.items()}


def _scopes(claims: dict[str, Any]) -> list[str] | None:
    raw = claims.get("scope", claims.get("scp"))
    if isinstance(raw, str):
        return raw.split() or None
    if isinstance(raw, list):
        return [str(s) for s in raw] or None
    return None


# -- payload format 2.0 ------------------------------------------------------------------------------
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
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    host = headers.get("host", "localhost")
    headers.setdefault("x-forwarded-for", request.source_ip)
    headers.setdefault("x-forwarded-proto", "http")
    headers.setdefault("x-forwarded-port", host.rsplit(":", 1)[1] if ":" in host else "80")
    headers.setdefault("x-amzn-trace-id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}")
    domain = host.split(":")[0]
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": request.method,
                "path": request.raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
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
    if request.raw_query:
        query: dict[str, str] = {}
        for key, value in parse_qsl(request.raw_query, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if request.body:
        if _is_text(headers.get("content-type")):
            try:
                event["body"] = request.body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(request.body).decode()
                event["isBase64Encoded"] = True
        else:
            event["body"] = base64.b64encode(request.body).decode()
            event["isBase64Encoded"] = True
    if claims is not None:
        event["requestContext"]["authorizer"] = {
            "jwt": {"claims": claims_as_strings(claims), "scopes": _scopes(claims)}
        }
    return event


def response_from_result(result: Any) -> Response:
    """Turn a function's result into HTTP as API Gateway does for payload format 2.0."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # No statusCode: API Gateway answers 200 with the result as a JSON body.
        text = result if isinstance(result, str) else json.dumps(result)
        return Response(200, [("Content-Type", "application/json")], text.encode())
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
    if not any(k.lower() == "content-type" for k, _ in headers) and body:
        headers.append(("Content-Type", "application/json"))
    return Response(status, headers, body)


# -- CORS ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cors:
    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    def origin_allowed(self, origin: str | None) -> bool:
        return bool(origin) and ("*" in self.allow_origins or origin in self.allow_origins)

    def preflight(self, request: Request) -> Response:
        origin = request.header("origin")
        headers: list[tuple[str, str]] = []
        if self.origin_allowed(origin):
            headers += [
                ("Access-Control-Allow-Origin", "*" if "*" in self.allow_origins else str(origin)),
                ("Access-Control-Allow-Methods", ",".join(self.allow_methods) or "*"),
                ("Access-Control-Allow-Headers", ",".join(self.allow_headers) or "*"),
            ]
            if self.max_age is not None:
                headers.append(("Access-Control-Max-Age", str(self.max_age)))
            if self.allow_credentials:
                headers.append(("Access-Control-Allow-Credentials", "true"))
        return Response(204, headers)

    def decorate(self, request: Request, response: Response) -> None:
        origin = request.header("origin")
        if not self.origin_allowed(origin):
            return
        response.headers = [h for h in response.headers if not h[0].lower().startswith("access-control-")]
        response.headers.append(
            ("Access-Control-Allow-Origin", "*" if "*" in self.allow_origins else str(origin))
        )
        if self.expose_headers:
            response.headers.append(("Access-Control-Expose-Headers", ",".join(self.expose_headers)))
        if self.allow_credentials:
            response.headers.append(("Access-Control-Allow-Credentials", "true"))


def _cors(api: dict[str, Any], ctx: Context) -> Cors | None:
    spec = resolve(api.get("Properties", {}).get("CorsConfiguration"), ctx)
    if not spec:
        return None
    if spec is True:
        return Cors(allow_origins=("*",), allow_methods=("*",), allow_headers=("*",))

    def strings(key: str) -> tuple[str, ...]:
        value = spec.get(key) or []
        return tuple(str(v) for v in (value if isinstance(value, list) else [value]))

    return Cors(
        allow_origins=strings("AllowOrigins"),
        allow_methods=strings("AllowMethods"),
        allow_headers=strings("AllowHeaders"),
        expose_headers=strings("ExposeHeaders"),
        max_age=int(spec["MaxAge"]) if "MaxAge" in spec else None,
        allow_credentials=bool(spec.get("AllowCredentials")),
    )


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


# -- the gateway -------------------------------------------------------------------------------------------
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
        access_log: Callable[[str], None] | None = None,
    ):
        apis = resources_of_type(template, "AWS::Serverless::HttpApi")
        # One HTTP API per template is what this project has; a second one would need its own port.
        if len(apis) > 1:
            raise ValueError("the local gateway serves one AWS::Serverless::HttpApi")
        self._api = next(iter(apis.values()), {})
        self._jwt_secret = jwt_secret
        self.routes = RouteTable(http_routes(template))
        self.fallback = fallback
        self.access_log = access_log
        self.ctx: Context | None = None
        self.runtime: LambdaRuntime | None = None
        self.authorizer: JwtAuthorizer | None = None
        self.cors: Cors | None = None
        # The socket is bound now, so the URL is known before the deployment is resolved (the
        # front end and the OAuth callback of the local deployment are on this very gateway).
        self._server: LocalServer[Gateway] = LocalServer((host, port), _Handler, self, "gateway")

    def configure(self, ctx: Context, runtime: LambdaRuntime) -> None:
        """Resolve the authorizer and CORS settings for the deployment and attach the functions."""
        self.ctx = ctx
        self.runtime = runtime
        self.authorizer = _authorizer(self._api, ctx, self._jwt_secret)
        self.cors = _cors(self._api, ctx)

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    # The whole request path, without sockets: tests call it directly too.
    def handle(self, request: Request) -> Response:
        path = request.raw_path
        if self.cors and request.method == "OPTIONS" and request.header("access-control-request-method"):
            return self.cors.preflight(request)
        if len(request.body) > MAX_BODY_BYTES:
            return gateway_error(413)
        matched = self.routes.match(request.method, _decoded_path(path))
        if matched is None:
            local = self.fallback(request) if self.fallback else None
            response = local if local is not None else gateway_error(404)
        else:
            response = self._invoke(request, *matched)
        if self.cors:
            self.cors.decorate(request, response)
        return response

    def _invoke(self, request: Request, route: Route, params: dict[str, str]) -> Response:
        claims = None
        if route.authorized and self.authorizer is not None:
            try:
                claims = self.authorizer.claims(request)
            except AuthorizerError as exc:
                challenge = (
                    "Bearer"
                    if str(exc) == "no token"
                    else (f'Bearer scope="" error="invalid_token" error_description="{exc}"')
                )
                return gateway_error(401, [("www-authenticate", challenge)])
        route_key = "$default" if route.path == "$default" else f"{route.method} {route.path}"
        if self.ctx is None or self.runtime is None:
            raise RuntimeError("configure() the gateway before serving")
        event = build_event(request, route_key, params, claims, account_id=self.ctx.account_id)
        outcome = self.runtime.invoke(route.function, event)
        request_id = event["requestContext"]["requestId"]
        if not outcome.ok:
            # A handler error, crash or timeout is a Lambda error: API Gateway answers 500.
            response = gateway_error(500)
        else:
            try:
                response = response_from_result(outcome.result)
            except (ValueError, TypeError):
                response = gateway_error(500)
        response.headers.append(("apigw-requestid", request_id))
        return response


def _decoded_path(raw_path: str) -> str:
    return "/".join(unquote(p) for p in raw_path.split("/")) if "%" in raw_path else raw_path


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LocalServer[Gateway]
    server_version = "orcapulse-local-gateway"

    def _dispatch(self) -> None:
        started = time.monotonic()
        path, _, query = self.path.partition("?")
        try:
            body = self._body()
        except ValueError:
            self._send(Response.json(400, {"message": "Bad Request"}))
            return
        if body is None:
            self._send(gateway_error(413))
            self.close_connection = True
            return
        request = Request(
            method=self.command,
            raw_path=path or "/",
            raw_query=query,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
        )
        response = self.server.owner.handle(request)
        self._send(response)
        log = self.server.owner.access_log
        if log is not None:
            log(f"{self.command} {path} {response.status} {(time.monotonic() - started) * 1000:.0f}ms")

    def _body(self) -> bytes | None:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        if length < 0:
            raise ValueError("negative content-length")
        if length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, response: Response) -> None:
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = ""
        self.send_response_only(response.status, phrase)
        self.send_header("Date", formatdate(usegmt=True))
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "date"):
                self.send_header(name, value)
        body = b"" if self.command == "HEAD" else response.body
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _dispatch

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, QUERY...) goes through the route table too, as API Gateway
        # takes it: no route, 404 — not http.server's 501.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the gateway's access_log reports requests
