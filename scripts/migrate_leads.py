"""Migrate per-event leads (the old table: one item per comment or DM, key ``workspace_id`` /
``lead_id``) into people and interactions (the new table, ``models/lead.py``).

Each old item is replayed through the live capture path, ``interactions.record``, with the person
key the webhook derives from the same TikTok fields (``capture.py``), so a migrated person has the
id a live webhook gives them and a live event arriving during the migration lands on the same lead.
Replaying an item twice changes nothing: the interaction is a conditional put and the lead counts
an interaction once (its ``counted`` set).

Resumable: the old table is read with a Scan, and after each page is fully migrated its
``LastEvaluatedKey`` is written to the checkpoint file (atomically). A crash re-runs at most the
page it was in, which is harmless. docs/leads-storage.md says when to run it and what the new
table's stream does with the writes.

    LEADS_TABLE=<new table> PERSON_KEY_SECRET_ID=<secret> \\
      python scripts/migrate_leads.py --source-table <old table> --checkpoint migrate.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orcapulse_tiktok import people
from orcapulse_tiktok.capture import DUPLICATE
from orcapulse_tiktok.data import leads as lead_store
from orcapulse_tiktok.interactions import Capture, record
from orcapulse_tiktok.tiktok.events import HIGH_INTENT_COMMENT, MESSAGE_RECEIVED

PAGE_SIZE = 100


class SkippedItem(ValueError):
    """An old item that cannot be an interaction (no TikTok object id): counted, not migrated."""


# -- one old item ------------------------------------------------------------------------------------
def _plain(value: dict[str, Any]) -> Any:
    """A DynamoDB attribute value as a Python value (strings, numbers, bools, maps, null)."""
    (kind, inner), *_ = value.items()
    if kind == "M":
        return {k: _plain(v) for k, v in inner.items()}
    if kind == "N":
        return int(inner) if inner.lstrip("-").isdigit() else float(inner)
    if kind == "NULL":
        return None
    return inner


def _read(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _plain(value) for name, value in item.items()}


def _strings(value: Any) -> dict[str, str]:
    return {k: str(v) for k, v in (value or {}).items() if v is not None}


def capture_of(item: dict[str, Any]) -> Capture:
    """The capture a live webhook would make of the event behind an old lead item (raw DynamoDB
    attribute values). Person keys follow ``capture.py``: a comment's ``unique_identifier``
    (the old ``author.username``), else its ``user_id``; a DM's ``from`` handle, else
    ``from_user.id``, else its conversation."""
    lead = _read(item)
    author = {k: v for k, v in (lead.get("author") or {}).items() if k in ("id", "username")}
    handle, user_id = author.get("username"), author.get("id")
    source_ref = _strings(lead.get("source_ref"))
    ms = int(lead["captured_ms"])
    if lead.get("capture_source") == "tiktok_dm" or lead.get("event_type") == MESSAGE_RECEIVED:
        message_id = source_ref.get("message_id")
        if not message_id:
            raise SkippedItem("a DM lead without message_id")
        if handle:
            person = people.handle_key(handle)
        elif user_id:
            person = people.user_id_key(user_id)
        else:
            person = people.object_key("conversation", source_ref.get("conversation_id") or message_id)
        kind, capture_source, object_key = "dm", "tiktok_dm", f"dm:{message_id}"
    else:
        comment_id = source_ref.get("comment_id")
        if not comment_id:
            raise SkippedItem("a comment lead without comment_id")
        if handle:
            person = people.handle_key(handle)
        elif user_id:
            person = people.user_id_key(user_id)
        else:
            person = people.object_key("comment", comment_id)
        # A comment TikTok flagged later keeps its kind (the webhook flags the comment's
        # interaction); one that first arrived as a high-intent event is a high-intent comment.
        high_intent_event = lead.get("event_type") == HIGH_INTENT_COMMENT
        kind = "high_intent_comment" if high_intent_event else "comment"
        capture_source, object_key = "tiktok_comment", f"comment:{comment_id}"
    return Capture(
        integration_id=str(lead["integration_id"]),
        workspace_id=str(lead["workspace_id"]),
        kind=kind,
        capture_source=capture_source,
        person_key=person,
        object_key=object_key,
        occurred_ms=ms,
        message=str(lead.get("message") or ""),
        source_ref=source_ref,
        author={"id": user_id, "username": handle},
        high_intent=bool(lead.get("high_intent")),
        origin="migration",  # the pipeline already knows these leads: stored, not announced
    )


def migrate_item(item: dict[str, Any]) -> str:
    """Store one old lead item as an interaction of its person's lead: ``accepted`` (something
    new was written) or ``duplicate`` (migrated before). The comment's ``source_state`` (hidden,
    deleted) is applied after, with the old event time, so a replay or a live event that is
    older never undoes it."""
    capture = capture_of(item)
    outcome = record(capture).outcome
    lead = _read(item)
    state = str(lead.get("source_state") or "present")
    state_ms = lead.get("source_state_ms")
    if capture.capture_source == "tiktok_comment" and (state != "present" or state_ms is not None):
        lead_id = people.lead_id_for(capture.integration_id, capture.person_key)
        interaction_id = people.interaction_id_for(capture.integration_id, capture.object_key)
        at_ms = int(state_ms) if state_ms is not None else capture.occurred_ms
        before = lead_store.set_interaction_state(lead_id, interaction_id, state, at_ms=at_ms)
        # Also when the interaction had it already: a crash may have come between the two writes.
        # The lead update is conditional on being its first interaction, and an unchanged value
        # makes no stream record.
        lead_store.set_first_state(lead_id, interaction_id, state)
        if before is not None and before != state:
            outcome = "accepted"
    return outcome


# -- the checkpoint ----------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """Where the migration of ``source_table`` stands: the Scan's key after the last page that was
    fully migrated (``None`` and ``done``: finished), and what it did so far."""

    source_table: str
    last_key: dict[str, Any] | None = None
    done: bool = False
    pages: int = 0
    items: int = 0
    accepted: int = 0
    duplicate: int = 0
    skipped: int = 0

    @classmethod
    def load(cls, path: Path, source_table: str) -> Checkpoint:
        if not path.exists():
            return cls(source_table)
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("source_table") != source_table:
            raise SystemExit(f"{path} is the checkpoint of {data.get('source_table')}, not {source_table}")
        return cls(**data)

    def save(self, path: Path) -> None:
        # Written beside and renamed: a crash mid-write leaves the previous checkpoint whole.
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(partial, path)


# -- the run -----------------------------------------------------------------------------------------
def _pages(client: Any, table: str, start: dict[str, Any] | None, page_size: int) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {"TableName": table, "Limit": page_size}
    while True:
        if start is not None:
            request["ExclusiveStartKey"] = start
        page: dict[str, Any] = client.scan(**request)
        yield page
        start = page.get("LastEvaluatedKey")
        if start is None:
            return


@dataclass
class Pacer:
    """At most ``per_second`` items a second (0: no limit): bounds the write rate on the new table
    and the announcements its stream makes of them."""

    per_second: float = 0.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _next: float = field(default=0.0, init=False)

    def wait(self) -> None:
        if self.per_second <= 0:
            return
        now = self.clock()
        if self._next > now:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + 1 / self.per_second


def run(
    source_table: str,
    checkpoint_path: Path,
    *,
    client: Any = None,
    page_size: int = PAGE_SIZE,
    pacer: Pacer | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> Checkpoint:
    """Migrate every item of ``source_table`` from the checkpoint on; the final checkpoint."""
    if client is None:
        import boto3

        client = boto3.client("dynamodb")
    pacer = pacer or Pacer()
    state = Checkpoint.load(checkpoint_path, source_table)
    if state.done:
        log(f"{source_table}: already migrated ({state.items} items); nothing to do")
        return state
    for page in _pages(client, source_table, state.last_key, page_size):
        for item in page.get("Items", []):
            pacer.wait()
            try:
                outcome = migrate_item(item)
            except SkippedItem:
                state.skipped += 1
                continue
            state.items += 1
            if outcome == DUPLICATE:
                state.duplicate += 1
            else:
                state.accepted += 1
        state.pages += 1
        state.last_key = page.get("LastEvaluatedKey")
        state.done = state.last_key is None
        state.save(checkpoint_path)
        log(
            f"page {state.pages}: {state.items} items ({state.accepted} accepted, "
            f"{state.duplicate} duplicate, {state.skipped} skipped)"
        )
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--source-table", required=True, help="the old per-event leads table")
    parser.add_argument(
        "--checkpoint", type=Path, required=True, help="JSON file holding where the run stands"
    )
    parser.add_argument("--page-size", type=int, default=PAGE_SIZE, help="items per Scan page")
    parser.add_argument(
        "--max-per-second", type=float, default=50.0, help="items a second; 0 for no limit (default 50)"
    )
    args = parser.parse_args(argv)
    for variable in ("LEADS_TABLE", "PERSON_KEY_SECRET_ID"):
        if not os.environ.get(variable):
            parser.error(f"{variable} must name the new stack's {variable.lower().replace('_', ' ')}")
    state = run(
        args.source_table,
        args.checkpoint,
        page_size=args.page_size,
        pacer=Pacer(args.max_per_second),
        log=lambda line: print(line, flush=True),
    )
    print(json.dumps(asdict(state), indent=2))
    return 0 if state.done else 1


if __name__ == "__main__":
    sys.exit(main())
