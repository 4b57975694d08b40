"""The whole product on one machine: moto (AWS), the TikTok emulator, the template's functions
behind the local gateway, their schedules and table streams, and the console.

    with LocalStack(Ports.ephemeral()) as stack:     # or Ports.from_env() for 3000/3001/3002
        print(stack.api_url)

Everything runs in this process (servers in threads) except the functions, which run in worker
processes of their own (see ``lambda_runtime``); :meth:`LocalStack.stop` ends all of it."""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.utils import send_from_directory

from orcapulse_local import ads_emulator, config, dev_tokens
from orcapulse_local.aws_server import AwsServer, Provisioned, drain_bus_tap, provision
from orcapulse_local.event_sources import Scheduler, StreamMappings, schedules, stream_events
from orcapulse_local.gateway import Gateway, Request, Response, json_response
from orcapulse_local.lambda_runtime import (
    FunctionSpec,
    LambdaRuntime,
    LogSink,
    functions_from_template,
    print_sink,
)
from orcapulse_local.template import ROOT, TEMPLATE_PATH, Context, deployment_context, load_template
from orcapulse_local.tiktok_emulator import TikTokEmulator, local_state

CONSOLE_DIR = Path(__file__).with_name("console")
WEBHOOK_PATH = "/webhooks/tiktok"
MAX_LOCAL_BODY = 64 * 1024


def app_secret_logical_id(template: dict[str, Any], variable: str = "TIKTOK_APP_SECRET_ID") -> str | None:
    """The secret that ``variable`` (the Login Kit app's by default) names, wherever the template
    sets it."""
    scopes = [template.get("Globals", {}).get("Function", {})]
    scopes += [r.get("Properties", {}) for r in template["Resources"].values()]
    for scope in scopes:
        ref = scope.get("Environment", {}).get("Variables", {}).get(variable)
        if isinstance(ref, dict) and "Ref" in ref:
            return str(ref["Ref"])
    return None


