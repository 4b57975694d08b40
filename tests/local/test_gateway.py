"""The local gateway as a reusable module: a small template of its own, with functions that echo
what they were given, served on a free port and driven over real HTTP."""

from __future__ import annotations

import base64
import re
import socket
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import jwt
import pytest
import requests

from orcapulse_local.gateway import Gateway, Request, Response, RouteTable, build_event, claims_as_strings
from orcapulse_local.lambda_runtime import DEFAULT_CONCURRENCY, LambdaRuntime, functions_from_template
from orcapulse_local.serving import PortInUseError
from orcapulse_local.template import Route, deployment_context, load_template

SECRET = "gateway-test-key-of-thirty-two-bytes!"
ISSUER = "https://issuer.gateway.test"

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Issuer:
    Type: String
  Audience:
    Type: CommaDelimitedList
  Front:
    Type: String
    Default: http://front.test
Globals:
  Function:
    Runtime: python3.12
    Timeout: 5
    MemorySize: 256
    Layers: [!Ref Lib]
    Environment:
      Variables:
        GREETING: !Sub "hello from ${AWS::Region}"
        FRONT: !Ref Front
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration:
        AllowOrigins: [!Ref Front]
        AllowMethods: [GET, POST]
        AllowHeaders: [authorization]
        MaxAge: 60
      Auth:
        DefaultAuthorizer: Users
        Authorizers:
          Users:
            IdentitySource: $request.header.Authorization
            JwtConfiguration:
              issuer: !Ref Issuer
              audience: !Ref Audience
  Lib:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: lib/
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo/
      Handler: app.handler
      Environment:
        Variables:
          ONLY_ECHO: "yes"
      Events:
        Item:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: GET, Path: "/items/{item_id}"}
        Items:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: GET, Path: /items}
        Mine:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: GET, Path: /items/mine}
        Public:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: ANY, Path: "/public/{proxy+}", Auth: {Authorizer: NONE}}
  Shaper:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: shaper/
      Handler: app.handler
      Events:
        Shape:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: POST, Path: /shape, Auth: {Authorizer: NONE}}
  Slow:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: slow/
      Handler: app.handler
      Timeout: 1
      Events:
        Slow:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: GET, Path: /slow, Auth: {Authorizer: NONE}}
"""

ECHO = """
import os, sys
import echo_lib

def handler(event, context):
    try:
        import orcapulse_local  # noqa: F401 - must not be importable from a function
        leaked = True
    except ImportError:
        leaked = False
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": echo_lib.dumps({
            "event": event,
            "env": {k: os.environ.get(k) for k in ("GREETING", "FRONT", "ONLY_ECHO", "AWS_LAMBDA_FUNCTION_NAME",
                                                  "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "LAMBDA_TASK_ROOT")},
            "path": sys.path[:2],
            "gateway_importable": leaked,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "function_name": context.function_name,
        }),
    }
"""

SHAPER = """
import base64, json

def handler(event, context):
    wanted = json.loads(event["body"])
    if wanted == "raise":
        raise ValueError("boom")
    if wanted == "bare":
        return {"hello": "world"}
    if wanted == "binary":
        return {"statusCode": 201, "isBase64Encoded": True, "headers": {"content-type": "image/png"},
                "body": base64.b64encode(b"\\x89PNG").decode(), "cookies": ["a=1; Path=/", "b=2"]}
    if wanted == "bad":
        return {"statusCode": "teapot"}
    return {"statusCode": 204}
"""

SLOW = """
import time

def handler(event, context):
    time.sleep(5)
    return {"statusCode": 200}
