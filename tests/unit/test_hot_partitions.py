"""A burst on one integration — 500 interactions a second for 10 minutes — against DynamoDB's
per-partition write limit (1,000 WCU/s), for every partition key the capture path writes
(docs/scale.md has the arithmetic and what would change past the limit):

- the table: a lead's ``pk`` (its item, its interactions, and their ``by_time`` local-index
  entries, which live in the same partition);
- ``by_activity``: the workspace (every lead write that moves or changes the listing entry).

The keys come from the real code (``people.lead_id_for``, ``people.interaction_id_for``,
``models.lead.time_key``) and the units of each write from the capacity model
(``bench.capacity``, the priced writes the capture path really sends)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from orcapulse_tiktok import people
from orcapulse_tiktok.models.lead import lead_pk, time_key

from bench import capacity

PARTITION_WCU_PER_SECOND = 1_000
RATE = 500  # interactions a second, on one integration
SECONDS = 600
NEW_SHARE = 0.6  # of the burst's interactions, from people never seen before
REPEAT_PEOPLE = 2_000  # the pool the other 40 % come from (fans commenting again, DM threads)
WORKSPACE = "ws-burst"
INTEGRATION = "int_burst"
START_MS = 1_780_000_000_000


def _units(shapes: dict[str, capacity.Shape], writes: list[capacity.Priced]) -> dict[str, int]:
    """Units one event puts on the lead's partition and on the workspace's listing partition."""
    (shape,) = {s for s in shapes.values() if any(i.name == "by_activity" for i in s.indexes)}
    local = {i.name for i in shape.indexes if i.local}
    out = {"lead": 0, "workspace": 0}
    for write in writes:
        out["lead"] += write.table + sum(u for n, u in write.indexes.items() if n in local)
        out["workspace"] += sum(u for n, u in write.indexes.items() if n not in local)
    return out


@pytest.fixture(scope="module")
def burst() -> dict[str, Any]:
    """Per second of the burst: the units on every partition key written, from real ids."""
    with capacity.stack() as shapes:
        priced = capacity.priced_events(shapes)
        new = _units(shapes, priced["new person"])
        known = _units(shapes, priced["new interaction, person with 10"])
        rng = random.Random(13)
        seen: set[str] = set()
        lead_peak: Counter[str] = Counter()
        workspace_per_second: list[int] = []
        listing_keys: list[str] = []
        fresh = 0
        for second in range(SECONDS):
            on_lead: Counter[str] = Counter()
            on_workspace = 0
            for k in range(RATE):
                if rng.random() < NEW_SHARE:
                    fresh += 1
                    person = people.handle_key(f"new_commenter_{fresh}")
                else:
                    person = people.handle_key(f"regular_{rng.randrange(REPEAT_PEOPLE)}")
                lead_id = people.lead_id_for(INTEGRATION, person)
                ms = START_MS + second * 1000 + k * 2
                ix_id = people.interaction_id_for(INTEGRATION, f"comment:{second}:{k}")
                assert time_key(ms, ix_id) > time_key(ms - 1, ix_id)
                units = known if lead_id in seen else new
                seen.add(lead_id)
                on_lead[lead_pk(lead_id)] += units["lead"]
                on_workspace += units["workspace"]
                if second == SECONDS - 1:
                    listing_keys.append(time_key(ms, lead_id))
            for key, value in on_lead.items():
                lead_peak[key] = max(lead_peak[key], value)
            workspace_per_second.append(on_workspace)
    return {
        "new": new,
        "known": known,
        "lead_peak": lead_peak,
        "workspace": workspace_per_second,
        "people": len(seen),
        "listing_keys": listing_keys,
    }


def test_the_model_prices_what_the_docs_say(burst):
    # docs/scale.md's table is computed from these.
    assert burst["new"] == {"lead": 3, "workspace": 1}
    assert burst["known"] == {"lead": 3, "workspace": 2}


def test_no_lead_partition_comes_near_the_limit(burst):
    hottest, units = burst["lead_peak"].most_common(1)[0]
    # A regular who comments several times in one second is still two orders of magnitude below.
    assert units < PARTITION_WCU_PER_SECOND / 10, (hottest, units)


def test_the_workspace_listing_partition_stays_under_the_limit(burst):
    peak = max(burst["workspace"])
    mean = sum(burst["workspace"]) / len(burst["workspace"])
    # 60 % new people at 1 WCU, 40 % known at 2 (delete + put of the moved listing entry).
    assert 650 <= mean <= 750
    assert peak < PARTITION_WCU_PER_SECOND, peak


def test_every_listing_write_lands_at_the_end_of_the_range(burst):
    # Newest-first keys: all of a second's writes go to the top of one workspace's key range, so
    # DynamoDB's split for heat cannot spread them; the workspace partition takes the whole burst.
    keys = burst["listing_keys"]
    assert min(keys) > time_key(START_MS + (SECONDS - 1) * 1000 - 1, "")


def test_the_limit_for_one_workspace(burst):
    # The burst one workspace's listing partition carries with every person already known
    # (2 WCU each): at 500 interactions/s it is exactly the limit; docs/scale.md says what changes.
    assert PARTITION_WCU_PER_SECOND // burst["known"]["workspace"] == RATE
