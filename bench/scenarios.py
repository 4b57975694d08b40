"""Round trips per request, and our own CPU time per webhook event, measured in-process: the
handlers run as Lambda would call them, against moto (AWS) and the fake TikTok of the test suite,
with every AWS and TikTok call recorded (``bench.recorder``).

Each route is measured twice: *cold* is the first request of a fresh container (nothing cached:
app credentials, clients, settings), *warm* is the steady state a busy function lives in. The
targets are about the warm path; the cold one shows what the per-container caches save.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.recorder import Recorder, Replay, Window
from tests.support.aws_calls import intercepting
from tests.support.functions import Functions


def offline_aws() -> None:
    """Fake credentials before any client exists (moto answers in-process), no profile or endpoint
    from the developer's shell, and tracing off (there is no X-Ray daemon here)."""
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "1",
        }
    )
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)


def configure_environment() -> None:
    """What the test suite's root conftest does: ``offline_aws`` and the functions' environment
    from the template."""
    offline_aws()
    from tests.support.deployment import TEST_ENVIRONMENT

    os.environ.update(TEST_ENVIRONMENT)


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send the functions' log lines and EMF metrics to /dev/null (they are still produced, so
    their cost is measured) and keep the bench's own output readable."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


@dataclass
class RouteCalls:
    route: str
    outcome: str  # what the handler answered, e.g. "200 accepted"
    expected: str
    cold: Window
    warm: Window

    @property
    def ok(self) -> bool:
        return self.outcome == self.expected


@dataclass
class Stack:
    """One running deployment: moto, the fake TikTok, the functions (loaded once, as warm
    containers keep them)."""

    state: Any
    fake: Any
    context: Any
    function: Functions = field(default_factory=lambda: Functions("bench"))
    serial: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def call(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.function(name).lambda_handler(event, self.context)
        return result


@contextlib.contextmanager
def running_stack(recorder: Recorder) -> Iterator[Stack]:
    """The test suite's AWS environment (moto with the template's tables, secrets and bus), the
    fake TikTok behind ``responses``."""
    import responses

    from orcapulse_local.tiktok_state import TikTokState
    from tests.conftest import aws_environment
    from tests.support.events import LambdaContext
    from tests.support.tiktok_fake import TikTokFake

    state = TikTokState()
    state.add_account("open-id-alpha", display_name="Alpha Shop")
    state.add_account("open-id-beta", display_name="Beta Store")
    with (
        aws_environment(state),
        responses.RequestsMock(assert_all_requests_are_fired=False) as mock,
        recorder.http(),
    ):
        stack = Stack(state=state, fake=TikTokFake(state, mock), context=LambdaContext())
        try:
            yield stack
        finally:
            stack.function.close()


def _new_container() -> None:
    from tests.conftest import reset_process_caches

    reset_process_caches()


def _status(response: dict[str, Any]) -> str:
    code = response.get("statusCode")
    try:
        body = json.loads(response.get("body") or "null")
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("status"), str):
        return f"{code} {body['status']}"
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return f"{code} {body['error'].get('code')}"
    location = str((response.get("headers") or {}).get("Location", ""))
    if "status=" in location:
        return f"{code} " + location.split("status=", 1)[1].split("&", 1)[0]
    return str(code)


def _measure(
    recorder: Recorder,
    route: str,
    expected: str,
    prepare: Callable[[], Callable[[], dict[str, Any]]],
) -> RouteCalls:
    """``prepare`` sets up one request and returns the call that makes it."""
    act = prepare()
    _new_container()
    with recorder.window() as cold:
        outcome = _status(act())
    prepare()()  # the container is warm from here on
    act = prepare()
    with recorder.window() as warm:
        outcome_warm = _status(act())
    return RouteCalls(
        route, outcome if outcome == outcome_warm else f"{outcome} / {outcome_warm}", expected, cold, warm
    )


# -- requests ---------------------------------------------------------------------------------------
def _connect(stack: Stack, workspace: str, open_id: str) -> str:
    from tests.support.connect import connect

    return connect(
        stack.function, stack.context, stack.fake, workspace=workspace, user="user-1", open_id=open_id
    )


