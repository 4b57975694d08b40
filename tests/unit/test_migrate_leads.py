"""The leads migration (scripts/migrate_leads.py): per-event leads of a table with the old schema
become people and interactions in the new table — exactly once, however often it runs, and the
same people the live webhook makes of the same TikTok events."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
from orcapulse_tiktok import capture as live
from orcapulse_tiktok import people
from orcapulse_tiktok.data.integrations import Target
from orcapulse_tiktok.interactions import record
from orcapulse_tiktok.models.lead import Interaction, Lead
from orcapulse_tiktok.tiktok.events import Envelope, parse_event

from bench.old_design import OLD_TABLE_PROPERTIES, old_item
from orcapulse_local.template import create_table_kwargs
from scripts import migrate_leads
from tests.support.deployment import CONTEXT

OLD_TABLE = OLD_TABLE_PROPERTIES["TableName"]
BASE_MS = 1_764_057_600_000
INTEGRATION_A = "int_alpha"
INTEGRATION_B = "int_beta"


def old_leads() -> list[dict[str, Any]]:
    """Two workspaces. In ws-1: three DMs of one sender (by handle), two of a sender TikTok named
    only by id, two comments of one commenter (the later one flagged high intent afterwards), a
    comment first seen as a high-intent event, a hidden comment. In ws-2: the same commenter's
    comment on another workspace's integration (another lead)."""
    a = ("ws-1", INTEGRATION_A)
    return [
        old_item(*a, kind="dm", object_id="m1", ms=BASE_MS + 1000, author_id="7001", username="lisbon_buyer"),
        old_item(*a, kind="dm", object_id="m2", ms=BASE_MS + 3000, author_id="7001", username="lisbon_buyer"),
        old_item(*a, kind="dm", object_id="m3", ms=BASE_MS + 2000, author_id="7001", username="lisbon_buyer"),
        old_item(*a, kind="dm", object_id="m4", ms=BASE_MS + 4000, author_id="7002", username=None),
        old_item(*a, kind="dm", object_id="m5", ms=BASE_MS + 5000, author_id="7002", username=None),
        old_item(
            *a,
            kind="comment",
            object_id="c1",
            ms=BASE_MS + 6000,
            author_id="orca_fan_88",
            username="orca_fan_88",
        ),
        old_item(
            *a,
            kind="comment",
            object_id="c2",
            ms=BASE_MS + 7000,
            author_id="orca_fan_88",
            username="orca_fan_88",
            high_intent=True,
        ),
        old_item(
            *a,
            kind="comment",
            object_id="c3",
            ms=BASE_MS + 8000,
            author_id="keen",
            username="keen",
            high_intent=True,
            event_type="im_receive_high_intent_comment",
        ),
        old_item(
            *a,
            kind="comment",
            object_id="c4",
            ms=BASE_MS + 9000,
            author_id="hider",
            username="hider",
            source_state="hidden",
            source_state_ms=BASE_MS + 60_000,
        ),
        old_item(
            "ws-2",
            INTEGRATION_B,
            kind="comment",
            object_id="c1",
            ms=BASE_MS + 500,
            author_id="orca_fan_88",
            username="orca_fan_88",
        ),
    ]


def lead_of(integration_id: str, person_key: str) -> str:
    return people.lead_id_for(integration_id, person_key)


@pytest.fixture
def old_table(aws) -> str:
    ddb = aws.client("dynamodb")
    ddb.create_table(**create_table_kwargs(OLD_TABLE_PROPERTIES, CONTEXT))
    for item in old_leads():
        ddb.put_item(TableName=OLD_TABLE, Item=item)
    return cast(str, OLD_TABLE)


def new_items(aws) -> tuple[dict[str, Lead], dict[str, Interaction]]:
    leads: dict[str, Lead] = {}
    interactions: dict[str, Interaction] = {}
    for item in aws.items("LeadsTable"):
        if item["sk"]["S"] == "L":
            lead = Lead.from_raw_data(item)
            leads[lead.lead_id] = lead
        else:
            ix = Interaction.from_raw_data(item)
            interactions[ix.interaction_id] = ix
    return leads, interactions


