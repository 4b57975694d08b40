"""PATCH /social-leads/{lead_id} (DESIGN §9): every transition and its refusal, the ETag as
If-Match (428 without, 412 stale, also for two PATCHes racing with one ETag), the no-op, bad bodies
changing nothing, workspace isolation and merged leads, the history, and SocialLeadUpdated from the
table's stream."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import pytest

from tests.support.aws_calls import one_at_a_time
from tests.support.leads import capture, mark_merged, person
from tests.support.lifecycle import LeadUpdates

TRANSITIONS = {
    "new": {"qualified", "dismissed"},
    "qualified": {"routed", "dismissed"},
    "dismissed": {"new"},
    "routed": set(),
}
# How to bring a new lead to each status through allowed transitions.
PATHS = {"new": [], "qualified": ["qualified"], "dismissed": ["dismissed"], "routed": ["qualified", "routed"]}


@pytest.fixture
def api(load_function, lambda_context, aws) -> LeadUpdates:
    return LeadUpdates(load_function("lead_update"), load_function("leads_query"), lambda_context)


@pytest.fixture
def lead(aws) -> str:
    return person(capture("orca.fan"))


def _stored(api: LeadUpdates, lead_id: str) -> dict[str, Any]:
    answer = api.get(lead_id)
    assert answer.status == 200, answer
    return dict(answer.body)


def _bring(api: LeadUpdates, lead_id: str, status: str) -> None:
    for step in PATHS[status]:
        assert api.patch(lead_id, {"status": step}).status == 200


@pytest.mark.parametrize("start", sorted(TRANSITIONS))
@pytest.mark.parametrize("target", sorted(TRANSITIONS))
def test_every_transition_and_its_refusal(api, start, target):
    lead_id = person(capture())
    _bring(api, lead_id, start)
    before = _stored(api, lead_id)
    answer = api.patch(lead_id, {"status": target})
    if target == start:
        assert answer.status == 200, answer
        assert answer.body == before  # nothing changed: no version, no history
    elif target in TRANSITIONS[start]:
        assert answer.status == 200, answer
        assert answer.body["status"] == target
        assert answer.body["version"] == before["version"] + 1
        assert answer.headers["ETag"] == f'"{before["version"] + 1}"'
        assert answer.body["history"][-1]["field"] == "status"
        assert (answer.body["history"][-1]["from"], answer.body["history"][-1]["to"]) == (start, target)
        assert _stored(api, lead_id) == answer.body
    else:
        assert (answer.status, answer.code) == (409, "invalid_transition"), answer
        assert _stored(api, lead_id) == before


def test_a_change_records_history_by_the_user_and_bumps_the_version_once(api, lead):
    start = _stored(api, lead)
    assert start["history"] == []
    answer = api.patch(
        lead, {"status": "qualified", "assignee": "user-ana", "labels": ["vip", "lisbon"]}, user="user-bo"
    )
    assert answer.status == 200, answer
    body = answer.body
    assert (body["status"], body["assignee"], body["labels"]) == ("qualified", "user-ana", ["vip", "lisbon"])
    assert body["version"] == start["version"] + 1
    assert [(h["field"], h["from"], h["to"], h["by"], h["reason"]) for h in body["history"]] == [
        ("status", "new", "qualified", "user-bo", None),
        ("assignee", None, "user-ana", "user-bo", None),
        ("labels", [], ["vip", "lisbon"], "user-bo", None),
    ]
    assert all(h["at"].endswith("Z") for h in body["history"])
    # Unassigning is a change too; labels compare as a set.
    answer = api.patch(lead, {"assignee": None, "labels": ["lisbon", "vip"]})
    assert answer.status == 200
    assert answer.body["assignee"] is None
    assert answer.body["labels"] == ["vip", "lisbon"]
    assert answer.body["version"] == start["version"] + 2
    assert [h["field"] for h in answer.body["history"]] == ["status", "assignee", "labels", "assignee"]


def test_a_no_op_patch_is_200_and_changes_nothing(api, lead, bus):
    api.patch(lead, {"status": "qualified", "assignee": "user-ana", "labels": ["vip"]})
    bus.received()
    before = _stored(api, lead)
    for body in (
        {},
        {"status": "qualified"},
        {"assignee": "user-ana", "labels": ["vip"]},
        {"labels": ["vip"]},
    ):
        answer = api.patch(lead, body)
        assert answer.status == 200, answer
        assert answer.body == before
        assert answer.headers["ETag"] == f'"{before["version"]}"'
    assert _stored(api, lead) == before
    assert bus.received() == []


def test_if_match_is_required_and_must_name_the_current_version(api, lead):
    before = _stored(api, lead)
    for missing in (None, "", "*"):
        answer = api.patch(lead, {"status": "qualified"}, if_match=missing)
        assert (answer.status, answer.code) == (428, "precondition_required"), missing
    version = before["version"]
    for stale in (f'"{version - 1}"', f'"{version + 1}"', '"abc"', "W/", '"99999999999999999999999"'):
        answer = api.patch(lead, {"status": "qualified"}, if_match=stale)
        assert (answer.status, answer.code) == (412, "version_mismatch"), stale
    assert _stored(api, lead) == before
    # The ETag as GET emits it; a weak or unquoted form and a list naming it are taken too.
    for accepted, status in ((f'W/"{version}"', "qualified"), (f'"0", "{version + 1}"', "routed")):
        answer = api.patch(lead, {"status": status}, if_match=accepted)
        assert answer.status == 200, (accepted, answer)
        version += 1
    assert api.patch(lead, {"labels": ["x"]}, if_match=str(version)).status == 200


def test_two_patches_with_one_etag_one_wins_the_other_is_412(api, lead):
    etag = api.etag(lead)
    first = api.patch(lead, {"status": "qualified"}, if_match=etag)
    second = api.patch(lead, {"status": "qualified"}, if_match=etag)
    assert (first.status, second.status) == (200, 412)
    assert second.code == "version_mismatch"
    assert len(_stored(api, lead)["history"]) == 1


def test_two_patches_with_one_etag_at_once_one_wins(api, lead):
    etag = api.etag(lead)
    answers: list[Any] = []
    start = threading.Barrier(2)

    def send(body: dict[str, Any], user: str) -> None:
        start.wait()
        answers.append(api.patch(lead, body, if_match=etag, user=user))

    threads = [
        threading.Thread(target=send, args=({"status": "qualified"}, "user-ana")),
        threading.Thread(target=send, args=({"status": "dismissed"}, "user-bo")),
    ]
    # Each AWS call whole, as DynamoDB applies a conditional write atomically (in-process moto
    # checks and writes in separate steps); the two requests still interleave call by call.
    with one_at_a_time():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(a.status for a in answers) == [200, 412]
    [winner] = [a for a in answers if a.status == 200]
    stored = _stored(api, lead)
    assert stored["status"] == winner.body["status"]
    assert len(stored["history"]) == 1
    assert stored["version"] == int(etag.strip('"')) + 1


@pytest.mark.parametrize(
    "body",
    [
        {"owner": "user-ana"},
        {"status": "won"},
        {"status": None},
        {"status": 1},
        {"status": ["qualified"]},
        {"assignee": 7},
        {"assignee": ""},
        {"assignee": " user-ana"},
        {"assignee": "user\nana"},
        {"assignee": "u" * 65},
        {"labels": "vip"},
        {"labels": None},
        {"labels": [1]},
        {"labels": ["x" * 65]},
        {"labels": [""]},
        {"labels": ["vip", "vip"]},
        {"labels": [f"label-{n}" for n in range(21)]},
        {"status": "qualified", "history": []},
        ["status", "qualified"],
        "qualified",
        None,
    ],
)
def test_bad_bodies_are_400_and_change_nothing(api, lead, body):
    before = _stored(api, lead)
    answer = api.patch(lead, body)
    assert answer.status == 400, answer
    assert answer.code == "invalid_body"
    assert _stored(api, lead) == before


@pytest.mark.parametrize("raw", ["", "{", "not json", '{"status": "qualified"', "\u0000"])
def test_a_body_that_is_not_json_is_400(api, lead, raw):
    before = _stored(api, lead)
    answer = api.patch(lead, None, raw=raw)
    assert answer.status == 400, answer
    assert _stored(api, lead) == before


def test_another_workspace_an_unknown_and_a_merged_lead_are_404(api, lead):
    etag = api.etag(lead)
    answer = api.patch(lead, {"status": "qualified"}, if_match=etag, workspace="ws-2")
    assert (answer.status, answer.code) == (404, "lead_not_found")
    for unknown in ("ld_" + "0" * 26, "not-a-lead"):
        answer = api.patch(unknown, {"status": "qualified"}, if_match='"1"')
        assert (answer.status, answer.code) == (404, "lead_not_found")
    target = person(capture("orca.fan.2"))
    mark_merged(lead, target)
    answer = api.patch(lead, {"status": "qualified"}, if_match=api.etag(target))
    assert (answer.status, answer.code) == (404, "lead_merged")
    assert answer.body["error"]["merged_into"] == target


def test_no_claims_is_401_and_no_workspace_is_403(api, lead):
    from tests.support.events import claims
    from tests.support.lifecycle import patch_event

    event = patch_event(lead, {"status": "qualified"}, if_match='"1"')
    del event["requestContext"]["authorizer"]
    assert api.update.lambda_handler(event, api.context)["statusCode"] == 401
    event = patch_event(lead, {"status": "qualified"}, if_match='"1"')
    event["requestContext"]["authorizer"]["jwt"]["claims"] = claims(workspace=None)
    assert api.update.lambda_handler(event, api.context)["statusCode"] == 403


def test_each_change_is_announced_once_from_the_stream(api, lead, bus):
    captured = bus.received()
    assert [e["detail-type"] for e in captured] == ["SocialLeadCaptured"]
    answer = api.patch(lead, {"status": "qualified", "labels": ["vip"]}, user="user-ana")
    api.patch(lead, {"assignee": "user-bo"})
    events = bus.received()
    assert [e["detail-type"] for e in events] == ["SocialLeadUpdated", "SocialLeadUpdated"]
    first = events[0]["detail"]
    assert first["event_id"] == f"{lead}:v{answer.body['version']}"
    assert (first["status"], first["labels"], first["lead_id"]) == ("qualified", ["vip"], lead)
    assert (first["change"]["kind"], first["change"]["by"]) == ("lifecycle", "user-ana")
    assert [c["field"] for c in first["change"]["changes"]] == ["status", "labels"]
    assert events[1]["detail"]["change"]["changes"][0]["to"] == "user-bo"
    assert events[1]["detail"]["assignee"] == "user-bo"
    # A new interaction afterwards is activity, not another update.
    person(capture("orca.fan"))
    assert [e["detail-type"] for e in bus.received()] == ["SocialLeadActivity"]


def test_the_history_keeps_the_newest_changes(api, lead, monkeypatch):
    from orcapulse_tiktok import lifecycle

    monkeypatch.setattr(lifecycle, "HISTORY_LIMIT", 3)
    for n in range(5):
        assert api.patch(lead, {"labels": [f"l{n}"]}).status == 200
    history = _stored(api, lead)["history"]
    assert [h["to"] for h in history] == [["l2"], ["l3"], ["l4"]]


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "application/x-www-form-urlencoded", "text/plain"]
)
def test_a_body_declared_as_anything_but_json_is_400(api, lead, content_type):
    from tests.support.lifecycle import patch_event

    before = _stored(api, lead)
    event = patch_event(lead, {"status": "qualified"}, if_match=api.etag(lead))
    event["headers"]["content-type"] = content_type
    response = api.update.lambda_handler(event, api.context)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "unsupported_media_type"
    del event["requestContext"]["authorizer"]
    assert api.update.lambda_handler(event, api.context)["statusCode"] == 401
    assert _stored(api, lead) == before


def test_a_body_that_is_not_utf8_is_400(api, lead):
    from tests.support.lifecycle import patch_event

    before = _stored(api, lead)
    event = patch_event(lead, None, if_match=api.etag(lead), raw="")
    event["body"], event["isBase64Encoded"] = base64.b64encode(b"\x02\xffUu\x11c\x830Q").decode(), True
    response = api.update.lambda_handler(event, api.context)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "invalid_body"
    event["isBase64Encoded"], event["body"] = False, "caf\udce9"  # a lone surrogate, as a raw byte decodes
    assert api.update.lambda_handler(event, api.context)["statusCode"] == 400
    assert _stored(api, lead) == before
