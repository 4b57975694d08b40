"""moto as a server — the AWS endpoint of the local functions — and the resources of
``template.yaml`` created in it: tables (with their streams and TTL), event buses, queues and
secrets, named as CloudFormation would name them for the local stage."""

from __future__ import annotations

import json
import logging
import secrets
import string
import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
import requests
from botocore.config import Config

from orcapulse_local import config
from orcapulse_local.serving import bind
from orcapulse_local.template import Context, create_table_kwargs, resolve, resources_of_type

# Every event put on a template bus is copied to this queue, so the demo and the console can show
# what the product announced. Local only: the template has no such rule.
BUS_TAP_SUFFIX = "-local-tap"

_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
)


class _OneDynamoDBCallAtATime:
    """WSGI middleware: DynamoDB (and its streams) answer one request at a time.

    DynamoDB applies each write to an item atomically, its condition included; moto evaluates a
    ``ConditionExpression`` and then writes, with nothing in between held, so two concurrent
    conditional updates of one item can both pass. The product's idempotency rests on those
    conditions (a racing redelivery must find the interaction counted), so the local endpoint
    serialises DynamoDB calls rather than let them interleave. Other services run concurrently."""

    _TARGETS = ("DynamoDB_20120810.", "DynamoDBStreams_20120810.")

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(self._TARGETS):
            return self.app(environ, start_response)
        with self.lock:
            # moto's answer is built by the time the call returns: nothing is read lazily after.
            return list(self.app(environ, start_response))


class AwsServer:
    """moto's server on ``host:port`` (port 0 takes a free one), in a thread of this process."""

    def __init__(self, host: str = config.HOST, port: int = 0):
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from moto.server import ThreadedMotoServer
        from werkzeug.serving import make_server

        class Server(ThreadedMotoServer):
            # moto's own entry point, with DynamoDB's write atomicity restored (see above).
            def _server_entry(self) -> None:
                app = _OneDynamoDBCallAtATime(DomainDispatcherApplication(create_backend_app))
                self._server = make_server(
                    self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
                )
                self._server_ready_event.set()
                self._server.serve_forever()

        # moto's request log would drown the functions' own logs.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = Server(ip_address=host, port=port, verbose=False)
        self.url = ""
        self._started = False

    def start(self) -> str:
        if self._server._port:
            # moto binds in its own thread and would hang on a busy port: find out first.
            bind(self._server._ip_address, self._server._port, "aws").close()
        self._server.start()
        self._started = True
        host, port = self._server.get_host_and_port()
        self.url = config.url(port, host)
        # moto keeps its state per process, not per server: a stack started after another one in
        # the same process (a test run) must not find the previous stack's tables and secrets.
        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()
        return self.url

    def stop(self) -> None:
        """Stop moto's server, if it started (moto's stop() fails on one that never did)."""
        if self._started:
            self._server.stop()


def client(service: str, endpoint_url: str) -> Any:
    """A boto3 client for the local endpoint (explicit fake credentials: never a real account)."""
    return boto3.session.Session(
        aws_access_key_id=config.AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=config.AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=config.AWS_CREDENTIALS["AWS_SESSION_TOKEN"],
        region_name=config.REGION,
    ).client(service, endpoint_url=endpoint_url, config=Config(retries={"max_attempts": 2}))  # type: ignore[call-overload]


@dataclass
class Provisioned:
    """What :func:`provision` created, by logical id."""

    tables: dict[str, str] = field(default_factory=dict)
    streams: dict[str, str] = field(default_factory=dict)  # table logical id → real stream ARN
    buses: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)  # logical id → queue URL
    secrets: dict[str, str] = field(default_factory=dict)
    buckets: dict[str, str] = field(default_factory=dict)
    bus_taps: dict[str, str] = field(default_factory=dict)  # bus name → tap queue URL


