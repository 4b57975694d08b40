"""Write units per captured event, by DynamoDB's documented rules, for the writes the code really
makes (docs/leads-storage.md explains the figures).

The capture path (``interactions.record``) runs against moto with the tables of ``template.yaml``;
every DynamoDB write it sends is intercepted at botocore's API call, and the item it touches is
read before and after (outside the count). Each write is then priced:

- the table: 1 WCU per started KB of the item — for an update or a replacing put the larger of the
  item before and after; a write whose condition fails still costs the larger of the stored item
  and the item sent (1 if neither exists), and touches no index;
- every index (global or local alike) whose entry the write changes: the entry is the item's table
  keys, index keys and projected attributes (all of them for ALL, the listed ones for INCLUDE);
  a new entry is one write of its size, a removed one one write, a changed index key a delete and
  a put, and a changed projected attribute one write. An entry that does not change costs nothing.

Sizes follow DynamoDB's item-size rules (attribute names plus values, ``item_size``). Today's
per-event figure prices the old design's item (``bench/old_design.py``) with the same rules: its
PutItem with the pending-announcement marker, then the UpdateItem that removes the marker.

    PYTHONPATH=layers/common python -m bench.capacity
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

KB = 1024
WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
# The targets, in WCU per event.
TARGETS = {"new person": 6, "new interaction, known person": 4, "duplicate delivery": 1}


# -- sizes -------------------------------------------------------------------------------------------
def value_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value by DynamoDB's item-size rules."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = inner.lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "NS":
        return sum(value_size({"N": x}) for x in inner)
    return sum(len(x.encode()) if isinstance(x, str) else len(x) for x in inner)  # SS, BS


def item_size(item: dict[str, Any]) -> int:
    """Bytes of an item: every attribute's name plus its value."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def units(size: int) -> int:
    """Write units of one write of ``size`` bytes: 1 per started KB."""
    return max(1, math.ceil(size / KB))


# -- table shapes ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str  # ALL, KEYS_ONLY, INCLUDE
    include: frozenset[str] = frozenset()
    local: bool = False


@dataclass(frozen=True)
class Shape:
    """A table's key and indexes, as its template properties declare them."""

    keys: tuple[str, ...]
    indexes: tuple[Index, ...]

    @classmethod
    def of(cls, properties: dict[str, Any]) -> Shape:
        def index(spec: dict[str, Any], local: bool) -> Index:
            projection = spec["Projection"]
            return Index(
                spec["IndexName"],
                tuple(k["AttributeName"] for k in spec["KeySchema"]),
                projection["ProjectionType"],
                frozenset(projection.get("NonKeyAttributes", ())),
                local,
            )

        return cls(
            tuple(k["AttributeName"] for k in properties["KeySchema"]),
            tuple(index(s, False) for s in properties.get("GlobalSecondaryIndexes", ()))
            + tuple(index(s, True) for s in properties.get("LocalSecondaryIndexes", ())),
        )

    def entry(self, index: Index, image: dict[str, Any] | None) -> dict[str, Any] | None:
        """The item's entry in ``index`` (``None``: not in it — an index is sparse)."""
        if image is None or not all(k in image for k in index.keys):
            return None
        if index.projection == "ALL":
            return dict(image)
        wanted = (
            set(self.keys) | set(index.keys) | (index.include if index.projection == "INCLUDE" else set())
        )
        return {k: v for k, v in image.items() if k in wanted}


@dataclass
class Priced:
    """One write and its units: the table's and each index's."""

    operation: str
    item: str  # "lead", "interaction", "old lead"
    failed: bool
    table: int
    indexes: dict[str, int] = field(default_factory=dict)
    size: int = 0

    @property
    def total(self) -> int:
        return self.table + sum(self.indexes.values())

    def describe(self) -> str:
        parts = [f"table {self.table}"] + [f"{n} {u}" for n, u in self.indexes.items() if u]
        state = " (condition failed)" if self.failed else ""
        return f"{self.operation} {self.item}{state}, {self.size} B: {' + '.join(parts)}"