class LocalStack:
    """The local stack on ``ports``; ``log_sink`` gets every function log line, ``access_log`` one
    short line per request to the gateway or the emulator (both tagged with their source)."""

    def __init__(
        self,
        ports: config.Ports,
        *,
        host: str = config.HOST,
        root: Path = ROOT,
        template_path: Path = TEMPLATE_PATH,
        log_sink: LogSink | None = print_sink,
        access_log: LogSink | None = None,
        run_schedules: bool = True,
        run_streams: bool = True,
        prewarm: bool = True,
    ):
        self.ports = ports
        self.host = host
        self.root = root
        self.template = load_template(template_path)
        self.log_sink = log_sink
        self.access_log = access_log
        self.run_schedules = run_schedules
        self.run_streams = run_streams
        self.prewarm = prewarm
        self.logs: deque[tuple[str, str]] = deque(maxlen=5000)
        self.bus_events: list[dict[str, Any]] = []
        self._bus_lock = threading.Lock()
        self.aws: AwsServer | None = None
        self.emulator: TikTokEmulator | None = None
        self.gateway: Gateway | None = None
        self.runtime: LambdaRuntime | None = None
        self.scheduler: Scheduler | None = None
        self.streams: StreamMappings | None = None
        self.ctx: Context | None = None
        self.functions: dict[str, FunctionSpec] = {}
        self.provisioned = Provisioned()
        self.api_url = self.tiktok_url = self.aws_url = ""

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        # Anything reading moto through boto3's default credential chain must find fake keys
        # rather than nothing (or a real profile's).
        if not os.environ.get("AWS_ACCESS_KEY_ID"):
            os.environ.update(config.AWS_CREDENTIALS)
            os.environ.pop("AWS_PROFILE", None)
        self.aws = AwsServer(self.host, self.ports.aws)
        self.aws_url = self.aws.start()
        self.emulator = TikTokEmulator(
            local_state(),
            host=self.host,
            port=self.ports.tiktok,
            app_name=os.environ.get("LOCAL_TIKTOK_APP_NAME") or config.LOCAL_APP_NAME,
            access_log=self._access("tiktok"),
        )
        self.tiktok_url = self.emulator.url
        self.gateway = Gateway(
            self.template,
            jwt_secret=config.DEV_JWT_SECRET,
            host=self.host,
            port=self.ports.api,
            fallback=self._local,
            access_log=self._access("gateway"),
        )
        self.api_url = self.gateway.url

        ctx = deployment_context(self.template, config.stack_parameters(self.api_url), region=config.REGION)
        self.ctx = ctx
        secret_values = {}
        app_secret = app_secret_logical_id(self.template)
        if app_secret:
            secret_values[app_secret] = json.dumps(
                {"client_key": config.LOCAL_CLIENT_KEY, "client_secret": config.LOCAL_CLIENT_SECRET}
            )
        business_secret = app_secret_logical_id(self.template, "TIKTOK_BUSINESS_APP_SECRET_ID")
        if business_secret:
            secret_values[business_secret] = json.dumps(
                {"app_id": config.LOCAL_BUSINESS_APP_ID, "secret": config.LOCAL_BUSINESS_APP_SECRET}
            )
        self.provisioned = provision(self.template, ctx, self.aws_url, secret_values=secret_values)
        self.functions = functions_from_template(
            self.template,
            ctx,
            self.root,
            overrides=config.environment_overrides(self.tiktok_url, self.aws_url),
        )
        self.runtime = LambdaRuntime(self.functions, self._log)
        self.gateway.configure(ctx, self.runtime)
        if self.gateway.routes.match("POST", WEBHOOK_PATH):
            self.emulator.webhook_url = self.api_url + WEBHOOK_PATH
        self.emulator.redirect_uris = {ctx.parameters["TikTokRedirectUri"]}
        ads_emulator.of(self.emulator).redirect_uris = {ctx.parameters["TikTokAdsRedirectUri"]}

        self.emulator.start()
        self.gateway.start()
        if self.prewarm:
            # The functions a person reaches first go first, in template order.
            self.runtime.prewarm(sorted(self.functions, key=self._warm_order))
        self.scheduler = Scheduler(
            schedules(self.functions, ctx), self.runtime, lambda m: self._log("local", m)
        )
        if self.run_schedules:
            self.scheduler.start()
        # Each DynamoDB event of the template polls its table's stream in the background; the
        # leads table's stream is how new leads and interactions reach the bus.
        self.streams = StreamMappings(
            stream_events(self.functions, ctx),
            self.provisioned.tables,
            self.runtime,
            self.aws_url,
            lambda m: self._log("local", m),
        )
        if self.run_streams:
            self.streams.start()

    def _warm_order(self, logical_id: str) -> int:
        kinds = {e.get("Type") for e in self.functions[logical_id].events.values()}
        return 0 if "HttpApi" in kinds else 1

    def stop(self) -> None:
        """Stop everything that was started, newest first; safe to call twice."""
        if self.streams is not None:
            self.streams.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None
        if self.aws is not None:
            self.aws.stop()
            self.aws = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _access(self, server: str) -> Callable[[str], None] | None:
        log = self.access_log
        return None if log is None else (lambda line: log(server, line))

    def _log(self, source: str, line: str) -> None:
        self.logs.append((source, line))
        if self.log_sink is not None:
            self.log_sink(source, line)

    # -- what the stack offers besides the template's API ----------------------------------------
    @property
    def workspace_claim(self) -> str:
        return (self.ctx.parameters if self.ctx else {}).get("WorkspaceClaim", "custom:workspace_id")

    def dev_token(
        self, workspace: str | None = config.DEFAULT_WORKSPACE, user: str = config.DEFAULT_USER
    ) -> str:
        return dev_tokens.mint(workspace=workspace, user=user, workspace_claim=self.workspace_claim)

    def drain_bus_events(self, *, settle: bool = True) -> list[dict[str, Any]]:
        """Every event the product has put on its buses so far (copied there by the local tap).
        With ``settle``, what is still pending on the tables' streams is delivered first, so the
        events of every write already answered are listed without waiting for the next poll."""
        if settle and self.streams is not None:
            self.streams.pump()
        with self._bus_lock:
            for queue_url in self.provisioned.bus_taps.values():
                self.bus_events.extend(drain_bus_tap(self.aws_url, queue_url))
            return list(self.bus_events)

    def _local(self, request: Request) -> Response | None:
        """Paths no template route serves: the console and the ``/local/`` helpers."""
        try:
            endpoint, found = _LOCAL_ROUTES.bind_to_environ(request.environ).match()
        except HTTPException:
            return None
        args: dict[str, Any] = dict(found)
        if endpoint in _STATIC:
            return _static(request, **args) if endpoint == "static" else _static(request, endpoint)
        if request.method == "POST":
            if request.mimetype != "application/json":
                # A cross-site form cannot send JSON without a CORS preflight, which only the
                # console's own origin passes: no other web page can drive these helpers.
                return _error(415, "json_required", "Send Content-Type: application/json")
            body = request.get_json(silent=True) if request.get_data() else {}
            if not isinstance(body, dict) or len(request.get_data()) > MAX_LOCAL_BODY:
                return _error(400, "invalid_body", "Send a JSON object")
            args["body"] = body
        response: Response = getattr(self, f"_on_{endpoint}")(**args)
        return response

    def _on_health(self) -> Response:
        return json_response(
            200,
            {
                "service": "orcapulse-local",
                "api": self.api_url,
                "tiktok": self.tiktok_url,
                "aws": self.aws_url,
            },
        )

    def _on_dev_token(self, body: dict[str, Any]) -> Response:
        workspace = str(body.get("workspace") or config.DEFAULT_WORKSPACE)[:128]
        user = str(body.get("user") or config.DEFAULT_USER)[:128]
        minted = {
            "token": self.dev_token(workspace, user),
            "workspace": workspace,
            "user": user,
            "expires_in": config.DEV_TOKEN_TTL_SECONDS,
        }
        return json_response(200, minted, [("Cache-Control", "no-store")])

    def _started_emulator(self) -> TikTokEmulator:
        if self.emulator is None:
            raise RuntimeError("the stack is not started")
        return self.emulator

    def _on_send_event(self, body: dict[str, Any]) -> Response:
        emulator = self._started_emulator()
        try:
            delivery = emulator.send_event(
                str(body.get("event", "")),
                str(body.get("open_id") or "") or None,
                str(body.get("text") or ""),
                str(body.get("author") or "")[:128] or None,
                body.get("hold") is True,
            )
        except ValueError as exc:
            return _error(400, "invalid_event", str(exc))
        return json_response(200, delivery.summary())

    def _on_redeliver(self, body: dict[str, Any], delivery_id: str) -> Response:
        emulator = self._started_emulator()
        if delivery_id not in emulator.deliveries:
            return _error(404, "unknown_delivery", "No such delivery")
        return json_response(200, emulator.redeliver(delivery_id).summary())

    def _on_tiktok_state(self) -> Response:
        emulator = self._started_emulator()
        return json_response(200, emulator.snapshot())

    def _on_bus_events(self) -> Response:
        return json_response(200, {"items": self.drain_bus_events()})

    def _on_run_schedule(self, body: dict[str, Any], function: str) -> Response:
        if self.scheduler is None or function not in self.scheduler.entries:
            return _error(404, "unknown_schedule", "No such schedule")
        outcome = self.scheduler.run_now(function)
        return json_response(200, {"ok": outcome.ok, "result": outcome.result, "error": outcome.error})