def generated_secret(spec: dict[str, Any]) -> str:
    """A value as CloudFormation's ``GenerateSecretString`` would make it."""
    length = int(spec.get("PasswordLength", 32))
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += "!#$%&()*+,-.:;<=>?[]^_{|}~"
    alphabet = "".join(c for c in alphabet if c not in str(spec.get("ExcludeCharacters", "")))
    value = "".join(secrets.choice(alphabet) for _ in range(length))
    template = spec.get("SecretStringTemplate")
    if template is None:
        return value
    data = json.loads(template)
    data[spec["GenerateStringKey"]] = value
    return json.dumps(data)


def provision(
    template: dict[str, Any],
    ctx: Context,
    endpoint_url: str,
    *,
    secret_values: dict[str, str] | None = None,
    tap_buses: bool = True,
) -> Provisioned:
    """Create the template's data resources in the local endpoint. ``secret_values`` replaces the
    value of a secret by logical id (the TikTok app secret holds the local app's credentials)."""
    out = Provisioned()
    ddb = client("dynamodb", endpoint_url)
    for logical, spec in resources_of_type(template, "AWS::DynamoDB::Table").items():
        kwargs = create_table_kwargs(spec["Properties"], ctx)
        described = ddb.create_table(**kwargs)["TableDescription"]
        out.tables[logical] = kwargs["TableName"]
        if described.get("LatestStreamArn"):
            out.streams[logical] = described["LatestStreamArn"]
        ttl = resolve(spec["Properties"].get("TimeToLiveSpecification"), ctx)
        if ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(
                TableName=kwargs["TableName"],
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )

    sqs = client("sqs", endpoint_url)
    for logical, spec in resources_of_type(template, "AWS::SQS::Queue").items():
        props = resolve(spec.get("Properties", {}), ctx)
        attributes = {k: str(props[k]) for k in _QUEUE_ATTRIBUTES if k in props}
        out.queues[logical] = sqs.create_queue(QueueName=props["QueueName"], Attributes=attributes)[
            "QueueUrl"
        ]

    s3 = client("s3", endpoint_url)
    for logical, spec in resources_of_type(template, "AWS::S3::Bucket").items():
        name = resolve(spec["Properties"]["BucketName"], ctx)
        s3.create_bucket(Bucket=name)
        out.buckets[logical] = name

    events = client("events", endpoint_url)
    for logical, spec in resources_of_type(template, "AWS::Events::EventBus").items():
        name = resolve(spec["Properties"]["Name"], ctx)
        events.create_event_bus(Name=name)
        out.buses[logical] = name
        if tap_buses:
            out.bus_taps[name] = _tap(events, sqs, name)

    sm = client("secretsmanager", endpoint_url)
    for logical, spec in resources_of_type(template, "AWS::SecretsManager::Secret").items():
        props = spec.get("Properties", {})
        name = resolve(props["Name"], ctx)
        if secret_values and logical in secret_values:
            value = secret_values[logical]
        elif "SecretString" in props:
            value = str(resolve(props["SecretString"], ctx))
        else:
            value = generated_secret(props.get("GenerateSecretString", {}))
        sm.create_secret(Name=name, SecretString=value, Description=str(props.get("Description", "")))
        out.secrets[logical] = name
    return out


def _tap(events: Any, sqs: Any, bus: str) -> str:
    queue_name = f"{bus}{BUS_TAP_SUFFIX}"
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"{bus}-local-tap"
    events.put_rule(
        Name=rule,
        EventBusName=bus,
        EventPattern=json.dumps({"account": [config.ACCOUNT_ID]}),
        State="ENABLED",
    )
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "local-tap", "Arn": arn}])
    return str(queue_url)


def drain_bus_tap(endpoint_url: str, queue_url: str, max_messages: int = 100) -> list[dict[str, Any]]:
    """Take the events copied from a bus since the last call (the queue is emptied)."""
    sqs = client("sqs", endpoint_url)
    out: list[dict[str, Any]] = []
    while len(out) < max_messages:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = batch.get("Messages", [])
        if not messages:
            return out
        for message in messages:
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return out