def price(
    shape: Shape,
    operation: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    failed: bool = False,
    sent: dict[str, Any] | None = None,
    item: str = "",
) -> Priced:
    """The write units of one write that turned ``before`` into ``after`` (see the module doc)."""
    sizes = [item_size(i) for i in (before, after, sent) if i]
    size = max(sizes, default=0)
    if failed:
        return Priced(operation, item, True, units(size), size=size)
    priced = Priced(operation, item, False, units(size), size=size)
    for index in shape.indexes:
        old, new = shape.entry(index, before), shape.entry(index, after)
        if old == new:
            cost = 0
        elif old is None or new is None:
            cost = units(item_size(old or new or {}))
        elif any(old[k] != new[k] for k in index.keys):
            cost = units(item_size(old)) + units(item_size(new))  # delete + put
        else:
            cost = units(max(item_size(old), item_size(new)))
        priced.indexes[index.name] = cost
    return priced


# -- capturing the real writes -----------------------------------------------------------------------
class WriteTap:
    """Intercepts every DynamoDB write at botocore's API call and records the item before and after
    it (read with the same client, outside the recorded writes)."""

    def __init__(self, shapes: dict[str, Shape]) -> None:
        self.shapes = shapes
        self.writes: list[Priced] = []
        self.calls: list[str] = []
        self._original: Any = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[WriteTap]:
        original = BaseClient._make_api_call  # type: ignore[attr-defined]
        tap = self

        def call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            if client.meta.service_model.service_name != "dynamodb" or operation not in WRITES:
                return original(client, operation, params)
            table = params["TableName"]
            shape = tap.shapes[table]
            key = params.get("Key") or {k: params["Item"][k] for k in shape.keys}
            read = {"TableName": table, "Key": key, "ConsistentRead": True}
            before = original(client, "GetItem", read).get("Item")
            failed = False
            try:
                return original(client, operation, params)
            except ClientError as exc:
                failed = exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
                raise
            finally:
                after = original(client, "GetItem", read).get("Item")
                kind = "lead" if key.get("sk", {}).get("S") == "L" else "interaction"
                tap.writes.append(
                    price(shape, operation, before, after, failed=failed, sent=params.get("Item"), item=kind)
                )
                tap.calls.append(operation)

        BaseClient._make_api_call = call  # type: ignore[attr-defined]
        try:
            yield self
        finally:
            BaseClient._make_api_call = original  # type: ignore[attr-defined]

    @contextlib.contextmanager
    def event(self) -> Iterator[list[Priced]]:
        start = len(self.writes)
        out: list[Priced] = []
        yield out
        out.extend(self.writes[start:])


@contextlib.contextmanager
def stack() -> Iterator[dict[str, Shape]]:
    """moto with the template's tables and buckets and the person-key secret; the functions'
    environment."""
    import boto3
    from moto import mock_aws

    from bench.scenarios import configure_environment
    from orcapulse_local.template import create_table_kwargs, resources_of_type
    from tests.conftest import reset_process_caches
    from tests.support.deployment import CONTEXT, TEMPLATE

    saved = dict(os.environ)
    configure_environment()
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    try:
        with mock_aws():
            reset_process_caches()
            ddb = boto3.client("dynamodb", region_name="us-east-1")
            shapes: dict[str, Shape] = {}
            for spec in resources_of_type(TEMPLATE, "AWS::DynamoDB::Table").values():
                kwargs = create_table_kwargs(spec["Properties"], CONTEXT)
                ddb.create_table(**kwargs)
                shapes[kwargs["TableName"]] = Shape.of(kwargs)
            boto3.client("secretsmanager", region_name="us-east-1").create_secret(
                Name=CONTEXT.resources["PersonKeySecret"]["Ref"], SecretString="p" * 64
            )
            s3 = boto3.client("s3", region_name="us-east-1")
            for logical in resources_of_type(TEMPLATE, "AWS::S3::Bucket"):
                s3.create_bucket(Bucket=CONTEXT.resources[logical]["Ref"])
            yield shapes
            reset_process_caches()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _comment(n: int, handle: str, ms: int, text: str) -> Any:
    """A realistic comment capture, as ``capture.py`` builds it from TikTok's event."""
    from orcapulse_tiktok import people
    from orcapulse_tiktok.interactions import Capture

    comment_id = f"73{n:017d}"
    return Capture(
        integration_id="int_0123456789abcdef0123456789",
        workspace_id="ws-0123456789abcdef",
        kind="comment",
        capture_source="tiktok_comment",
        person_key=people.handle_key(handle),
        object_key=f"comment:{comment_id}",
        occurred_ms=ms,
        message=text,
        source_ref={"video_id": "7300000000000000001", "comment_id": comment_id, "parent_comment_id": "0"},
        author={"id": handle, "username": handle},
    )