def migrate(aws, checkpoint: Path, page_size: int = 3) -> migrate_leads.Checkpoint:
    return migrate_leads.run(OLD_TABLE, checkpoint, client=aws.client("dynamodb"), page_size=page_size)


def assert_people(aws) -> None:
    leads, interactions = new_items(aws)
    assert len(interactions) == len(old_leads())
    dm_sender = leads[lead_of(INTEGRATION_A, people.handle_key("lisbon_buyer"))]
    id_sender = leads[lead_of(INTEGRATION_A, people.user_id_key("7002"))]
    fan = leads[lead_of(INTEGRATION_A, people.handle_key("orca_fan_88"))]
    keen = leads[lead_of(INTEGRATION_A, people.handle_key("keen"))]
    hider = leads[lead_of(INTEGRATION_A, people.handle_key("hider"))]
    fan_b = leads[lead_of(INTEGRATION_B, people.handle_key("orca_fan_88"))]
    assert len(leads) == 6
    counts = {lead.lead_id: int(lead.interaction_count) for lead in leads.values()}
    assert counts == {
        dm_sender.lead_id: 3,
        id_sender.lead_id: 2,
        fan.lead_id: 2,
        keen.lead_id: 1,
        hider.lead_id: 1,
        fan_b.lead_id: 1,
    }
    # Counted ids, versions: each interaction applied once.
    assert all(len(lead.counted or ()) == int(lead.interaction_count) for lead in leads.values())
    assert int(dm_sender.version) == 3
    # First seen is the earliest event, the activity and message the latest, whatever the order.
    assert int(dm_sender.first_seen_ms) == BASE_MS + 1000
    assert int(dm_sender.last_activity_ms) == BASE_MS + 3000
    assert dm_sender.workspace_id == "ws-1"
    assert fan_b.workspace_id == "ws-2"
    assert fan.high_intent
    assert keen.high_intent
    assert not dm_sender.high_intent
    assert not hider.high_intent
    kinds = Counter((ix.kind, bool(ix.high_intent)) for ix in interactions.values())
    assert kinds == {
        ("dm", False): 5,
        ("comment", False): 3,
        ("comment", True): 1,
        ("high_intent_comment", True): 1,
    }
    assert hider.source_state == "hidden"
    hidden = [ix for ix in interactions.values() if ix.lead_id == hider.lead_id]
    assert [(ix.source_state, int(ix.source_state_ms)) for ix in hidden] == [("hidden", BASE_MS + 60_000)]
    assert fan.capture_sources == {"tiktok_comment"}
    assert dm_sender.capture_sources == {"tiktok_dm"}


def test_migrates_per_event_leads_into_people(aws, old_table, tmp_path):
    state = migrate(aws, tmp_path / "checkpoint.json")

    assert state.done
    assert state.items == 10
    assert state.accepted == 10
    assert state.duplicate == 0
    assert_people(aws)


def test_a_second_run_changes_nothing(aws, old_table, tmp_path):
    migrate(aws, tmp_path / "first.json")
    before = sorted(json.dumps(item, sort_keys=True) for item in aws.items("LeadsTable"))

    finished = migrate(aws, tmp_path / "first.json")
    replay = migrate(aws, tmp_path / "again.json", page_size=4)

    assert finished.items == 10  # the checkpoint says done: nothing read again
    assert replay.done
    assert replay.accepted == 0
    assert replay.duplicate == 10
    assert sorted(json.dumps(item, sort_keys=True) for item in aws.items("LeadsTable")) == before
    assert_people(aws)


