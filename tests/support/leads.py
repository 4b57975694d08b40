"""People (leads) and their interactions for read-side tests.

Two ways to seed, producing the same items:

- ``record(capture(...))`` goes through the real capture path (``interactions.record``): a
  conditional put of the interaction and the lead upsert, exactly as the webhook writes them. Use
  it wherever a test can afford two writes per interaction (a few hundred interactions).
- ``person_items(capture(...))`` builds the raw DynamoDB items of a person with that one
  interaction — ``lead_item`` (what ``touch_lead`` writes when it creates a lead) and
  ``interaction_item`` (what ``put_interaction`` writes) — for ``put_items`` (``BatchWriteItem``,
  25 at a time). That is how the cost tests and ``bench/leads_paging`` seed thousands of leads.
  ``test_leads_seeding`` checks that both ways store identical items.

For read-side tests that need many leads in given states, ``set_lifecycle`` and ``mark_merged``
change a stored lead with one raw UpdateItem, bumping its ``version`` as DESIGN §9 says every
change does (no history, no event: the product's own paths, PATCH, the pipeline's decisions and
the merge route, are driven through ``tests.support.lifecycle``). ``mark_merged`` is what a merge's
first step does to a source.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
from orcapulse_tiktok import clock, people
from orcapulse_tiktok.data.leads import _short as counted_id  # the lead's idempotency set holds these
from orcapulse_tiktok.interactions import Capture, interaction_of
from orcapulse_tiktok.interactions import record as record_capture
from orcapulse_tiktok.models.integration import integration_id_for
from orcapulse_tiktok.models.lead import (
    LEAD_SK,
    Lead,
    expires_at,
    lead_pk,
    leads,
    time_key,
)
from orcapulse_tiktok.schemas import LIST_PARAMETERS

from tests.support.events import claims, http_event, json_body

# The query parameters of GET /social-leads, in the order DESIGN.md and the OpenAPI document list them.
LISTING_PARAMETERS = LIST_PARAMETERS

BASE_MS = 1_790_000_000_000  # 2026-09-21T14:13:20Z; one interaction per second after it unless told
SOURCES = {
    "comment": "tiktok_comment",
    "high_intent_comment": "tiktok_comment",
    "dm": "tiktok_dm",
    "lead_form": "tiktok_lead_form",
}
_serial = itertools.count(1)


def integration_of(workspace_id: str, open_id: str = "open-id-alpha") -> str:
    """The integration id connecting ``open_id`` to ``workspace_id`` gets."""
    return integration_id_for(workspace_id, open_id)


def capture(
    person: str | None = None,
    *,
    workspace_id: str = "ws-1",
    integration_id: str | None = None,
    kind: str = "comment",
    at_ms: int | None = None,
    message: str | None = None,
    high_intent: bool | None = None,
    object_id: str | None = None,
) -> Capture:
    """One interaction of ``person`` (a TikTok handle; a new person per call when omitted), shaped
    as ``capture.py`` reads it from a TikTok event. Unique TikTok object per call unless
    ``object_id`` names one (a redelivery)."""
    n = next(_serial)
    person = person or f"person_{n}"
    at_ms = BASE_MS + n * 1000 if at_ms is None else at_ms
    object_id = object_id or f"7{n:018d}"
    if kind == "dm":
        object_key = f"dm:{object_id}"
        source_ref = {"conversation_id": f"0:1:{person}:alpha", "message_id": object_id}
    elif kind == "lead_form":
        object_key = f"lead_form:{object_id}"
        source_ref = {"form_entry_id": object_id}
    else:
        object_key = f"comment:{object_id}"
        source_ref = {"video_id": "7300000000000000001", "comment_id": object_id}
    return Capture(
        integration_id=integration_id or integration_of(workspace_id),
        workspace_id=workspace_id,
        kind=kind,
        capture_source=SOURCES[kind],
        person_key=people.handle_key(person),
        object_key=object_key,
        occurred_ms=at_ms,
        message=f"message {n} of {person}" if message is None else message,
        source_ref=source_ref,
        author={"id": f"uid-{person}", "username": person},
        high_intent=kind == "high_intent_comment" if high_intent is None else high_intent,
    )


def record(item: Capture) -> str:
    """Store ``item`` through the real capture path; the id of its person's lead."""
    record_capture(item)
    return people.lead_id_for(item.integration_id, item.person_key)


