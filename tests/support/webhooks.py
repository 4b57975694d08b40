"""Webhook test helpers: signed TikTok deliveries shaped as TikTok documents them, an AWS call
recorder (a hook of ``tests.support.aws_calls``), the EventBridge capture (a rule on
the leads bus → an SQS queue) that shows what the pipeline really receives, the leads still
marked pending announcement, the scheduled announcement backstop, and a clock tests can move."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError, ReadTimeoutError

from orcapulse_local.tiktok_state import TikTokState
from tests.support.aws_calls import AwsCall, Hook, intercepting
from tests.support.events import http_event

WEBHOOK_PATH = "/webhooks/tiktok"
TIMEOUT = "timeout"  # a fault code: the call times out instead of answering an error
NOW_MS = 1764057600000  # 2025-11-25T08:00:00Z


# -- TikTok's documented event contents ---------------------------------------------------------
def comment_content(
    comment_id: int | str = 7321234567890123457,
    *,
    action: str = "insert",
    text: str = "How much is the orca plush? Do you ship to Lisbon?",
    timestamp: int | str = NOW_MS,
    unique_identifier: str = "orca_fan_88",
    video_id: int | str = 7300000000000000001,
    parent_comment_id: int | str = 7300000000000000001,
) -> dict[str, Any]:
    """``comment.update`` content."""
    return {
        "comment_id": comment_id,
        "video_id": video_id,
        "parent_comment_id": parent_comment_id,
        "comment_type": "comment",
        "comment_action": action,
        "text": text,
        "timestamp": timestamp,
        "unique_identifier": unique_identifier,
    }


def message_content(
    message_id: int | str = "7400000000000000042",
    *,
    text: str = "Hi! Is the large orca plush back in stock?",
    timestamp: int = NOW_MS + 5000,
) -> dict[str, Any]:
    """``im_receive_msg`` content."""
    return {
        "conversation_id": "0:1:7399999999999999999:7388888888888888888",
        "message_id": message_id,
        "timestamp": timestamp,
        "type": "text",
        "text": {"body": text},
        "from": "lisbon_buyer",
        "from_user": {"id": "7399999999999999999"},
        "to": "alpha_shop",
        "to_user": {"id": "7388888888888888888"},
    }


def high_intent_content(
    comment_id: int | str = 7321234567890123457,
    *,
    text: str = "How much is the orca plush? Do you ship to Lisbon?",
    timestamp: int = NOW_MS + 1000,
) -> dict[str, Any]:
    """``im_receive_high_intent_comment`` content."""
    return {
        "comment_id": comment_id,
        "comment_text": text,
        "unique_identifier": "orca_fan_88",
        "is_follower": True,
        "timestamp": timestamp,
    }


# -- delivering -----------------------------------------------------------------------------------
@dataclass
class Webhook:
    """Calls the webhook handler the way API Gateway does when TikTok posts."""

    module: Any
    context: Any
    state: TikTokState

    def post(
        self,
        body: bytes | str | None,
        headers: dict[str, str] | None = None,
        *,
        base64_body: bool = False,
    ) -> dict[str, Any]:
        event = http_event("POST", WEBHOOK_PATH, headers=headers, body=body, base64_body=base64_body)
        response: dict[str, Any] = self.module.lambda_handler(event, self.context)
        return response

    def signed(
        self, body: bytes, *, timestamp: int | None = None, secret: str | None = None
    ) -> dict[str, str]:
        if secret is not None:
            state = TikTokState(client_secret=secret)
            return {"TikTok-Signature": state.sign(body, timestamp)}
        return {"TikTok-Signature": self.state.sign(body, timestamp)}

    def deliver(
        self, event: str, open_id: str, content: dict[str, Any], *, create_time: int | None = None
    ) -> dict[str, Any]:
        body = self.state.envelope(event, open_id, content, create_time=create_time)
        return self.post(body, self.signed(body))

    def deliver_body(self, body: bytes) -> dict[str, Any]:
        return self.post(body, self.signed(body))


def status_of(response: dict[str, Any]) -> tuple[int, str]:
    """(HTTP status, ``status`` or ``error.code``) of a webhook response."""
    body = json.loads(response["body"])
    return response["statusCode"], body.get("status") or body["error"]["code"]


# -- AWS call recording and fault injection -------------------------------------------------------
@dataclass
class AwsCalls(Hook):
    """Every AWS API call made by the product, as ``"<service>.<Operation>"`` — boto3's, PynamoDB's
    and Powertools' clients alike."""

    calls: list[str] = field(default_factory=list)
    faults: dict[str, list[str | None]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def before(self, call: AwsCall) -> None:
        with self.lock:
            self.calls.append(call.name)
            pending = self.faults.get(call.name)
            code = pending.pop(0) if pending else None
        if code == TIMEOUT:
            raise ReadTimeoutError(endpoint_url=f"https://{call.service}.amazonaws.com/")
        if code is not None:
            raise ClientError({"Error": {"Code": code, "Message": "injected fault"}}, call.operation)

    def fail_next(self, call: str, code: str = "InternalServerError", times: int = 1, after: int = 0) -> None:
        """Make ``times`` calls of ``call`` (e.g. ``dynamodb.PutItem``) fail with ``code`` (or time
        out, with ``TIMEOUT``), after letting the next ``after`` through."""
        with self.lock:
            self.faults.setdefault(call, []).extend([None] * after + [code] * times)

    @contextmanager
    def measure(self) -> Iterator[list[str]]:
        """The calls made inside the block."""
        start = len(self.calls)
        out: list[str] = []
        yield out
        out.extend(self.calls[start:])


@contextmanager
def recording_aws_calls() -> Iterator[AwsCalls]:
    """Record (and fail, on request) the AWS calls made inside the block, each function starting
    in a cold container: the clients and caches the product kept are dropped on the way in and out."""
    from tests.conftest import reset_process_caches

    reset_process_caches()
    try:
        with intercepting(AwsCalls()) as recorder:
            yield recorder
    finally:
        reset_process_caches()


# -- what reached the event bus -------------------------------------------------------------------
class BusCapture:
    """A rule on the leads bus matching ``SocialLeadCaptured`` with an SQS queue as target."""

    def __init__(self, bus_name: str, region: str = "us-east-1") -> None:
        self.bus_name = bus_name
        self.events = boto3.client("events", region_name=region)
        self.sqs = boto3.client("sqs", region_name=region)
        self.queue_url = self.sqs.create_queue(QueueName="social-leads-capture")["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.attach()

    def attach(self) -> None:
        """(Re)create the rule and its target, e.g. after the bus was deleted and recreated."""
        self.events.put_rule(
            Name="capture-social-leads",
            EventBusName=self.bus_name,
            EventPattern=json.dumps(
                {"source": ["orcapulse.social-leads"], "detail-type": ["SocialLeadCaptured"]}
            ),
        )
        self.events.put_targets(
            Rule="capture-social-leads",
            EventBusName=self.bus_name,
            Targets=[{"Id": "queue", "Arn": self.queue_arn}],
        )

    def received(self, wait_seconds: float = 0.0) -> list[dict[str, Any]]:
        """Every event delivered since the last call (each one once)."""
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + wait_seconds
        while True:
            page = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = page.get("Messages", [])
            for message in messages:
                out.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            if not messages and time.monotonic() >= deadline:
                return out

    def lead_ids(self, wait_seconds: float = 0.0) -> list[str]:
        """The ``detail.lead_id`` of every event delivered since the last call, sorted."""
        return sorted(event["detail"]["lead_id"] for event in self.received(wait_seconds))


def pending_announcements(items: list[dict[str, Any]]) -> dict[str, int]:
    """Lead id → ``announce_due_at`` (epoch ms) of the leads still marked pending announcement,
    from the raw items of the leads table."""
    return {
        item["lead_id"]["S"]: int(item["announce_due_at"]["N"])
        for item in items
        if "announce_pending" in item
    }


# -- the scheduled backstop and time ----------------------------------------------------------------
class MovableClock:
    """``orcapulse_tiktok.clock.now`` as real time plus an offset the test moves forward. TikTok
    signs with the real time, so an offset inside the signature window (300 s) keeps deliveries
    valid."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