@pytest.mark.parametrize("crash_after", [1, 4, 7, 9])
def test_a_crash_resumes_from_the_checkpoint(aws, old_table, tmp_path, monkeypatch, crash_after):
    checkpoint = tmp_path / "checkpoint.json"
    calls = {"n": 0}

    def crashing(capture):
        calls["n"] += 1
        if calls["n"] > crash_after:
            raise RuntimeError("the process died")
        return record(capture)

    monkeypatch.setattr(migrate_leads, "record", crashing)
    with pytest.raises(RuntimeError):
        migrate(aws, checkpoint)
    saved = json.loads(checkpoint.read_text()) if checkpoint.exists() else None
    assert saved is None or not saved["done"]
    assert saved is None or saved["items"] <= crash_after
    monkeypatch.setattr(migrate_leads, "record", record)

    resumed = migrate(aws, checkpoint)

    assert resumed.done
    assert resumed.items == 10
    # The page the crash was in was replayed: what it had stored answered duplicate.
    assert resumed.accepted + resumed.duplicate == 10
    assert_people(aws)


def test_migrated_people_are_the_people_live_webhooks_make(aws, old_table, tmp_path):
    migrate(aws, tmp_path / "checkpoint.json")
    target = Target("ws-1", INTEGRATION_A, "active")
    dm = parse_event(
        Envelope(
            "key",
            "im_receive_msg",
            BASE_MS // 1000,
            "open-id",
            json.dumps(
                {
                    "conversation_id": "conv-7001",
                    "message_id": "m2",
                    "timestamp": BASE_MS + 3000,
                    "type": "text",
                    "text": {"body": "Is it still available?"},
                    "from": "lisbon_buyer",
                    "from_user": {"id": "7001"},
                }
            ),
        )
    )
    flagged = parse_event(
        Envelope(
            "key",
            "im_receive_high_intent_comment",
            BASE_MS // 1000,
            "open-id",
            json.dumps({"comment_id": "c1", "comment_text": "x", "unique_identifier": "orca_fan_88"}),
        )
    )

    # A redelivery of a migrated DM is a duplicate on the migrated person's lead.
    assert record(live._message(dm, target, dm.payload)).outcome == "duplicate"  # type: ignore[arg-type]
    # TikTok's high-intent event about a migrated comment flags that interaction and its person
    # (no new interaction: a duplicate delivery as far as TikTok is concerned).
    assert record(live._comment(flagged, target, flagged.payload, high_intent=True)).outcome == "duplicate"  # type: ignore[arg-type]
    leads, interactions = new_items(aws)
    assert len(leads) == 6
    assert len(interactions) == 10
    fan = leads[lead_of(INTEGRATION_A, people.handle_key("orca_fan_88"))]
    assert int(fan.interaction_count) == 2
    c1 = interactions[people.interaction_id_for(INTEGRATION_A, "comment:c1")]
    assert c1.high_intent
    assert c1.lead_id == fan.lead_id


def test_a_checkpoint_of_another_table_is_refused(aws, old_table, tmp_path):
    checkpoint = tmp_path / "checkpoint.json"
    migrate_leads.Checkpoint("another-table").save(checkpoint)

    with pytest.raises(SystemExit):
        migrate(aws, checkpoint)


def test_the_pacer_spaces_items():
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = migrate_leads.Pacer(4, sleep=sleep, clock=lambda: now[0])
    for _ in range(5):
        pacer.wait()

    assert slept == [0.25, 0.25, 0.25, 0.25]


def test_boto3_is_only_a_default(aws, old_table, tmp_path, monkeypatch):
    # The command's own client reaches the same (moto) account.
    monkeypatch.setattr(boto3, "client", lambda service: aws.client(service))
    state = migrate_leads.run(OLD_TABLE, tmp_path / "c.json")
    assert state.done
    assert state.items == 10


def test_migrated_people_are_not_announced_as_new_leads(aws, old_table, tmp_path, bus):
    migrate(aws, tmp_path / "checkpoint.json")
    assert bus.received() == []  # the pipeline knew these leads already