TEXT = "Hi! Is the jacket from your video still available in size M? Do you ship to Lisbon?"


def new_design() -> dict[str, list[Priced]]:
    """The writes of each kind of event, priced (``priced_events`` in a stack of its own)."""
    with stack() as shapes:
        return priced_events(shapes)


def priced_events(shapes: dict[str, Shape]) -> dict[str, list[Priced]]:
    """The writes of each kind of event, priced, in a running ``stack``. A person with ten
    interactions already stands for a lead that has grown its idempotency set (``counted``)."""
    from orcapulse_tiktok.interactions import record

    base = 1_780_000_000_000
    out: dict[str, list[Priced]] = {}
    tap = WriteTap(shapes)
    with tap.installed():
        with tap.event() as writes:
            record(_comment(1, "lisbon_buyer", base, TEXT))
        out["new person"] = writes
        with tap.event() as writes:
            record(_comment(2, "lisbon_buyer", base + 60_000, TEXT))
        out["new interaction, known person"] = writes
        for n in range(3, 11):
            record(_comment(n, "lisbon_buyer", base + n * 60_000, TEXT))
        with tap.event() as writes:
            record(_comment(11, "lisbon_buyer", base + 11 * 60_000, TEXT))
        out["new interaction, person with 10"] = writes
        with tap.event() as writes:
            record(_comment(5, "lisbon_buyer", base + 5 * 60_000, TEXT))
        out["duplicate delivery"] = writes
        with tap.event() as writes:
            record(_comment(12, "lisbon_buyer", base - 60_000, TEXT))
        out["late event, older than all"] = writes
    return out


def old_design() -> list[Priced]:
    """Today's per-event figure: the old item's PutItem with the pending-announcement marker, then
    the marker's removal once EventBridge accepted the lead."""
    from bench.old_design import OLD_TABLE_PROPERTIES, old_item

    shape = Shape.of(OLD_TABLE_PROPERTIES)
    base = 1_780_000_000_000
    common = {"kind": "comment", "ms": base, "author_id": "lisbon_buyer", "username": "lisbon_buyer"}
    pending = old_item(
        "ws-0123456789abcdef",
        "int_0123456789abcdef0123456789",
        object_id=f"73{1:017d}",
        text=TEXT,
        pending_until_ms=base + 120_000,
        **common,  # type: ignore[arg-type]
    )
    announced = {k: v for k, v in pending.items() if k not in ("announce_pending", "announce_due_at")}
    return [
        price(shape, "PutItem", None, pending, sent=pending, item="old lead"),
        price(shape, "UpdateItem", pending, announced, item="old lead (marker removed)"),
    ]


def run() -> dict[str, Any]:
    """Every scenario's writes and totals, today's figure, and the targets."""
    new = new_design()
    old = old_design()
    rows = {
        name: {"wcu": sum(w.total for w in writes), "writes": [w.describe() for w in writes]}
        for name, writes in new.items()
    }
    return {
        "events": rows,
        "old_per_event": {"wcu": sum(w.total for w in old), "writes": [w.describe() for w in old]},
        "targets": TARGETS,
    }


def render(result: dict[str, Any]) -> str:
    lines = ["Write units (WCU) per captured event, DynamoDB's rules applied to the writes the code sends"]
    for name, row in result["events"].items():
        target = result["targets"].get(name)
        verdict = (
            "" if target is None else f"   target <= {target}: {'met' if row['wcu'] <= target else 'NOT met'}"
        )
        lines.append(f"{name:<34}{row['wcu']:>4} WCU{verdict}")
        lines.extend(f"    {w}" for w in row["writes"])
    old = result["old_per_event"]
    lines.append(f"{'old design, per event (today)':<34}{old['wcu']:>4} WCU")
    lines.extend(f"    {w}" for w in old["writes"])
    return "\n".join(lines)


def main() -> int:
    print(render(run()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
