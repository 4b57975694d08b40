"""DELETE /social-leads/{lead_id} (DESIGN §9): the person and every interaction erased — the
merged leads too — in every table and index, only a tombstone without personal data left;
``SocialLeadErased`` published; an older event replayed afterwards is ignored, a new one starts a
new lead."""

from __future__ import annotations

import time
from typing import Any

import pytest
from orcapulse_tiktok import people
from orcapulse_tiktok.data import erasures as erasure_store

from tests.support.leads import ReadApi
from tests.support.lifecycle import LeadWrites, everything_stored
from tests.support.webhooks import NOW_MS, comment_content, message_content, status_of

HANDLE, ALT = "erase_me_77", "erase_me_alt"
TEXTS = ("Please call me back at home", "my other account writes too", "a DM about the orca plush")


@pytest.fixture
def writes(load_function, lambda_context, aws) -> LeadWrites:
    return LeadWrites(load_function, lambda_context)


@pytest.fixture
def api(load_function, lambda_context, aws) -> ReadApi:
    return ReadApi(load_function("leads_query"), lambda_context)


def _lead(integration_id: str, handle: str) -> str:
    return people.lead_id_for(integration_id, people.handle_key(handle))


@pytest.fixture
def person(webhook, alpha, writes) -> dict[str, Any]:
    """A person with a comment and a DM, and a second lead of theirs merged in."""
    bodies = [
        webhook.state.envelope(
            "comment.update", "open-id-alpha", comment_content(7001, unique_identifier=HANDLE, text=TEXTS[0])
        ),
        webhook.state.envelope(
            "comment.update", "open-id-alpha", comment_content(7002, unique_identifier=ALT, text=TEXTS[1])
        ),
        webhook.state.envelope(
            "im_receive_msg",
            "open-id-alpha",
            message_content("7003", text=TEXTS[2], sender=HANDLE, sender_id="7399999999999990001"),
        ),
    ]
    for body in bodies:
        assert status_of(webhook.deliver_body(body)) == (200, "accepted")
    lead, alt = _lead(alpha, HANDLE), _lead(alpha, ALT)
    assert writes.merge(lead, [alt])[0] == 200
    return {"lead": lead, "alt": alt, "bodies": bodies}


def _names_the_person(text: str) -> list[str]:
    needles = [HANDLE, ALT, *TEXTS, "7001", "7002", "7003", "7399999999999990001"]
    return [needle for needle in needles if needle in text]


def test_erasure_leaves_nothing_that_names_the_person_but_a_tombstone(writes, api, person, aws, bus):
    assert _names_the_person(everything_stored(aws))  # the needles do find the person before
    bus.received()
    status, body = writes.erase(person["lead"])
    assert (status, body) == (204, None)

    assert _names_the_person(everything_stored(aws)) == []
    items = aws.items("LeadsTable")
    assert sorted(i["pk"]["S"] for i in items) == sorted([f"L#{person['lead']}", f"L#{person['alt']}"])
    for item in items:  # tombstones: ids, the erasure time, a version, what happened
        assert set(item) <= {
            "pk", "sk", "lead_id", "workspace_id", "integration_id", "erased_ms", "version", "applied",
        }, item  # fmt: skip
    assert api.get(f"/social-leads/{person['lead']}")["statusCode"] == 404
    assert api.get(f"/social-leads/{person['alt']}")["statusCode"] == 404
    assert api.leads()[1]["items"] == []
    assert api.interactions(person["lead"])[0] == 404

    events = bus.received()
    erased = {e["detail"]["lead_id"]: e["detail"] for e in events if e["detail-type"] == "SocialLeadErased"}
    assert set(erased) == {person["lead"], person["alt"]}
    assert erased[person["lead"]]["erased_lead_ids"] == [person["lead"], person["alt"]]
    assert _names_the_person(str(events)) == []
    assert [e["detail-type"] for e in events] == ["SocialLeadErased", "SocialLeadErased"]

    # Erased already: 404, and nothing changes.
    before = everything_stored(aws)
    assert writes.erase(person["lead"])[0] == 404
    assert everything_stored(aws) == before


def test_a_replay_of_an_older_event_is_ignored_and_a_new_one_starts_a_new_lead(
    webhook, writes, person, aws, bus, api
):
    assert writes.erase(person["lead"])[0] == 204
    bus.received()
    for body in person["bodies"]:  # TikTok redelivers, or the delivery archive is replayed
        assert status_of(webhook.deliver_body(body)) == (200, "ignored")
    assert _names_the_person(everything_stored(aws)) == []
    assert bus.received() == []

    later = int(time.time() * 1000) + 60_000
    content = comment_content(7100, unique_identifier=HANDLE, text="I am back", timestamp=later)
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", content)) == (200, "accepted")
    _status, lead = api.leads()
    [fresh] = lead["items"]
    assert (fresh["lead_id"], fresh["interaction_count"], fresh["message"]) == (
        person["lead"],
        1,
        "I am back",
    )
    assert fresh["status"] == "new"
    [event] = bus.received()
    assert event["detail-type"] == "SocialLeadCaptured"
    # The new lead's versions continue after the tombstone's: no event id is ever reused.
    assert fresh["version"] > 2
    assert event["detail"]["event_id"] == f"{person['lead']}:v{fresh['version']}"
    # And the older events still cannot come back next to the new lead.
    assert status_of(webhook.deliver_body(person["bodies"][0])) == (200, "ignored")
    assert api.interactions_through(person["lead"])[0] == [
        api.interactions(person["lead"])[1]["items"][0]["interaction_id"]
    ]


def test_a_capture_during_an_erasure_waits_and_leaves_nothing(webhook, alpha, writes, aws):
    body = webhook.state.envelope(
        "comment.update", "open-id-alpha", comment_content(7200, unique_identifier=HANDLE, text=TEXTS[0])
    )
    webhook.deliver_body(body)
    lead = _lead(alpha, HANDLE)
    erasure_store.mark_erasing(lead, int(time.time() * 1000))  # an erasure interrupted after step 1
    later = comment_content(7201, unique_identifier=HANDLE, text=TEXTS[1], timestamp=NOW_MS + 10)
    response = webhook.deliver("comment.update", "open-id-alpha", later)
    assert status_of(response) == (503, "temporarily_unavailable")
    # Nothing of it is on the leads; only the delivery archive keeps it, for TikTok's retry.
    assert TEXTS[1] not in everything_stored(aws, but="deliveries")
    assert writes.erase(lead)[0] == 204  # the retry finishes it
    assert _names_the_person(everything_stored(aws)) == []
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", later)) == (200, "ignored")


def test_unknown_other_workspace_and_merged_leads_are_404(writes, person, aws):
    before = everything_stored(aws)
    assert writes.erase("ld_" + "0" * 26)[1]["error"]["code"] == "lead_not_found"
    assert writes.erase("not-a-lead")[0] == 404
    assert writes.erase(person["lead"], workspace="ws-2")[0] == 404
    status, body = writes.erase(person["alt"])
    assert (status, body["error"]["code"], body["error"]["merged_into"]) == (
        404,
        "lead_merged",
        person["lead"],
    )
    assert everything_stored(aws) == before