def _comment(stack: Stack, open_id: str, *, action: str = "insert", comment_id: str | None = None) -> bytes:
    n = next(stack.serial)
    content = {
        "comment_id": comment_id or f"7{n:018d}",
        "video_id": "7300000000000000001",
        "parent_comment_id": "0",
        "comment_type": "comment",
        "comment_action": action,
        "text": f"How much is shipping to Lisbon? #{n}",
        "timestamp": int(time.time() * 1000),
        "unique_identifier": f"orca_fan_{n}",
    }
    body: bytes = stack.state.envelope("comment.update", open_id, content)
    return body


def _webhook_event(stack: Stack, body: bytes) -> dict[str, Any]:
    from tests.support.events import http_event

    return http_event(
        "POST", "/webhooks/tiktok", headers={"TikTok-Signature": stack.state.sign(body)}, body=body
    )


def webhook_routes(recorder: Recorder, stack: Stack) -> list[RouteCalls]:
    _connect(stack, "ws-bench", "open-id-alpha")

    def accepted() -> Callable[[], dict[str, Any]]:
        event = _webhook_event(stack, _comment(stack, "open-id-alpha"))
        return lambda: stack.call("webhook", event)

    def duplicate() -> Callable[[], dict[str, Any]]:
        event = _webhook_event(stack, _comment(stack, "open-id-alpha"))
        stack.call("webhook", event)
        redelivery = _webhook_event(stack, event["body"].encode())
        return lambda: stack.call("webhook", redelivery)

    def ignored() -> Callable[[], dict[str, Any]]:
        body = stack.state.envelope("video.publish.completed", "open-id-alpha", {"share_id": "v_pub_1"})
        event = _webhook_event(stack, body)
        return lambda: stack.call("webhook", event)

    def unknown_account() -> Callable[[], dict[str, Any]]:
        event = _webhook_event(stack, _comment(stack, "open-id-nobody"))
        return lambda: stack.call("webhook", event)

    return [
        _measure(recorder, "webhook: accepted (new comment)", "200 accepted", accepted),
        _measure(recorder, "webhook: duplicate (redelivery)", "200 duplicate", duplicate),
        _measure(recorder, "webhook: ignored (video event)", "200 ignored", ignored),
        _measure(recorder, "webhook: ignored (unknown account)", "200 ignored", unknown_account),
    ]


def oauth_routes(recorder: Recorder, stack: Stack) -> list[RouteCalls]:
    from tests.support.connect import CALLBACK_PATH, START_PATH, approve
    from tests.support.events import claims, http_event

    workspaces = (f"ws-oauth-{n}" for n in itertools.count(1))

    def start_event() -> dict[str, Any]:
        return http_event("GET", START_PATH, jwt_claims=claims(user="user-1", workspace=next(workspaces)))

    def start() -> Callable[[], dict[str, Any]]:
        event = start_event()
        return lambda: stack.call("oauth_start", event)

    def callback() -> Callable[[], dict[str, Any]]:
        params = approve(
            stack.function, stack.context, stack.fake, workspace=next(workspaces), open_id="open-id-beta"
        )
        event = http_event("GET", CALLBACK_PATH, query=params)
        return lambda: stack.call("oauth_callback", event)

    def disconnect() -> Callable[[], dict[str, Any]]:
        workspace = next(workspaces)
        integration_id = _connect(stack, workspace, "open-id-beta")
        event = http_event(
            "DELETE",
            f"/integrations/tiktok/{integration_id}",
            route="/integrations/tiktok/{integration_id}",
            path_parameters={"integration_id": integration_id},
            jwt_claims=claims(user="user-1", workspace=workspace),
        )
        return lambda: stack.call("disconnect", event)

    return [
        _measure(recorder, "oauth start", "200", start),
        _measure(recorder, "oauth callback", "302 connected", callback),
        _measure(recorder, "disconnect", "200", disconnect),
    ]