def person(*items: Capture) -> str:
    """Record every interaction (all of one person); the lead id."""
    lead_ids = {record(item) for item in items}
    assert len(lead_ids) == 1, "the interactions are not of one person"
    return lead_ids.pop()


# -- raw items, for bulk seeding ------------------------------------------------------------------
def interaction_item(item: Capture) -> dict[str, Any]:
    """The raw DynamoDB item ``interactions.record`` stores for ``item``."""
    raw: dict[str, Any] = interaction_of(item).serialize()
    return raw


def lead_item(
    item: Capture,
    *,
    created_ms: int | None = None,
    platform: str = "tiktok",
    status: str = "new",
    assignee: str | None = None,
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The raw DynamoDB item of the lead that ``item`` creates as its person's first interaction
    (the attributes ``touch_lead`` writes), for ``BatchWriteItem``. ``created_ms`` is when it was
    stored (default: the interaction's time plus a second). ``platform``, ``status``, ``assignee``
    and ``labels`` other than the defaults give a lead the capture path cannot make (yet): each
    such change counts as a version, as a lifecycle change would."""
    interaction = interaction_of(item)
    lead_id = interaction.lead_id
    changes = sum(1 for changed in (status != "new", assignee is not None, labels is not None) if changed)
    lead = leads()(
        lead_pk(lead_id),
        LEAD_SK,
        lead_id=lead_id,
        workspace_id=item.workspace_id,
        integration_id=item.integration_id,
        platform=platform,
        capture_source=item.capture_source,
        capture_sources={item.capture_source},
        status=status,
        author={k: v for k, v in item.author.items() if v is not None},
        message=item.message,
        source_ref=item.source_ref,
        high_intent=item.high_intent,
        source_state="present",
        first_interaction_id=interaction.interaction_id,
        captured_at=clock.iso(item.occurred_ms / 1000),
        created_at=clock.iso((item.occurred_ms + 1000 if created_ms is None else created_ms) / 1000),
        first_seen_ms=item.occurred_ms,
        last_activity_ms=item.occurred_ms,
        interaction_count=1,
        version=1 + changes,
        assignee=assignee,
        labels=list(labels) if labels is not None else None,
        contact=item.contact,
        applied={"interaction_id": interaction.interaction_id},
        activity_key=time_key(item.occurred_ms, lead_id),
        counted={counted_id(interaction.interaction_id)},
        expires_at=expires_at(item.occurred_ms),
    )
    raw: dict[str, Any] = lead.serialize()
    return raw


def person_items(item: Capture, **lead_fields: Any) -> list[dict[str, Any]]:
    """The lead and interaction items of a person whose one interaction is ``item``."""
    return [lead_item(item, **lead_fields), interaction_item(item)]


def put_items(items: Iterable[dict[str, Any]]) -> None:
    """Write raw items to the leads table with ``BatchWriteItem``, 25 a request."""
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    table = leads().Meta.table_name
    for chunk in itertools.batched(items, 25):
        pending = {table: [{"PutRequest": {"Item": raw}} for raw in chunk]}
        while pending:
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


# -- lifecycle, raw (seeding shortcuts) --------------------------------------------------------
def _update(lead_id: str, expression: str, names: dict[str, str], values: dict[str, Any]) -> None:
    boto3.client("dynamodb", region_name="us-east-1").update_item(
        TableName=leads().Meta.table_name,
        Key={"pk": {"S": lead_pk(lead_id)}, "sk": {"S": LEAD_SK}},
        UpdateExpression=expression + " ADD #version :one",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeNames={**names, "#version": "version"},
        ExpressionAttributeValues={**values, ":one": {"N": "1"}},
    )


def set_lifecycle(
    lead_id: str,
    *,
    status: str | None = None,
    assignee: str | None = None,
    labels: Sequence[str] | None = None,
) -> None:
    """Change a stored lead's status, assignee and/or labels (one new version)."""
    fields = {"status": status, "assignee": assignee, "labels": labels}
    names, values, sets = {}, {}, []
    for n, (name, value) in enumerate((k, v) for k, v in fields.items() if v is not None):
        names[f"#f{n}"] = name
        attribute = Lead.get_attributes()[name]
        values[f":f{n}"] = {attribute.attr_type: attribute.serialize(value)}
        sets.append(f"#f{n} = :f{n}")
    _update(lead_id, "SET " + ", ".join(sets), names, values)


def mark_merged(lead_id: str, into: str) -> None:
    """What a merge does to its source lead: ``merged_into`` set, out of the listing index."""
    _update(
        lead_id, "SET #m = :m REMOVE #a", {"#m": "merged_into", "#a": "activity_key"}, {":m": {"S": into}}
    )


# -- reading back ---------------------------------------------------------------------------------
def stored_leads(workspace_id: str | None = None) -> list[Lead]:
    """Every live lead item of the table (a Scan: for assertions only), of one workspace if given."""
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    out: list[Lead] = []
    kwargs: dict[str, Any] = {"TableName": leads().Meta.table_name}
    while True:
        page = ddb.scan(**kwargs)
        for raw in page["Items"]:
            if raw["sk"]["S"] == LEAD_SK and "activity_key" in raw:
                lead = leads().from_raw_data(raw)
                if workspace_id is None or lead.workspace_id == workspace_id:
                    out.append(lead)
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def ids(items: Iterable[Lead]) -> list[str]:
    """Lead ids in listing order: most recent activity first (ties: the larger lead id)."""
    return [lead.lead_id for lead in sorted(items, key=lambda lead: lead.activity_key or "", reverse=True)]


# -- the read API ---------------------------------------------------------------------------------
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
            lead_id, _, rest = path.removeprefix("/social-leads/").partition("/")
            params = {"lead_id": lead_id}
            route = "/social-leads/{lead_id}" + (f"/{rest}" if rest else "")
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

    def interactions(self, lead_id: str, workspace: str = "ws-1", **query: Any) -> tuple[int, Any]:
        response = self.get(
            f"/social-leads/{lead_id}/interactions",
            {k: str(v) for k, v in query.items()},
            workspace=workspace,
        )
        return response["statusCode"], json_body(response)

    def page_through(self, workspace: str = "ws-1", **query: Any) -> tuple[list[str], list[int]]:
        """Every lead id the listing yields, following next_cursor to the end; and page sizes."""
        return self._page_through(lambda params: self.leads(workspace, **params), "lead_id", query)

    def interactions_through(
        self, lead_id: str, workspace: str = "ws-1", **query: Any
    ) -> tuple[list[str], list[int]]:
        """Every interaction id of the lead, following next_cursor to the end; and page sizes."""
        return self._page_through(
            lambda params: self.interactions(lead_id, workspace, **params), "interaction_id", query
        )

    @staticmethod
    def _page_through(fetch: Any, key: str, query: dict[str, Any]) -> tuple[list[str], list[int]]:
        seen: list[str] = []
        sizes: list[int] = []
        cursor: str | None = None
        for _ in range(10_000):
            params = dict(query) if cursor is None else {**query, "cursor": cursor}
            status, body = fetch(params)
            assert status == 200, body
            seen.extend(item[key] for item in body["items"])
            sizes.append(len(body["items"]))
            cursor = body["next_cursor"]
            if cursor is None:
                return seen, sizes
        raise AssertionError("paging did not end")


# -- DynamoDB calls -------------------------------------------------------------------------------
@dataclass
class Call:
    operation: str
    params: dict[str, Any]


@contextmanager
def record_dynamodb_calls() -> Iterator[list[Call]]:
    """Every DynamoDB operation any client created inside the block issues, with its parameters.

    The hook goes into botocore's built-in handlers, which every new session (boto3's and
    PynamoDB's alike) registers; cached clients are dropped so the product creates new ones."""
    from botocore import handlers

    calls: list[Call] = []

    def note(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append(Call(model.name, dict(params)))

    entry = ("before-parameter-build.dynamodb", note)
    handlers.BUILTIN_HANDLERS.append(entry)
    _forget_clients()
    try:
        yield calls
    finally:
        handlers.BUILTIN_HANDLERS.remove(entry)
        _forget_clients()


def _forget_clients() -> None:
    from tests.conftest import reset_process_caches

    reset_process_caches()


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
