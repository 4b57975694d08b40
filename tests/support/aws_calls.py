"""One interceptor for every AWS API call the process makes, on botocore's event system.

Every botocore session registers the handlers listed in ``botocore.handlers.BUILTIN_HANDLERS`` when
it is created, and every client copies its session's handlers: so handlers added there once reach
every client created afterwards — the product's own (``orcapulse_tiktok.data.clients``), PynamoDB's
and Powertools' alike, from any session. moto reaches every client the same way. ``install()`` adds
them; it must run before the first client is created (``tests/conftest.py`` calls it on import, the
bench before its stacks start), and it is idempotent.

A :class:`Hook` is active inside ``intercepting(hook)`` and sees each call at three points:

- ``before(call)``: the request is built and about to be sent. This is outside botocore's retry
  loop, so raising here is a call that still failed after the SDK's retries; returning an
  :class:`Answer` answers the call without sending it (a replay).
- ``after(call, answer)``: the service answered (an error status included, after botocore's
  retries). The call took effect: raising here is an answer lost on its way back.
- ``failed(call, error)``: the call raised instead, at the transport or in another hook.

Hooks run in the order they were activated; ``after`` and ``failed`` in the reverse order, as
nested context managers unwind. A hook sees only the calls whose ``before`` it saw.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from botocore import handlers

# Where a call's state travels: the request context botocore hands to every event of one call.
_CONTEXT_KEY = "orcapulse_tests_aws_call"


def clocks() -> tuple[float, float]:
    """(wall, CPU) time now."""
    return time.perf_counter(), time.process_time()


@dataclass
class AwsCall:
    """One AWS API call: the service, the operation and the parameters as the caller passed them,
    and — once it is over — the wall and CPU time spent inside it."""

    service: str  # dynamodb, secretsmanager, events...
    operation: str  # PutItem, GetSecretValue...
    params: Mapping[str, Any]
    started: tuple[float, float] = field(default_factory=clocks)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    hooks: list[Hook] = field(default_factory=list, repr=False)  # those whose ``before`` ran

    @property
    def name(self) -> str:
        """``"<service>.<Operation>"``, e.g. ``dynamodb.PutItem``."""
        return f"{self.service}.{self.operation}"

    def _stop(self) -> None:
        wall, cpu = clocks()
        self.seconds, self.cpu_seconds = wall - self.started[0], cpu - self.started[1]


class Answer(NamedTuple):
    """What botocore received for a call: the HTTP response and its parsed body."""

    http: Any  # botocore.awsrequest.AWSResponse (anything with a ``status_code``)
    parsed: dict[str, Any]


class Hook:
    """Sees AWS calls while active (see the module docstring); every method is optional."""

    def before(self, call: AwsCall) -> Answer | None:
        """Before the request is sent: raise to fail the call, return an answer to replay one."""
        return None

    def after(self, call: AwsCall, answer: Answer) -> None:
        """After the service answered: raise to lose the answer of a call that took effect."""

    def failed(self, call: AwsCall, error: BaseException) -> None:
        """The call raised ``error`` instead of answering."""


_hooks: list[Hook] = []
_lock = threading.Lock()
_installed = False


@contextmanager
def intercepting[H: Hook](hook: H) -> Iterator[H]:
    """Make ``hook`` see every AWS call made inside the block, from any thread."""
    install()
    with _lock:
        _hooks.append(hook)
    try:
        yield hook
    finally:
        with _lock:
            # By identity: hooks that are dataclasses may compare equal.
            _hooks[:] = [h for h in _hooks if h is not hook]


def install() -> None:
    """Add the dispatching handlers to every botocore session created from now on."""
    global _installed
    with _lock:
        if _installed:
            return
        handlers.BUILTIN_HANDLERS.extend(
            [
                ("before-parameter-build", _on_parameters),
                ("before-call", _on_before_call),
                ("after-call", _on_after_call),
                ("after-call-error", _on_call_error),
            ]
        )
        _installed = True


# -- botocore's events -------------------------------------------------------------------------------
def _on_parameters(params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    # The first event of a call that carries the caller's own parameters (``before-call`` only
    # sees the serialised request).
    context[_CONTEXT_KEY] = AwsCall(model.service_model.service_name, model.name, dict(params))


def _on_before_call(model: Any, context: dict[str, Any], **_: Any) -> Answer | None:
    call: AwsCall | None = context.get(_CONTEXT_KEY)
    if call is None:
        call = context[_CONTEXT_KEY] = AwsCall(model.service_model.service_name, model.name, {})
    with _lock:
        active = list(_hooks)
    answer = None
    for hook in active:
        try:
            given = hook.before(call)
        except BaseException as error:
            call._stop()
            _failed(call, call.hooks, error)
            raise
        call.hooks.append(hook)
        answer = answer or given
    return answer


def _on_after_call(http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    call: AwsCall | None = context.get(_CONTEXT_KEY)
    if call is None:
        return
    call._stop()
    answer = Answer(http_response, parsed)
    pending = list(reversed(call.hooks))
    for n, hook in enumerate(pending):
        try:
            hook.after(call, answer)
        except BaseException as error:
            _failed(call, list(reversed(pending[n + 1 :])), error)
            raise


def _on_call_error(exception: BaseException, context: dict[str, Any], **_: Any) -> None:
    call: AwsCall | None = context.get(_CONTEXT_KEY)
    if call is not None:
        call._stop()
        _failed(call, call.hooks, exception)


def _failed(call: AwsCall, hooks: list[Hook], error: BaseException) -> None:
    for hook in reversed(hooks):
        hook.failed(call, error)


# -- small hooks several callers need -------------------------------------------------------------------
class OneAtATime(Hook):
    """Runs AWS calls one at a time across threads, each whole (its request and its answer), as
    DynamoDB applies each conditional write atomically where in-process moto does not."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def before(self, call: AwsCall) -> None:
        self._lock.acquire()

    def after(self, call: AwsCall, answer: Answer) -> None:
        self._lock.release()

    def failed(self, call: AwsCall, error: BaseException) -> None:
        self._lock.release()


@contextmanager
def one_at_a_time() -> Iterator[OneAtATime]:
    """AWS calls made inside the block run one at a time (see :class:`OneAtATime`)."""
    with intercepting(OneAtATime()) as hook:
        yield hook