def leads_routes(recorder: Recorder, stack: Stack) -> list[RouteCalls]:
    from tests.support.events import claims, http_event, json_body

    workspace = "ws-leads"
    _connect(stack, workspace, "open-id-beta")
    for _ in range(60):
        stack.call("webhook", _webhook_event(stack, _comment(stack, "open-id-beta")))
    who = claims(user="user-1", workspace=workspace)
    # Bounded by a date before every lead (the same page as none; bench/leads_paging.py says why).
    query = {"limit": "25", "since": "2020-01-01T00:00:00Z"}

    def first_page() -> Callable[[], dict[str, Any]]:
        event = http_event("GET", "/social-leads", query=query, jwt_claims=who)
        return lambda: stack.call("leads_query", event)

    def next_page() -> Callable[[], dict[str, Any]]:
        page = json_body(
            stack.call("leads_query", http_event("GET", "/social-leads", query=query, jwt_claims=who))
        )
        event = http_event(
            "GET", "/social-leads", query={**query, "cursor": page["next_cursor"]}, jwt_claims=who
        )
        return lambda: stack.call("leads_query", event)

    return [
        _measure(recorder, "leads page (first)", "200", first_page),
        _measure(recorder, "leads page (next, with cursor)", "200", next_page),
    ]


@dataclass
class CpuResult:
    events: int
    median_ms: float  # our own CPU time, AWS calls answered by in-process moto
    p90_ms: float
    own_wall_median_ms: float  # the same from wall clocks (inflated when the machine is busy)
    wall_median_ms: float  # the whole invocation, AWS calls to in-process moto included
    aws_calls_per_event: float
    replayed_median_ms: float  # our own CPU time, AWS answers replayed from a recording


def webhook_cpu(recorder: Recorder, stack: Stack, events: int) -> CpuResult:
    """Our own CPU time per accepted event on a warm container: the invocation's CPU time minus the
    CPU time inside AWS calls (moto runs in-process, standing in for DynamoDB).

    Then the same again with each AWS call answered from a recording of moto's answers: nothing
    runs between our code's steps, so that figure is free of what the fake does to the CPU's
    caches and to the garbage collector (it is a diagnostic; the first figure is the measure)."""
    _connect(stack, "ws-cpu", "open-id-alpha")
    bodies = [_webhook_event(stack, _comment(stack, "open-id-alpha")) for _ in range(2 * events + 21)]
    for event in bodies[:20]:  # warm the container
        stack.call("webhook", event)
    own: list[float] = []
    own_wall: list[float] = []
    wall: list[float] = []
    calls = 0
    for event in bodies[20 : 20 + events]:
        with recorder.window() as window:
            response = stack.call("webhook", event)
        if _status(response) != "200 accepted":
            raise RuntimeError(f"webhook answered {_status(response)}")
        own.append(window.own_cpu_seconds * 1000)
        own_wall.append(window.own_seconds * 1000)
        wall.append(window.seconds * 1000)
        calls += len(window.aws)
    replayed = _replayed_cpu(recorder, stack, bodies[20 + events :])
    own.sort()
    return CpuResult(
        events=events,
        median_ms=statistics.median(own),
        p90_ms=own[int(len(own) * 0.9) - 1],
        own_wall_median_ms=statistics.median(own_wall),
        wall_median_ms=statistics.median(wall),
        aws_calls_per_event=calls / events,
        replayed_median_ms=replayed,
    )


def _replayed_cpu(recorder: Recorder, stack: Stack, bodies: list[dict[str, Any]]) -> float:
    """Our own CPU time per event, measured as ``webhook_cpu`` does, with AWS answers replayed."""
    times: list[float] = []
    with intercepting(Replay()) as replay:
        stack.call("webhook", bodies[0])
        replay.replaying = True
        for event in bodies[1:]:
            with recorder.window() as window:
                response = stack.call("webhook", event)
            times.append(window.own_cpu_seconds * 1000)
            if _status(response) != "200 accepted":
                raise RuntimeError(f"webhook answered {_status(response)}")
    return statistics.median(times)
