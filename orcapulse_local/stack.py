"""The whole product on one machine: moto (AWS), the TikTok emulator, the template's functions
behind the local gateway, their schedules, and the console.

    with LocalStack(Ports.ephemeral()) as stack:     # or Ports.from_env() for 3000/3001/3002
        print(stack.api_url)

Everything runs in this process (servers in threads) except the functions, which run in worker
processes of their own (see ``lambda_runtime``); :meth:`LocalStack.stop` ends all of it."""

from __future__ import annotations

import json
import mimetypes
import os
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orcapulse_local import config, dev_tokens
from orcapulse_local.aws_server import AwsServer, Provisioned, drain_bus_tap, provision
from orcapulse_local.event_sources import Scheduler, schedules
from orcapulse_local.gateway import Gateway, Request, Response
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
# Where the console is served: the front end's root and the page the OAuth callback redirects to.
CONSOLE_PATHS = ("/", "/integrations/tiktok")
LOCAL_PREFIX = "/local/"
MAX_LOCAL_BODY = 64 * 1024


def app_secret_logical_id(template: dict[str, Any]) -> str | None:
    """The secret that ``TIKTOK_APP_SECRET_ID`` names, wherever the template sets it."""
    scopes = [template.get("Globals", {}).get("Function", {})]
    scopes += [r.get("Properties", {}) for r in template["Resources"].values()]
    for scope in scopes:
        ref = scope.get("Environment", {}).get("Variables", {}).get("TIKTOK_APP_SECRET_ID")
        if isinstance(ref, dict) and "Ref" in ref:
            return str(ref["Ref"])
    return None


class LocalStack:
    def __init__(
        self,
        ports: config.Ports,
        *,
        host: str = config.HOST,
        root: Path = ROOT,
        template_path: Path = TEMPLATE_PATH,
        log_sink: LogSink | None = print_sink,
        access_log: Callable[[str], None] | None = None,
        run_schedules: bool = True,
        prewarm: bool = True,
    ):
        self.ports = ports
        self.host = host
        self.root = root
        self.template = load_template(template_path)
        self.log_sink = log_sink
        self.access_log = access_log
        self.run_schedules = run_schedules
        self.prewarm = prewarm
        self.logs: deque[tuple[str, str]] = deque(maxlen=5000)
        self.bus_events: list[dict[str, Any]] = []
        self._bus_lock = threading.Lock()
        self.aws: AwsServer | None = None
        self.emulator: TikTokEmulator | None = None
        self.gateway: Gateway | None = None
        self.runtime: LambdaRuntime | None = None
        self.scheduler: Scheduler | None = None
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
        self.emulator = TikTokEmulator(local_state(), host=self.host, port=self.ports.tiktok)
        self.tiktok_url = self.emulator.url
        self.gateway = Gateway(
            self.template,
            jwt_secret=config.DEV_JWT_SECRET,
            host=self.host,
            port=self.ports.api,
            fallback=self._local,
            access_log=self.access_log,
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

    def _warm_order(self, logical_id: str) -> int:
        kinds = {e.get("Type") for e in self.functions[logical_id].events.values()}
        return 0 if "HttpApi" in kinds else 1

    def stop(self) -> None:
        """Stop everything that was started, newest first; safe to call twice."""
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

    def drain_bus_events(self) -> list[dict[str, Any]]:
        """Every event the product has put on its buses so far (copied there by the local tap)."""
        with self._bus_lock:
            for queue_url in self.provisioned.bus_taps.values():
                self.bus_events.extend(drain_bus_tap(self.aws_url, queue_url))
            return list(self.bus_events)

    def _local(self, request: Request) -> Response | None:
        """Paths no template route serves: the console and the ``/local/`` helpers."""
        path = request.raw_path
        if request.method in ("GET", "HEAD") and path in CONSOLE_PATHS:
            return _static(CONSOLE_DIR / "index.html")
        if not path.startswith(LOCAL_PREFIX):
            return None
        if request.method == "GET" and path.startswith("/local/console/"):
            name = path.removeprefix("/local/console/")
            target = (CONSOLE_DIR / name).resolve()
            if target.parent != CONSOLE_DIR.resolve() or not target.is_file():
                return None
            return _static(target)
        if request.method == "GET" and path == "/local/health":
            return Response.json(
                200,
                {
                    "service": "orcapulse-local",
                    "api": self.api_url,
                    "tiktok": self.tiktok_url,
                    "aws": self.aws_url,
                },
            )
        if request.method == "POST" and not _is_json(request.header("content-type")):
            # A cross-site form cannot send JSON without a CORS preflight, which only the console's
            # own origin passes: no other web page can drive these helpers from a browser.
            return Response.json(
                415, {"error": {"code": "json_required", "message": "Send Content-Type: application/json"}}
            )
        try:
            body = json.loads(request.body or b"{}") if request.method == "POST" else {}
            if not isinstance(body, dict) or len(request.body) > MAX_LOCAL_BODY:
                raise ValueError
        except ValueError:
            return Response.json(400, {"error": {"code": "invalid_body", "message": "Send a JSON object"}})
        return self._local_action(request.method, path, body)

    def _local_action(self, method: str, path: str, body: dict[str, Any]) -> Response | None:
        assert self.emulator is not None
        if method == "POST" and path == "/local/dev-token":
            workspace = str(body.get("workspace") or config.DEFAULT_WORKSPACE)[:128]
            user = str(body.get("user") or config.DEFAULT_USER)[:128]
            return Response.json(
                200,
                {
                    "token": self.dev_token(workspace, user),
                    "workspace": workspace,
                    "user": user,
                    "expires_in": config.DEV_TOKEN_TTL_SECONDS,
                },
                [("Cache-Control", "no-store")],
            )
        if method == "POST" and path == "/local/tiktok/webhooks":
            try:
                delivery = self.emulator.send_event(
                    str(body.get("event", "")),
                    str(body.get("open_id") or "") or None,
                    str(body.get("text") or ""),
                )
            except ValueError as exc:
                return Response.json(400, {"error": {"code": "invalid_event", "message": str(exc)}})
            return Response.json(200, delivery.summary())
        if method == "POST" and path.startswith("/local/tiktok/webhooks/") and path.endswith("/redeliver"):
            delivery_id = path.removeprefix("/local/tiktok/webhooks/").removesuffix("/redeliver")
            if delivery_id not in self.emulator.deliveries:
                return Response.json(
                    404, {"error": {"code": "unknown_delivery", "message": "No such delivery"}}
                )
            return Response.json(200, self.emulator.redeliver(delivery_id).summary())
        if method == "GET" and path == "/local/tiktok/state":
            return Response.json(200, self.emulator.snapshot())
        if method == "GET" and path == "/local/bus-events":
            return Response.json(200, {"items": self.drain_bus_events()})
        if method == "POST" and path.startswith("/local/schedules/") and path.endswith("/run"):
            function = path.removeprefix("/local/schedules/").removesuffix("/run")
            if self.scheduler is None or function not in self.scheduler.entries:
                return Response.json(
                    404, {"error": {"code": "unknown_schedule", "message": "No such schedule"}}
                )
            outcome = self.scheduler.run_now(function)
            return Response.json(200, {"ok": outcome.ok, "result": outcome.result, "error": outcome.error})
        return None


def _is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


def _static(path: Path) -> Response:
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype.endswith("javascript"):
        ctype += "; charset=utf-8"
    return Response(
        200,
        [("Content-Type", ctype), ("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff")],
        path.read_bytes(),
    )
