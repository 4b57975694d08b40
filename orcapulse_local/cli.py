"""``python -m orcapulse_local`` — serve, token, webhook, demo."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import Any

import requests

from orcapulse_local import config
from orcapulse_local.lambda_runtime import print_sink
from orcapulse_local.serving import PortInUseError


def _use_local_aws() -> None:
    # This process talks to moto only: fake keys, no profile, so nothing can reach a real account.
    os.environ.update(config.AWS_CREDENTIALS)
    os.environ.update({"AWS_REGION": config.REGION, "AWS_DEFAULT_REGION": config.REGION})
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)


def banner(stack: Any) -> str:
    api, tiktok, aws = stack.api_url, stack.tiktok_url, stack.aws_url
    ordered = sorted(stack.gateway.routes.routes, key=lambda r: (r.path, r.method))
    routes = "\n".join(
        f"    {r.method:<7}{r.path:<44}{r.function:<28}{'JWT' if r.authorized else 'public'}" for r in ordered
    )
    sources = [f"{e.key} ← the stream of {e.table}" for e in stack.streams.events.values()]
    paused = "" if stack.run_schedules else " (not run: --no-schedules)"
    sources += [f"{s.function} {s.expression}{paused}" for s in stack.scheduler.entries.values()]
    triggers = "\n                        ".join(sources) or "none"
    return f"""
OrcaPulse local stack is up — no AWS account, no Docker.

  Console (front end)   {api}/
  HTTP API (gateway)    {api}            every HttpApi route of template.yaml:
{routes}
  TikTok emulator       {tiktok}            consent page {tiktok}/v2/auth/authorize/
  AWS endpoint (moto)   {aws}            AWS_ENDPOINT_URL={aws}
  Event sources         {triggers}

  Local TikTok app      client_key={config.LOCAL_CLIENT_KEY}
                        client_secret={config.LOCAL_CLIENT_SECRET}   (local constant, not a secret)
  Dev token             make token [WORKSPACE={config.DEFAULT_WORKSPACE} USER={config.DEFAULT_USER}]
                        curl -H "Authorization: Bearer $(make -s token)" {api}/integrations
  Test webhook          make webhook EVENT=comment|dm|high_intent|removed [OPEN_ID=] [TEXT=] [AUTHOR=]
  The whole story       make demo

