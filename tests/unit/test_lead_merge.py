"""POST /social-leads/{lead_id}/merge (DESIGN §9): the listed leads' interactions move onto the
target, its counters are counted again from them, the merged leads answer 404 ``lead_merged`` and
leave the listing, ``SocialLeadUpdated`` is published; bad requests change nothing; a retry of a
finished merge changes nothing; captures racing the merge land on the target."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from orcapulse_tiktok import people
from orcapulse_tiktok.errors import TransientError

from tests.support.aws_calls import one_at_a_time
from tests.support.events import json_body
from tests.support.leads import ReadApi, capture, integration_of, person, record, stored_leads
from tests.support.lifecycle import LeadWrites, merge_event
from tests.support.webhooks import interaction_items

BASE = 1_790_000_000_000
WRITES_PER_PERSON = 12


@pytest.fixture
def writes(load_function, lambda_context, aws) -> LeadWrites:
    return LeadWrites(load_function, lambda_context)


@pytest.fixture
def api(load_function, lambda_context, aws) -> ReadApi:
    return ReadApi(load_function("leads_query"), lambda_context)


def _three_people() -> tuple[str, str, str]:
    target = person(
        capture("ann", at_ms=BASE + 5_000, message="first of ann"),
        capture("ann", kind="dm", at_ms=BASE + 9_000, message="ann's dm"),
    )
    b = person(capture("ann_alt", at_ms=BASE + 1_000, message="the earliest", high_intent=True))
    c = person(capture("ann_b", kind="dm", at_ms=BASE + 20_000, message="the latest of all"))
    return target, b, c


def _snapshot(aws) -> list[dict[str, Any]]:
    return sorted(aws.items("LeadsTable"), key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def test_three_leads_merge_into_one_with_every_interaction_and_recounted_fields(writes, api, bus, aws):
    target, b, c = _three_people()
    bus.received()  # the captures' own announcements
    status, body = writes.merge(target, [b, c])
    assert status == 200, body
    assert body["lead_id"] == target
    assert body["interaction_count"] == 4
    assert len(body["interactions"]) == 4
    assert next(i["message"] for i in body["interactions"]) == "the latest of all"  # newest first
    assert {i["lead_id"] for i in body["interactions"]} == {target}
    assert body["capture_sources"] == ["tiktok_comment", "tiktok_dm"]
    assert body["high_intent"] is True
    assert body["message"] == "the latest of all"
    assert body["first_seen_at"] == "2026-09-21T14:13:21Z"
    assert body["captured_at"] == "2026-09-21T14:13:21Z"  # the first interaction's, now b's
    assert body["last_activity_at"] == "2026-09-21T14:13:40Z"
    assert body["version"] == 3  # two interactions, then the merge

    # The merged leads answer 404 lead_merged with where they went, and leave the listing.
    for merged in (b, c):
        response = api.get(f"/social-leads/{merged}")
        assert response["statusCode"] == 404
        assert json_body(response)["error"] == {
            "code": "lead_merged",
            "message": f"The lead was merged into {target}",
            "merged_into": target,
        }
    status, listing = api.leads()
    assert [lead["lead_id"] for lead in listing["items"]] == [target]
    assert api.interactions_through(target)[0] == [i["interaction_id"] for i in body["interactions"]]

    [event] = bus.received()
    assert event["detail-type"] == "SocialLeadUpdated"
    assert event["detail"]["event_id"] == f"{target}:v3"
    assert event["detail"]["change"]["kind"] == "merge"
    assert event["detail"]["change"]["merged_lead_ids"] == sorted([b, c])
    assert event["detail"]["interaction_count"] == 4

    # Nothing of the person stays on the merged leads: stubs and a pointer only.
    for item in aws.items("LeadsTable"):
        if item["pk"]["S"] in (f"L#{b}", f"L#{c}"):
            assert not {"message", "author", "source_ref", "contact"} & set(item), item


def test_a_retry_of_a_finished_merge_changes_nothing_and_announces_nothing(writes, bus, aws):
    target, b, c = _three_people()
    assert writes.merge(target, [b, c])[0] == 200
    bus.received()
    before = _snapshot(aws)
    status, body = writes.merge(target, [c, b])
    assert status == 200
    assert body["version"] == 3
    assert _snapshot(aws) == before
    assert bus.received() == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        '{"lead_ids": []}',
        '{"lead_ids": "ld_00000000000000000000000000"}',
        '{"lead_ids": ["nope"]}',
        '{"lead_ids": ["ld_00000000000000000000000000"], "extra": 1}',
        '{"lead_ids": [' + ",".join([f'"ld_{n:026x}"' for n in range(21)]) + "]}",
        "{}",
    ],
)
def test_a_bad_body_is_400_and_changes_nothing(writes, aws, body):
    target, _b, _ = _three_people()
    before = _snapshot(aws)
    status, answer = writes.merge(target, body)
    assert status == 400, answer
    assert answer["error"]["code"] == "invalid_body"
    assert _snapshot(aws) == before


def test_the_target_listed_or_a_lead_twice_is_400(writes, aws):
    target, b, _ = _three_people()
    before = _snapshot(aws)
    for ids in ([target], [b, b], [b, target]):
        status, answer = writes.merge(target, ids)
        assert (status, answer["error"]["code"]) == (400, "invalid_body"), ids
    assert _snapshot(aws) == before


def test_unknown_other_workspace_other_integration_and_merged_elsewhere(writes, aws):
    target, b, c = _three_people()
    other_ws = person(capture("zed", workspace_id="ws-2"))
    other_integration = person(capture("yan", integration_id=integration_of("ws-1", "open-id-beta")))
    unknown = "ld_" + "0" * 26
    before = _snapshot(aws)
    assert writes.merge(unknown, [b])[0] == 404
    assert writes.merge(target, [unknown])[1]["error"]["code"] == "lead_not_found"
    assert writes.merge(target, [other_ws])[0] == 404
    assert writes.merge(target, [b], workspace="ws-2")[0] == 404
    status, answer = writes.merge(target, [b, other_integration])
    assert (status, answer["error"]["code"]) == (409, "integration_mismatch")
    assert _snapshot(aws) == before
    # b merged into c: merging it into the target is a conflict; merging into b is lead_merged.
    assert writes.merge(c, [b])[0] == 200
    status, answer = writes.merge(target, [b])
    assert (status, answer["error"]["code"]) == (409, "lead_already_merged")
    status, answer = writes.merge(b, [target])
    assert (status, answer["error"]["code"], answer["error"]["merged_into"]) == (404, "lead_merged", c)


def test_a_merge_of_a_merge_target_repoints_and_erases_nothing_twice(writes, api):
    target, b, c = _three_people()
    assert writes.merge(c, [b])[0] == 200
    status, body = writes.merge(target, [c])
    assert status == 200
    assert body["interaction_count"] == 4
    # b now points straight at the final target; a new interaction of b's person lands there.
    assert json_body(api.get(f"/social-leads/{b}"))["error"]["merged_into"] == target
    record(capture("ann_alt", at_ms=BASE + 30_000, message="ann_alt again"))
    status, lead = api.leads()
    assert [(x["lead_id"], x["interaction_count"], x["message"]) for x in lead["items"]] == [
        (target, 5, "ann_alt again")
    ]


def test_three_leads_merge_while_their_people_keep_writing(writes, aws, bus):
    """New interactions of the three people arrive from several threads while the merge runs,
    and after it: every one lands on the target exactly once, and its counters agree."""
    people_ = ["kim", "kim_alt", "kim_b"]
    target, b, c = (person(capture(p, at_ms=BASE + n * 1000)) for n, p in enumerate(people_))
    errors: list[BaseException] = []
    sent: list[str] = []
    lock = threading.Lock()
    started = threading.Barrier(len(people_) + 1)

    def write(name: str, offset: int) -> None:
        started.wait()
        for n in range(WRITES_PER_PERSON):
            item = capture(name, at_ms=BASE + 100_000 + offset + n)
            for _ in range(5):  # a 503 the webhook would answer: TikTok redelivers
                try:
                    record(item)
                    break
                except TransientError:
                    continue
                except Exception as exc:
                    errors.append(exc)
                    return
            with lock:
                sent.append(item.object_key)
            time.sleep(0.005)

    threads = [threading.Thread(target=write, args=(p, k * 10_000)) for k, p in enumerate(people_)]
    # Each AWS call whole, as DynamoDB applies each conditional write atomically (moto does not).
    with one_at_a_time():
        for thread in threads:
            thread.start()
        started.wait()
        for _ in range(5):  # a 503 (the target kept changing under the count) is retried by the caller
            status, body = writes.merge(target, [b, c])
            if status != 503:
                break
        for thread in threads:
            thread.join()
    assert status == 200, body
    assert not errors, errors
    assert len(sent) == 3 * WRITES_PER_PERSON
    # After the merge, every later interaction of the three people lands on the target.
    for name in people_:
        record(capture(name, at_ms=BASE + 500_000))
    [lead] = stored_leads("ws-1")
    live = [i for i in interaction_items(aws.items("LeadsTable")) if "moved_to" not in i]
    assert {i["pk"]["S"] for i in live} == {f"L#{target}"}
    assert len(live) == 3 + len(sent) + 3
    assert int(lead.interaction_count) == len(live)
    assert lead.counted == {i["interaction_id"]["S"][3:15] for i in live}
    assert int(lead.last_activity_ms) == BASE + 500_000
    assert people.lead_id_for(integration_of("ws-1"), people.handle_key("kim")) == target


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "application/x-www-form-urlencoded", "text/plain"]
)
def test_a_body_not_declared_as_json_is_400_and_changes_nothing(
    load_function, lambda_context, aws, content_type
):
    target, b, _ = _three_people()
    before = _snapshot(aws)
    event = merge_event(target, {"lead_ids": [b]})
    event["headers"]["content-type"] = content_type
    response = load_function("lead_merge").lambda_handler(event, lambda_context)
    assert response["statusCode"] == 400
    assert json_body(response)["error"]["code"] == "unsupported_media_type"
    assert _snapshot(aws) == before
    event["headers"]["content-type"] = "application/json; charset=utf-8"
    assert load_function("lead_merge").lambda_handler(event, lambda_context)["statusCode"] == 200


def test_a_comment_deleted_after_its_lead_was_merged_changes_the_moved_interaction(
    webhook, alpha, writes, api
):
    from tests.support.webhooks import NOW_MS, comment_content, status_of

    for comment_id, handle in ((8001, "sam"), (8002, "sam_alt")):
        content = comment_content(comment_id, unique_identifier=handle, timestamp=NOW_MS + comment_id)
        assert status_of(webhook.deliver("comment.update", "open-id-alpha", content))[1] == "accepted"
    target = people.lead_id_for(alpha, people.handle_key("sam"))
    alt = people.lead_id_for(alpha, people.handle_key("sam_alt"))
    assert writes.merge(target, [alt])[0] == 200
    deleted = comment_content(8002, action="delete", unique_identifier="sam_alt", timestamp=NOW_MS + 9000)
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", deleted)) == (200, "accepted")
    assert api.interactions(target)[0] == 200
    _, page = api.interactions(target)
    states = {i["source_ref"]["comment_id"]: i["source_state"] for i in page["items"]}
    assert states == {"8001": "present", "8002": "deleted"}