"""


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("app")
    (root / "template.yaml").write_text(TEMPLATE)
    for name, code in (("echo", ECHO), ("shaper", SHAPER), ("slow", SLOW)):
        (root / name).mkdir()
        (root / name / "app.py").write_text(textwrap.dedent(code))
    (root / "lib").mkdir()
    (root / "lib" / "echo_lib.py").write_text(
        "import json\n\ndef dumps(value):\n    return json.dumps(value)\n"
    )
    return root


@pytest.fixture(scope="module")
def gateway(app_dir: Path) -> Iterator[Gateway]:
    template = load_template(app_dir / "template.yaml")
    gw = Gateway(template, jwt_secret=SECRET)
    ctx = deployment_context(template, {"Issuer": ISSUER, "Audience": "aud-1,aud-2"})
    runtime = LambdaRuntime(functions_from_template(template, ctx, app_dir), sink=lambda fn, line: None)
    gw.configure(ctx, runtime)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()
        runtime.stop()


def token(key: str = SECRET, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"sub": "u-1", "iss": ISSUER, "aud": "aud-2", "iat": now, "exp": now + 60, "custom:ws": "w-1"}
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="HS256")


def get(gateway: Gateway, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(gateway.url + path, timeout=10, **kwargs)


def echo(gateway: Gateway, path: str, **kwargs: Any) -> dict[str, Any]:
    resp = get(
        gateway, path, headers={"Authorization": f"Bearer {token()}", **kwargs.pop("headers", {})}, **kwargs
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


# -- the route table -----------------------------------------------------------------------------------
def test_routes_come_from_the_template_most_specific_first():
    table = RouteTable(
        [
            Route("GET", "/items/{item_id}", "Echo", True),
            Route("GET", "/items/mine", "Mine", True),
            Route("ANY", "/public/{proxy+}", "Public", False),
            Route("GET", "/public/exact", "Exact", False),
        ]
    )
    assert table.match("GET", "/items/mine") == (Route("GET", "/items/mine", "Mine", True), {})
    assert cast(tuple[Route, dict[str, str]], table.match("GET", "/items/a%20b"))[1] == {"item_id": "a b"}
    assert cast(tuple[Route, dict[str, str]], table.match("GET", "/public/exact"))[0].function == "Exact"
    assert table.match("DELETE", "/public/a/b/c") == (
        Route("ANY", "/public/{proxy+}", "Public", False),
        {"proxy": "a/b/c"},
    )
    assert table.match("POST", "/items/1") is None
    assert table.match("GET", "/items/1/2") is None


def test_path_parameters_query_cookies_and_headers_reach_the_function(gateway):
    body = echo(
        gateway,
        "/items/it%C3%A9m-7?tag=a&tag=b&empty=",
        headers={"Cookie": "c1=v1; c2=v2", "X-Custom": "Yes"},
    )
    event = body["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /items/{item_id}"
    assert event["rawPath"] == "/items/it%C3%A9m-7"
    assert event["rawQueryString"] == "tag=a&tag=b&empty="
    assert event["queryStringParameters"] == {"tag": "a,b", "empty": ""}
    assert event["pathParameters"] == {"item_id": "itém-7"}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-custom"] == "Yes"
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"]["method"] == "GET"
    assert context["routeKey"] == "GET /items/{item_id}"
    assert context["stage"] == "$default"
    assert context["authorizer"]["jwt"]["claims"]["sub"] == "u-1"
    assert context["authorizer"]["jwt"]["claims"]["custom:ws"] == "w-1"
    assert "body" not in event


def test_more_specific_route_wins_over_a_path_parameter(gateway):
    assert echo(gateway, "/items/mine")["event"]["routeKey"] == "GET /items/mine"
    assert echo(gateway, "/items")["event"]["routeKey"] == "GET /items"


def test_function_gets_its_resolved_environment_and_the_layer_as_lambda_puts_it(gateway, app_dir):
    body = echo(gateway, "/items/1")
    assert body["env"]["GREETING"] == "hello from us-east-1"
    assert body["env"]["FRONT"] == "http://front.test"
    assert body["env"]["ONLY_ECHO"] == "yes"
    assert body["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert body["env"]["LAMBDA_TASK_ROOT"] == str(app_dir / "echo")
    assert body["path"] == [str(app_dir / "echo"), str(app_dir / "lib")]
    assert body["gateway_importable"] is False
    assert 0 < body["remaining_ms"] <= 5000
    assert body["function_name"].endswith("-Echo")


def test_bodies_are_text_or_base64_as_api_gateway_sends_them(gateway):
    json_resp = requests.post(gateway.url + "/public/x", json={"a": 1}, timeout=10)
    assert json_resp.json()["event"]["body"] == '{"a": 1}'
    assert json_resp.json()["event"]["isBase64Encoded"] is False
    raw = requests.post(
        gateway.url + "/public/x",
        data=b"\x00\xff",
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    ).json()["event"]
    assert raw["isBase64Encoded"] is True
    assert base64.b64decode(raw["body"]) == b"\x00\xff"


def test_a_chunked_body_reaches_the_function_whole(gateway):
    chunks = iter([b'{"a": ', b'"chunked"}'])
    resp = requests.post(
        gateway.url + "/public/x", data=chunks, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert resp.json()["event"]["body"] == '{"a": "chunked"}'


def test_public_routes_have_no_authorizer_context(gateway):
    event = requests.get(gateway.url + "/public/a/b", timeout=10).json()["event"]
    assert event["routeKey"] == "ANY /public/{proxy+}"
    assert event["pathParameters"] == {"proxy": "a/b"}
    assert "authorizer" not in event["requestContext"]


# -- answers -------------------------------------------------------------------------------------------------
def shape(gateway: Gateway, what: str) -> requests.Response:
    return requests.post(gateway.url + "/shape", json=what, timeout=10)


def test_results_are_turned_into_http_as_api_gateway_does(gateway):
    binary = shape(gateway, "binary")
    assert binary.status_code == 201
    assert binary.content == b"\x89PNG"
    assert binary.headers["content-type"] == "image/png"
    assert binary.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2"]
    assert binary.headers["apigw-requestid"]
    bare = shape(gateway, "bare")
    assert (bare.status_code, bare.json()) == (200, {"hello": "world"})
    assert shape(gateway, "empty").status_code == 204


@pytest.mark.parametrize("what", ["raise", "bad"])
def test_a_failing_function_is_a_500_and_the_next_call_still_works(gateway, what):
    resp = shape(gateway, what)
    assert (resp.status_code, resp.json()) == (500, {"message": "Internal Server Error"})
    assert shape(gateway, "bare").status_code == 200


def test_a_function_past_its_timeout_is_stopped(gateway):
    started = time.monotonic()
    resp = get(gateway, "/slow")
    assert (resp.status_code, resp.json()) == (500, {"message": "Internal Server Error"})
    assert time.monotonic() - started < 4


def test_unknown_routes_are_404_like_api_gateway(gateway):
    for method, path in (("GET", "/nope"), ("DELETE", "/items/1"), ("GET", "/shape")):
        resp = requests.request(method, gateway.url + path, timeout=10)
        assert (resp.status_code, resp.json()) == (404, {"message": "Not Found"})


# -- the JWT authorizer -------------------------------------------------------------------------------------
UNAUTHORIZED = [
    pytest.param({}, id="no-token"),
    pytest.param({"Authorization": "Bearer"}, id="empty-bearer"),
    pytest.param({"Authorization": "Bearer not.a.jwt"}, id="garbage"),
    pytest.param(
        {"Authorization": f"Bearer {token(key='another-key-of-thirty-two-bytes-long')}"}, id="bad-signature"
    ),
    pytest.param({"Authorization": f"Bearer {token(iss='https://evil.test')}"}, id="wrong-issuer"),
    pytest.param({"Authorization": f"Bearer {token(aud='someone-else')}"}, id="wrong-audience"),
    pytest.param({"Authorization": f"Bearer {token(exp=int(time.time()) - 5)}"}, id="expired"),
    pytest.param({"Authorization": f"Bearer {token(exp=None)}"}, id="no-expiry"),
    pytest.param({"Authorization": f"Bearer {token(nbf=int(time.time()) + 600)}"}, id="not-yet-valid"),
    pytest.param(
        {
            "Authorization": "Bearer "
            + jwt.encode(
                {"sub": "u", "iss": ISSUER, "aud": "aud-1", "exp": int(time.time()) + 60},
                None,  # type: ignore[arg-type]  # PyJWT takes no key for algorithm="none"; its annotation omits None
                algorithm="none",
            )
        },
        id="alg-none",
    ),
]


@pytest.mark.parametrize("headers", UNAUTHORIZED)
def test_the_authorizer_answers_401_before_the_function_runs(gateway, headers):
    resp = get(gateway, "/items/1", headers=headers)
    assert resp.status_code == 401
    assert resp.json() == {"message": "Unauthorized"}
    assert resp.headers["www-authenticate"].startswith("Bearer")


def test_the_authorizer_accepts_a_list_audience_a_client_id_and_a_token_without_bearer(gateway):
    for value in (
        f"Bearer {token(aud=['x', 'aud-1'])}",
        f"Bearer {token(aud=None, client_id='aud-2')}",
        token(),
    ):
        assert get(gateway, "/items/1", headers={"Authorization": value}).status_code == 200


def test_claims_reach_the_function_as_strings_like_api_gateway_sends_them():
    claims = claims_as_strings({"exp": 5, "flag": True, "groups": ["a", "b"], "sub": "u"})
    assert claims == {"exp": "5", "flag": "true", "groups": "[a b]", "sub": "u"}
    event = build_event(
        cast(Request, Request.from_values("/x")),
        "GET /x",
        {},
        {"sub": "u", "scope": "read write"},
        account_id="1",
    )
    assert event["requestContext"]["authorizer"]["jwt"]["scopes"] == ["read", "write"]


# -- CORS -------------------------------------------------------------------------------------------------------
def test_cors_preflight_and_headers_follow_the_configuration(gateway):
    pre = requests.options(
        gateway.url + "/items/1",
        headers={"Origin": "http://front.test", "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "http://front.test"
    assert pre.headers["access-control-max-age"] == "60"
    other = requests.options(
        gateway.url + "/items/1",
        headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    assert "access-control-allow-origin" not in other.headers
    resp = get(gateway, "/public/x", headers={"Origin": "http://front.test"})
    assert resp.headers["access-control-allow-origin"] == "http://front.test"


def test_the_fallback_serves_only_paths_no_route_claims(app_dir):
    template = load_template(app_dir / "template.yaml")
    seen: list[str] = []

    def fallback(request: Request):
        seen.append(request.path)
        return Response(b"local", 200, [("Content-Type", "text/plain")])

    gw = Gateway(template, jwt_secret=SECRET, fallback=fallback)
    ctx = deployment_context(template, {"Issuer": ISSUER, "Audience": "aud-1"})
    runtime = LambdaRuntime(functions_from_template(template, ctx, app_dir), sink=lambda fn, line: None)
    gw.configure(ctx, runtime)
    try:
        assert gw.handle(cast(Request, Request.from_values("/console"))).get_data() == b"local"
        # A template route: never the fallback.
        assert gw.handle(cast(Request, Request.from_values("/items/1"))).status_code == 401
        assert seen == ["/console"]
    finally:
        runtime.stop()
        gw.stop()


def test_warm_brings_a_pool_up_to_its_concurrency_and_the_warm_workers_serve(app_dir):
    template = load_template(app_dir / "template.yaml")
    ctx = deployment_context(template, {"Issuer": ISSUER, "Audience": "aud-1"})
    runtime = LambdaRuntime(functions_from_template(template, ctx, app_dir), sink=lambda fn, line: None)
    try:
        assert runtime.warm("Echo", 2) == 2
        assert runtime.warm("Echo", 1) == 2  # already warm: nothing started, nothing stopped
        assert runtime.warm("Echo", 99) == DEFAULT_CONCURRENCY  # capped by its concurrency
        started = len(runtime._all)
        reply = runtime.invoke("Echo", {"rawPath": "/items/1", "headers": {}})
        assert reply.error is None
        assert len(runtime._all) == started  # served by a warm worker, none started
    finally:
        runtime.stop()
    assert runtime.warm("Echo", 2) == 0  # a stopped runtime starts nothing


# -- serving ----------------------------------------------------------------------------------------------------
def test_a_busy_port_is_reported_with_its_variable(app_dir):
    template = load_template(app_dir / "template.yaml")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} \\(LOCAL_API_PORT\\) is already in use"):
            Gateway(template, jwt_secret=SECRET, port=port)


def test_a_client_that_hangs_up_mid_request_is_not_an_error(gateway, capfd):
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as client:
        client.sendall(b'POST /shape HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"a"')
    time.sleep(0.3)
    assert shape(gateway, "bare").status_code == 200
    assert "Traceback" not in capfd.readouterr().err


def test_the_access_log_has_one_short_line_per_request(app_dir):
    template = load_template(app_dir / "template.yaml")
    lines: list[str] = []
    gw = Gateway(template, jwt_secret=SECRET, access_log=lines.append)
    gw.configure(deployment_context(template, {"Issuer": ISSUER, "Audience": "aud-1"}), LambdaRuntime({}))
    gw.start()
    try:
        requests.get(gw.url + "/nope?code=secret", timeout=10)
    finally:
        gw.stop()
    assert len(lines) == 1
    assert re.fullmatch(r"GET /nope 404 \d+ms", lines[0])