Function logs follow, tagged with the function. Press Ctrl-C to stop.
"""


def pretty_sink(function: str, line: str) -> None:
    """``LOG_FORMAT=pretty``: a function's JSON log line at WARNING or above shortened to its level
    and message, quieter ones left out; other output (tracebacks, prints) as it is."""
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        print_sink(function, line)
    elif str(record.get("level", "")).upper() in ("WARNING", "ERROR", "CRITICAL"):
        print_sink(function, f"{record['level']} {record.get('message', '')}")


def serve(args: argparse.Namespace) -> int:
    from orcapulse_local.stack import LocalStack

    _use_local_aws()
    ports = config.Ports.from_env()
    pretty = os.environ.get("LOG_FORMAT", "").lower() == "pretty"
    access = (
        (lambda server, line: print(f"[{server}] {line}", file=sys.stderr, flush=True))
        if args.access_log or pretty
        else None
    )
    stack = LocalStack(
        ports,
        access_log=access,
        log_sink=pretty_sink if pretty else print_sink,
        run_schedules=not args.no_schedules,
    )
    try:
        stack.start()
    except PortInUseError as exc:
        print(f"Could not start the local stack: {exc.strerror}.", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"Could not start the local stack: {exc}.", file=sys.stderr)
        return 1
    print(banner(stack), flush=True)
    stopping = threading.Event()

    def stop(signum: int, _frame: Any) -> None:
        if stopping.is_set():
            os._exit(130)  # a second Ctrl-C: do not wait for anything
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    stopping.wait()  # the main thread runs the handlers: a signal interrupts the wait
    print("\nStopping the local stack…", flush=True)
    stack.stop()
    print("Stopped.", flush=True)
    return 0


def token(args: argparse.Namespace) -> int:
    from orcapulse_local.dev_tokens import mint

    print(mint(workspace=args.workspace or None, user=args.user, ttl_seconds=args.ttl))
    return 0


def _post(url: str, document: dict[str, Any]) -> tuple[int, Any]:
    resp = requests.post(url, json=document, timeout=30)
    return resp.status_code, resp.json() if resp.content else None


def webhook(args: argparse.Namespace) -> int:
    tiktok = config.url(config.port_from_env("tiktok"))
    path = f"/local/webhooks/{args.redeliver}/redeliver" if args.redeliver else "/local/webhooks"
    try:
        document = {"event": args.event, "open_id": args.open_id, "text": args.text}
        status, body = _post(tiktok + path, {**document, **({"author": args.author} if args.author else {})})
    except requests.RequestException as exc:
        print(
            f"The TikTok emulator at {tiktok} is not answering ({exc}). Start the stack with `make local`.",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(body, indent=2))
    if status != 200:
        return 1
    if (body.get("response") or {}).get("status") == "ignored":
        print(
            "(ignored: no active integration has this account — connect it in the console first)",
            file=sys.stderr,
        )
    return 0 if body.get("status") == 200 else 2


def register_webhooks(args: argparse.Namespace) -> int:
    """The operator command (scripts/register_webhooks.py) run against the running local stack:
    its moto holds the Business app's secret, its emulator is TikTok API for Business, and the
    gateway's ``/webhooks/tiktok`` is the URL registered."""
    import runpy

    from orcapulse_local.stack import WEBHOOK_PATH, app_secret_logical_id
    from orcapulse_local.template import ROOT, deployment_context, load_template, resolve

    api = config.url(config.port_from_env("api"))
    if not _is_local_stack(api):
        print(f"No local stack answers at {api}. Start it with `make local`.", file=sys.stderr)
        return 1
    template = load_template()
    ctx = deployment_context(template, config.stack_parameters(api), region=config.REGION)
    logical = app_secret_logical_id(template, "TIKTOK_BUSINESS_APP_SECRET_ID")
    if logical is None:
        print("template.yaml names no TIKTOK_BUSINESS_APP_SECRET_ID", file=sys.stderr)
        return 1
    _use_local_aws()
    os.environ["AWS_ENDPOINT_URL"] = config.url(config.port_from_env("aws"))
    sys.path.insert(0, str(ROOT / "layers" / "common"))
    script = runpy.run_path(str(ROOT / "scripts" / "register_webhooks.py"))
    name = str(resolve(template["Resources"][logical]["Properties"]["Name"], ctx))
    tiktok = config.url(config.port_from_env("tiktok"))
    result: int = script["main"](["--url", api + WEBHOOK_PATH, "--secret-id", name, "--api-base-url", tiktok])
    return result


def demo(args: argparse.Namespace) -> int:
    from orcapulse_local.demo import run_demo

    api = config.url(config.port_from_env("api"))
    if _is_local_stack(api):
        return 0 if run_demo(api) else 1
    from orcapulse_local.stack import LocalStack

    _use_local_aws()
    print(f"No local stack answers at {api}: starting one for the demo (on free ports)…")
    with LocalStack(config.Ports.ephemeral(), log_sink=None, run_schedules=False) as stack:
        return 0 if run_demo(stack.api_url) else 1


def _is_local_stack(api: str) -> bool:
    try:
        return bool(requests.get(f"{api}/local/health", timeout=2).json().get("service") == "orcapulse-local")
    except (requests.RequestException, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orcapulse_local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("serve", help="run the local stack in the foreground (make local)")
    p.add_argument("--access-log", action="store_true", help="log every request (LOG_FORMAT=pretty does too)")
    p.add_argument("--no-schedules", action="store_true", help="do not run scheduled functions")
    p.set_defaults(func=serve)

    p = commands.add_parser("token", help="print a dev JWT for the local gateway (make token)")
    p.add_argument("--workspace", default=config.DEFAULT_WORKSPACE, help="'' leaves the claim out")
    p.add_argument("--user", default=config.DEFAULT_USER)
    p.add_argument("--ttl", type=int, default=config.DEV_TOKEN_TTL_SECONDS, help="lifetime in seconds")
    p.set_defaults(func=token)

    p = commands.add_parser("webhook", help="send a signed TikTok webhook event (make webhook)")
    p.add_argument("--event", choices=("comment", "dm", "high_intent", "removed"), default="comment")
    p.add_argument("--open-id", default="", help="the account; default: the last one approved")
    p.add_argument("--text", default="")
    p.add_argument("--author", default="", help="who writes (the same author is the same person)")
    p.add_argument("--redeliver", default="", help="send this delivery id again (a duplicate)")
    p.set_defaults(func=webhook)

    p = commands.add_parser(
        "register-webhooks", help="register the local webhook URL with the emulated Business app"
    )
    p.set_defaults(func=register_webhooks)

    p = commands.add_parser("demo", help="connect → leads → disconnect, step by step (make demo)")
    p.set_defaults(func=demo)

    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result
