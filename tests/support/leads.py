"""Lead records for read-side tests, written through the shared ``Lead`` model exactly as the
webhook stores them (index keys filled by ``Lead.fill_index_keys``)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from orcapulse_tiktok import clock
from orcapulse_tiktok.models.integration import integration_id_for
from orcapulse_tiktok.models.lead import Author, Lead, lead_id_for, leads

from tests.support.events import claims, http_event, json_body

# The query parameters of GET /social-leads, in the order DESIGN.md and the OpenAPI document list them.
LISTING_PARAMETERS = (
    "platform",
    "capture_source",
    "status",
    "integration_id",
    "since",
    "until",
    "limit",
    "cursor",
)

BASE_MS = 1_790_000_000_000  # 2026-09-21T…Z; one lead per second after it unless told otherwise
_serial = itertools.count(1)


def integration_of(workspace_id: str, open_id: str = "open-id-alpha") -> str:
    return integration_id_for(workspace_id, open_id)


def build_lead(
    *,
    workspace_id: str = "ws-1",
    integration_id: str | None = None,
    platform: str = "tiktok",
    capture_source: str = "tiktok_comment",
    status: str = "new",
    captured_ms: int | None = None,
    message: str | None = None,
    high_intent: bool = False,
) -> Lead:
    """An unsaved lead with every index key filled; unique per call."""
    n = next(_serial)
    integration_id = integration_id or integration_of(workspace_id)
    captured_ms = BASE_MS + n * 1000 if captured_ms is None else captured_ms
    is_dm = capture_source.endswith("_dm") or capture_source.endswith("_message")
    object_key = f"{'msg' if is_dm else 'comment'}:{n}"
    source_ref: dict[str, Any] = (
        {"conversation_id": f"conv-{n}", "message_id": f"msg-{n}"}
        if is_dm
        else {"video_id": f"7{n:018d}", "comment_id": f"7{n + 1:018d}"}
    )
    lead = leads()(
        workspace_id,
        lead_id_for(integration_id, object_key),
        integration_id=integration_id,
        platform=platform,
        capture_source=capture_source,
        status=status,
        author=Author(id=f"author-{n}", username=f"user{n}"),
        message=message if message is not None else f"message {n}",
        source_ref=source_ref,
        high_intent=high_intent,
        source_state="present",
        captured_at=clock.iso(captured_ms / 1000),
        captured_ms=captured_ms,
        created_at=clock.iso(captured_ms / 1000 + 1),
        event_type="im_receive_msg" if is_dm else "comment.update",
    )
    lead.fill_index_keys()
    return lead


def make_lead(**fields: Any) -> Lead:
    """Build a lead (see ``build_lead``) and save it."""
    lead = build_lead(**fields)
    lead.save()
    return lead


def save_all(items: Iterable[Lead]) -> list[Lead]:
    """Save many leads with batch writes; returns them in the order given."""
    out = list(items)
    with leads().batch_write() as batch:
        for lead in out:
            batch.save(lead)
    return out


def ids(items: Iterable[Lead]) -> list[str]:
    """Lead ids newest first, as the listing orders them."""
    return [lead.lead_id for lead in sorted(items, key=lambda lead: lead.sort_key, reverse=True)]


@dataclass
class Call:
    operation: str
    params: dict[str, Any]


@contextmanager
def record_dynamodb_calls() -> Iterator[list[Call]]:
    """Every DynamoDB operation any client created inside the block issues.

    The hook goes into botocore's built-in handlers, which every new session (boto3's and
    PynamoDB's alike) registers; cached clients are dropped so the product creates new ones."""
    from botocore import handlers

    calls: list[Call] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append(Call(model.name, dict(params)))

    entry = ("before-parameter-build.dynamodb", record)
    handlers.BUILTIN_HANDLERS.append(entry)
    _forget_clients()
    try:
        yield calls
    finally:
        handlers.BUILTIN_HANDLERS.remove(entry)
        _forget_clients()


def _forget_clients() -> None:
    from orcapulse_tiktok.data import clients as aws
    from orcapulse_tiktok.models.integration import Integration

    aws.reset_clients()
    for model in (Lead, Integration):
        model._connection = None


class ReadApi:
    """The leads_query function, called with real-shaped HTTP API events."""

    def __init__(self, module: ModuleType, context: Any) -> None:
        self.module = module
        self.context = context

    def get(
        self,
        path: str,
        query: dict[str, str] | None = None,
        *,
        workspace: str | None = "ws-1",
        jwt_claims: dict[str, Any] | None = None,
        authorized: bool = True,
    ) -> dict[str, Any]:
        route, params = path, None
        if path.startswith("/social-leads/"):
            route, params = "/social-leads/{lead_id}", {"lead_id": path.removeprefix("/social-leads/")}
        if jwt_claims is None and authorized:
            jwt_claims = claims(workspace=workspace)
        event = http_event(
            "GET", path, route=route, path_parameters=params, query=query, jwt_claims=jwt_claims
        )
        response: dict[str, Any] = self.module.lambda_handler(event, self.context)
        return response

    def leads(self, workspace: str = "ws-1", **query: Any) -> tuple[int, Any]:
        response = self.get("/social-leads", {k: str(v) for k, v in query.items()}, workspace=workspace)
        return response["statusCode"], json_body(response)

    def page_through(self, workspace: str = "ws-1", **query: Any) -> tuple[list[str], list[int]]:
        """Every lead id the listing yields, following next_cursor to the end; and page sizes."""
        seen: list[str] = []
        sizes: list[int] = []
        cursor: str | None = None
        for _ in range(10_000):
            params = dict(query) if cursor is None else {**query, "cursor": cursor}
            status, body = self.leads(workspace, **params)
            assert status == 200, body
            seen.extend(item["lead_id"] for item in body["items"])
            sizes.append(len(body["items"]))
            cursor = body["next_cursor"]
            if cursor is None:
                return seen, sizes
        raise AssertionError("paging did not end")


@contextmanager
def dynamodb_fault(operation: str, code: str, status: int = 400) -> Iterator[list[str]]:
    """Answer every ``operation`` call of clients created inside the block with an AWS error,
    at the HTTP boundary (botocore still parses it and applies its retry policy)."""
    from botocore import handlers
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders

    seen: list[str] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        seen.append(operation)
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": code}).encode()
        return AWSResponse(request.url, status, HTTPHeaders.from_dict({"x-amzn-errortype": code}), _Raw(body))

    entry = (f"before-send.dynamodb.{operation}", answer)
    handlers.BUILTIN_HANDLERS.insert(0, entry)
    _forget_clients()
    try:
        yield seen
    finally:
        handlers.BUILTIN_HANDLERS.remove(entry)
        _forget_clients()


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body