_STATIC = ("index.html", "favicon.ico", "static")
_LOCAL_ROUTES = Map(
    [
        # The console at the front end's root and where the OAuth callback sends the browser.
        Rule("/", endpoint="index.html", methods=["GET"]),
        Rule("/integrations/tiktok", endpoint="index.html", methods=["GET"]),
        Rule("/favicon.ico", endpoint="favicon.ico", methods=["GET"]),
        Rule("/local/console/<path:name>", endpoint="static", methods=["GET"]),
        Rule("/local/health", endpoint="health", methods=["GET"]),
        Rule("/local/dev-token", endpoint="dev_token", methods=["POST"]),
        Rule("/local/tiktok/webhooks", endpoint="send_event", methods=["POST"]),
        Rule("/local/tiktok/webhooks/<delivery_id>/redeliver", endpoint="redeliver", methods=["POST"]),
        Rule("/local/tiktok/state", endpoint="tiktok_state", methods=["GET"]),
        Rule("/local/bus-events", endpoint="bus_events", methods=["GET"]),
        Rule("/local/schedules/<function>/run", endpoint="run_schedule", methods=["POST"]),
    ]
)


def _error(status: int, code: str, message: str) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}})


def _static(request: Request, name: str) -> Response | None:
    """A file of the console folder (any of them, typed by its extension); ``/favicon.ico`` is the
    console's favicon.svg, or nothing (204) while there is none."""
    if name == "favicon.ico":
        if not (CONSOLE_DIR / "favicon.svg").is_file():
            return Response(status=204)
        name = "favicon.svg"
    try:
        response = send_from_directory(CONSOLE_DIR, name, request.environ)
    except NotFound:
        return None
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
