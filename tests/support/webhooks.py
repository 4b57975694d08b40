"""Webhook test helpers: signed TikTok deliveries shaped as TikTok documents them, an AWS call
recorder (a hook of ``tests.support.aws_calls``), the EventBridge capture (a rule on
the leads bus → an SQS queue) that shows what the pipeline really receives, the leads still
marked pending announcement, the scheduled announcement backstop, and a clock tests can move."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError, ReadTimeoutError

from orcapulse_local.streams import StreamSource, filter_patterns
from orcapulse_local.template import function_spec
from orcapulse_local.tiktok_state import TikTokState
from tests.support.aws_calls import Answer, AwsCall, Hook, intercepting
from tests.support.deployment import TEMPLATE
from tests.support.events import http_event

WEBHOOK_PATH = "/webhooks/tiktok"
TIMEOUT = "timeout"  # a fault code: the call times out instead of answering an error
LOST = "lost"  # a fault code: the call takes effect, then its answer is lost (a read timeout)
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
    sender: str = "lisbon_buyer",
    sender_id: str = "7399999999999999999",
) -> dict[str, Any]:
    """``im_receive_msg`` content."""
    return {
        "conversation_id": f"0:1:{sender_id}:7388888888888888888",
        "message_id": message_id,
        "timestamp": timestamp,
        "type": "text",
        "text": {"body": text},
        "from": sender,
        "from_user": {"id": sender_id},
        "to": "alpha_shop",
        "to_user": {"id": "7388888888888888888"},
    }


def high_intent_content(
    comment_id: int | str = 7321234567890123457,
    *,
    text: str = "How much is the orca plush? Do you ship to Lisbon?",
    timestamp: int = NOW_MS + 1000,
    unique_identifier: str = "orca_fan_88",
) -> dict[str, Any]:
    """``im_receive_high_intent_comment`` content."""
    return {
        "comment_id": comment_id,
        "comment_text": text,
        "unique_identifier": unique_identifier,
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
    losing: list[str] = field(default_factory=list)

    def before(self, call: AwsCall) -> None:
        with self.lock:
            self.calls.append(call.name)
            pending = self.faults.get(call.name)
            code = pending.pop(0) if pending else None
            if code == LOST:
                self.losing.append(call.name)
                return
        if code == TIMEOUT:
            raise ReadTimeoutError(endpoint_url=f"https://{call.service}.amazonaws.com/")
        if code is not None:
            raise ClientError({"Error": {"Code": code, "Message": "injected fault"}}, call.operation)

    def after(self, call: AwsCall, answer: Answer) -> None:
        with self.lock:
            if call.name not in self.losing:
                return
            self.losing.remove(call.name)
        # The call took effect; its answer is lost on the way back.
        raise ReadTimeoutError(endpoint_url=f"https://{call.service}.amazonaws.com/")

    def lose_next(self, call: str) -> None:
        """Let the next ``call`` take effect, then lose its answer (a read timeout after the write)."""
        self.fail_next(call, LOST)

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
    """A rule on the leads bus matching the lead events (``SocialLeadCaptured``,
    ``SocialLeadActivity``, ...) with an SQS queue as target. ``pump`` delivers the leads table's
    pending stream records to the lead publisher first, as Lambda's event source mapping would."""

    def __init__(
        self, bus_name: str, region: str = "us-east-1", *, pump: Callable[[], Any] | None = None
    ) -> None:
        self.bus_name = bus_name
        self.pump = pump
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
            EventPattern=json.dumps({"source": ["orcapulse.social-leads"]}),
        )
        self.events.put_targets(
            Rule="capture-social-leads",
            EventBusName=self.bus_name,
            Targets=[{"Id": "queue", "Arn": self.queue_arn}],
        )

    def received(self, wait_seconds: float = 0.0) -> list[dict[str, Any]]:
        """Every event delivered since the last call (each one once)."""
        if self.pump is not None:
            self.pump()
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


def lead_stream(table_name: str, handler: Callable[[dict[str, Any]], Any]) -> StreamSource:
    """The leads table's stream feeding ``handler`` (the lead publisher), filtered as the template's
    event source mapping filters it."""
    spec = function_spec(TEMPLATE, "LeadPublisherFunction")
    props = spec["Events"]["LeadsStream"]["Properties"]
    return StreamSource(
        boto3.client("dynamodb", region_name="us-east-1"),
        boto3.client("dynamodbstreams", region_name="us-east-1"),
        table_name,
        handler,
        patterns=filter_patterns(props),
        batch_size=int(props.get("BatchSize", 100)),
    )


def stored_leads(aws: Any) -> list[dict[str, Any]]:
    """Every lead (person) in the leads table as the API shows it, by workspace and id."""
    from orcapulse_tiktok.models.lead import Lead

    leads = (Lead.from_raw_data(item).to_public() for item in lead_items(aws.items("LeadsTable")))
    return sorted(leads, key=lambda lead: (lead["workspace_id"], lead["lead_id"]))


def stored_interactions(aws: Any, lead_id: str | None = None) -> list[dict[str, Any]]:
    """Every interaction (of one lead, if given) as the API shows it, oldest first."""
    from orcapulse_tiktok.models.lead import Interaction

    found = [Interaction.from_raw_data(item) for item in interaction_items(aws.items("LeadsTable"))]
    return [
        i.to_public()
        for i in sorted(found, key=lambda i: i.ix_time)
        if lead_id is None or i.lead_id == lead_id
    ]


def archived_deliveries(aws: Any) -> list[dict[str, Any]]:
    """The delivery archive's delivery items (``DeliveriesTable``, lead references apart)."""
    return [i for i in aws.items("DeliveriesTable") if i["sk"]["S"] == "D"]


def quarantined_deliveries(aws: Any) -> list[str]:
    """The ids of the quarantined deliveries in the archive."""
    return [i["pk"]["S"].removeprefix("D#") for i in archived_deliveries(aws) if "quarantine" in i]


def archived_lead_refs(aws: Any) -> set[str]:
    """The lead ids the archive's references name (``R#<lead_id>`` → a delivery that touched it)."""
    return {
        i["pk"]["S"].removeprefix("R#") for i in aws.items("DeliveriesTable") if i["pk"]["S"].startswith("R#")
    }


def leads_finding(aws: Any, delivery_id: str) -> set[str]:
    """The leads whose erasure finds the delivery: named by one of their interactions (the usual
    delivery) or by a reference item."""
    named = {
        i["lead_id"]["S"]
        for i in interaction_items(aws.items("LeadsTable"))
        if i.get("delivery_id", {}).get("S") == delivery_id
    }
    refs = {
        i["pk"]["S"].removeprefix("R#")
        for i in aws.items("DeliveriesTable")
        if i["pk"]["S"].startswith("R#") and i["sk"]["S"] == delivery_id
    }
    return named | refs


def lead_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lead items among the leads table's raw items (not interactions)."""
    return [item for item in items if item["sk"]["S"] == "L"]


def interaction_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The interaction items among the leads table's raw items."""
    return [item for item in items if item["sk"]["S"].startswith("I#")]


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
