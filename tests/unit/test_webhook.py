"""POST /webhooks/tiktok: signed events, shaped as TikTok documents them, become social leads in
every workspace that connected the account; authorization.removed revokes; other events are
acknowledged. Driven through the handler, with moto for AWS and the OAuth flow for set-up."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from orcapulse_tiktok import clock
from orcapulse_tiktok.people import handle_key, interaction_id_for, lead_id_for

from tests.support.connect import connect
from tests.support.webhooks import (
    NOW_MS,
    comment_content,
    high_intent_content,
    message_content,
    recording_aws_calls,
    status_of,
    stored_interactions,
    stored_leads,
)

COMMENT_ID = "7321234567890123457"


def integration(aws, integration_id: str) -> dict[str, Any]:
    [item] = [i for i in aws.items("IntegrationsTable") if i["integration_id"]["S"] == integration_id]
    return cast(dict[str, Any], item)


def emf(capsys, name: str) -> list[dict[str, Any]]:
    """The EMF documents for metric ``name`` printed so far."""
    docs = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            doc = json.loads(line)
            if name in doc:
                docs.append(doc)
    return docs


# -- people and their interactions ------------------------------------------------------------------
def test_comment_insert_creates_a_person_with_one_interaction(webhook, alpha, aws):
    response = webhook.deliver("comment.update", "open-id-alpha", comment_content())

    assert status_of(response) == (200, "accepted")
    [lead] = stored_leads(aws)
    assert lead == {
        "lead_id": lead_id_for(alpha, handle_key("orca_fan_88")),
        "workspace_id": "ws-1",
        "integration_id": alpha,
        "platform": "tiktok",
        "capture_source": "tiktok_comment",
        "capture_sources": ["tiktok_comment"],
        "status": "new",
        "author": {"id": "orca_fan_88", "username": "orca_fan_88"},
        "message": "How much is the orca plush? Do you ship to Lisbon?",
        "source_ref": {
            "video_id": "7300000000000000001",
            "comment_id": COMMENT_ID,
            "parent_comment_id": "7300000000000000001",
        },
        "high_intent": False,
        "source_state": "present",
        "captured_at": "2025-11-25T08:00:00Z",
        "created_at": lead["created_at"],
        "first_seen_at": "2025-11-25T08:00:00Z",
        "last_activity_at": "2025-11-25T08:00:00Z",
        "interaction_count": 1,
        "assignee": None,
        "labels": [],
        "contact": None,
        "version": 1,
        "history": [],
        "score": None,
        "route": None,
    }
    assert lead["created_at"].endswith("Z")
    [interaction] = stored_interactions(aws)
    assert interaction == {
        "interaction_id": interaction_id_for(alpha, f"comment:{COMMENT_ID}"),
        "lead_id": lead["lead_id"],
        "kind": "comment",
        "capture_source": "tiktok_comment",
        "message": "How much is the orca plush? Do you ship to Lisbon?",
        "source_ref": lead["source_ref"],
        "occurred_at": "2025-11-25T08:00:00Z",
        "source_state": "present",
        "high_intent": False,
    }
    last_event = clock.parse_iso(integration(aws, alpha)["last_event_at"]["S"])
    assert abs(last_event.timestamp() - clock.parse_iso(lead["created_at"]).timestamp()) <= 1


def test_one_person_writing_again_is_one_lead_with_a_timeline(webhook, alpha, aws):
    later = NOW_MS + 60_000
    webhook.deliver("im_receive_msg", "open-id-alpha", message_content("1", text="first"))
    webhook.deliver("im_receive_msg", "open-id-alpha", message_content("2", text="second", timestamp=later))
    [lead] = stored_leads(aws)
    assert lead["interaction_count"] == 2
    assert lead["message"] == "second"  # the latest, for list views
    assert lead["source_ref"]["message_id"] == "1"  # the first interaction's
    assert (lead["first_seen_at"], lead["last_activity_at"]) == (
        "2025-11-25T08:00:05Z",
        "2025-11-25T08:01:00Z",
    )
    assert lead["version"] == 2
    assert [i["message"] for i in stored_interactions(aws)] == ["first", "second"]


def test_a_dm_and_a_comment_of_one_handle_are_one_person(webhook, alpha, aws):
    webhook.deliver("comment.update", "open-id-alpha", comment_content(unique_identifier="lisbon_buyer"))
    webhook.deliver("im_receive_msg", "open-id-alpha", message_content(sender="lisbon_buyer"))
    [lead] = stored_leads(aws)
    assert lead["capture_sources"] == ["tiktok_comment", "tiktok_dm"]
    assert lead["capture_source"] == "tiktok_comment"  # the first interaction's
    assert [i["kind"] for i in stored_interactions(aws)] == ["comment", "dm"]


def test_different_people_are_different_leads(webhook, alpha, aws):
    webhook.deliver("im_receive_msg", "open-id-alpha", message_content("1", sender="a", sender_id="11"))
    webhook.deliver("im_receive_msg", "open-id-alpha", message_content("2", sender="b", sender_id="22"))
    assert len(stored_leads(aws)) == 2


def test_a_late_older_event_counts_but_does_not_move_the_activity_back(webhook, alpha, aws):
    webhook.deliver(
        "im_receive_msg", "open-id-alpha", message_content("2", text="new", timestamp=NOW_MS + 60_000)
    )
    webhook.deliver("im_receive_msg", "open-id-alpha", message_content("1", text="old", timestamp=NOW_MS))
    [lead] = stored_leads(aws)
    assert lead["interaction_count"] == 2
    assert lead["message"] == "new"
    assert lead["last_activity_at"] == "2025-11-25T08:01:00Z"
    assert lead["first_seen_at"] == "2025-11-25T08:00:00Z"  # the earliest event seen, even late


def test_int64_ids_stay_exact_whether_numbers_or_strings(webhook, alpha, aws):
    # 2**63 - 1 is not representable as a float: a float round trip would change its digits.
    big = 9223372036854775807
    assert (
        status_of(webhook.deliver("comment.update", "open-id-alpha", comment_content(big)))[1] == "accepted"
    )
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", comment_content(str(big - 1))))[
        1
    ] == ("accepted")
    refs = sorted(i["source_ref"]["comment_id"] for i in stored_interactions(aws))
    assert refs == [str(big - 1), str(big)]


def test_direct_message_creates_a_dm_lead(webhook, alpha, aws):
    response = webhook.deliver("im_receive_msg", "open-id-alpha", message_content())

    assert status_of(response) == (200, "accepted")
    [lead] = stored_leads(aws)
    assert lead["lead_id"] == lead_id_for(alpha, handle_key("lisbon_buyer"))
    assert lead["capture_source"] == "tiktok_dm"
    assert lead["author"] == {"id": "7399999999999999999", "username": "lisbon_buyer"}
    assert lead["message"] == "Hi! Is the large orca plush back in stock?"
    assert lead["source_ref"] == {
        "conversation_id": "0:1:7399999999999999999:7388888888888888888",
        "message_id": "7400000000000000042",
    }
    assert lead["captured_at"] == "2025-11-25T08:00:05Z"
    assert lead["high_intent"] is False
    [interaction] = stored_interactions(aws)
    assert interaction["kind"] == "dm"


def test_high_intent_comment_creates_a_flagged_comment_lead(webhook, alpha, aws):
    response = webhook.deliver("im_receive_high_intent_comment", "open-id-alpha", high_intent_content())

    assert status_of(response) == (200, "accepted")
    [lead] = stored_leads(aws)
    assert lead["lead_id"] == lead_id_for(alpha, handle_key("orca_fan_88"))
    assert lead["capture_source"] == "tiktok_comment"
    assert lead["high_intent"] is True
    assert lead["message"] == "How much is the orca plush? Do you ship to Lisbon?"
    assert lead["author"]["username"] == "orca_fan_88"
    [interaction] = stored_interactions(aws)
    assert (interaction["kind"], interaction["high_intent"]) == ("high_intent_comment", True)


def test_high_intent_for_a_captured_comment_flags_the_same_interaction(webhook, alpha, aws):
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", comment_content()))[1] == "accepted"
    before = stored_leads(aws)

    response = webhook.deliver("im_receive_high_intent_comment", "open-id-alpha", high_intent_content())

    assert status_of(response) == (200, "duplicate")  # no new interaction
    [lead] = stored_leads(aws)
    assert lead == {**before[0], "high_intent": True, "version": before[0]["version"] + 1}
    [interaction] = stored_interactions(aws)
    assert interaction["high_intent"] is True
    # And the insert that arrives after the high-intent event adds nothing either.
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", comment_content()))[1] == "duplicate"
    assert stored_leads(aws) == [lead]


def test_minimal_contents_still_make_leads(webhook, alpha, aws):
    webhook.deliver("im_receive_msg", "open-id-alpha", {"message_id": 77}, create_time=1764057600)
    webhook.deliver("comment.update", "open-id-alpha", {"comment_id": "88", "comment_action": "insert"})
    dm, comment = sorted(stored_leads(aws), key=lambda lead: lead["capture_source"], reverse=True)
    assert (dm["capture_source"], dm["message"], dm["author"]) == (
        "tiktok_dm",
        "",
        {"id": None, "username": None},
    )
    assert dm["source_ref"] == {"message_id": "77"}
    assert comment["source_ref"] == {"comment_id": "88"}


def test_captured_at_falls_back_to_create_time(webhook, alpha, aws):
    content = comment_content()
    del content["timestamp"]
    webhook.deliver("comment.update", "open-id-alpha", content, create_time=1764061200)
    assert stored_leads(aws)[0]["captured_at"] == "2025-11-25T09:00:00Z"


# -- comment deleted / hidden ---------------------------------------------------------------------
@pytest.mark.parametrize(("action", "state"), [("delete", "deleted"), ("set_to_hidden", "hidden")])
def test_deleting_or_hiding_a_captured_comment_marks_its_interaction(webhook, alpha, aws, action, state):
    webhook.deliver("comment.update", "open-id-alpha", comment_content())

    later = comment_content(action=action, timestamp=NOW_MS + 60_000)
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", later)) == (200, "accepted")
    [interaction] = stored_interactions(aws)
    assert interaction["source_state"] == state
    [lead] = stored_leads(aws)
    assert lead["source_state"] == state  # it was the lead's first interaction
    assert lead["message"] == "How much is the orca plush? Do you ship to Lisbon?"  # the lead keeps its text
    # The same notification again changes nothing.
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", later)) == (200, "duplicate")


def test_unhiding_restores_the_interaction_and_a_late_older_hide_does_not_win(webhook, alpha, aws):
    webhook.deliver("comment.update", "open-id-alpha", comment_content())
    hide = comment_content(action="set_to_hidden", timestamp=NOW_MS + 60_000)
    unhide = comment_content(action="set_to_public", timestamp=NOW_MS + 120_000)
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", hide))[1] == "accepted"
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", unhide))[1] == "accepted"
    assert stored_interactions(aws)[0]["source_state"] == "present"

    # TikTok redelivers the hide hours later (it retries for 72 h): the newer unhide stands.
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", hide))[1] == "ignored"
    assert stored_interactions(aws)[0]["source_state"] == "present"


def test_deleting_a_comment_that_made_no_lead_is_ignored(webhook, alpha, aws):
    response = webhook.deliver("comment.update", "open-id-alpha", comment_content(action="delete"))
    assert status_of(response) == (200, "ignored")
    assert stored_leads(aws) == []


# -- acknowledged, not captured -------------------------------------------------------------------
IGNORED_EVENTS = [
    ("im_send_msg", {"conversation_id": "c1", "message_id": "m1", "text": {"body": "Thanks!"}}),
    ("im_mark_read_msg", {"conversation_id": "c1", "read_user": {"id": "1"}}),
    ("video.publish.completed", {"share_id": "video.6974245311675353080.VDCxrcMJ"}),
    ("video.upload.failed", {"share_id": "video.6974245311675353080.VDCxrcMJ"}),
    ("post.publish.complete", {"publish_id": "v_pub_file~v2.123456789", "publish_type": "DIRECT_PUBLISH"}),
    ("portability.download.ready", {"request_id": 123456}),
    ("comment.update", comment_content(action="set_to_pinned")),
    ("a.future.event", {"anything": [1, 2, 3]}),
]


def test_other_events_are_acknowledged_and_ignored(webhook, alpha, aws, capsys):
    capsys.readouterr()
    for event, content in IGNORED_EVENTS:
        assert status_of(webhook.deliver(event, "open-id-alpha", content)) == (200, "ignored"), event

    assert stored_leads(aws) == []
    counted = [(doc["event_type"], doc["outcome"]) for doc in emf(capsys, "WebhookEvents")]
    expected = [("other" if e == "a.future.event" else e, "ignored") for e, _ in IGNORED_EVENTS]
    assert counted == expected


def test_events_for_an_unknown_account_are_ignored(webhook, alpha, aws):
    response = webhook.deliver("comment.update", "open-id-nobody", comment_content())
    assert status_of(response) == (200, "ignored")
    assert stored_leads(aws) == []


# -- several workspaces, one TikTok account -------------------------------------------------------
def test_one_account_in_two_workspaces_gives_each_workspace_its_lead(
    webhook, load_function, lambda_context, tiktok, aws
):
    first = connect(load_function, lambda_context, tiktok, workspace="ws-1", open_id="open-id-alpha")
    second = connect(load_function, lambda_context, tiktok, workspace="ws-2", open_id="open-id-alpha")
    other = connect(load_function, lambda_context, tiktok, workspace="ws-3", open_id="open-id-beta")

    assert status_of(webhook.deliver("comment.update", "open-id-alpha", comment_content()))[1] == "accepted"
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", comment_content()))[1] == "duplicate"

    leads = stored_leads(aws)
    assert [(lead["workspace_id"], lead["integration_id"]) for lead in leads] == [
        ("ws-1", first),
        ("ws-2", second),
    ]
    assert leads[0]["lead_id"] != leads[1]["lead_id"]
    assert "last_event_at" not in integration(aws, other)


def test_a_workspace_that_was_revoked_stops_getting_leads_the_other_keeps_them(
    webhook, load_function, lambda_context, tiktok, aws
):
    kept = connect(load_function, lambda_context, tiktok, workspace="ws-1", open_id="open-id-alpha")
    connect(load_function, lambda_context, tiktok, workspace="ws-2", open_id="open-id-alpha")
    # Only reachable through the API: ws-2 disconnects; TikTok's account stays authorised for ws-1.
    disconnect = load_function("disconnect")
    from tests.support.events import claims, http_event

    [ws2] = [i for i in aws.items("IntegrationsTable") if i["workspace_id"]["S"] == "ws-2"]
    integration_id = ws2["integration_id"]["S"]
    disconnect.lambda_handler(
        http_event(
            "DELETE",
            f"/integrations/tiktok/{integration_id}",
            route="/integrations/tiktok/{integration_id}",
            path_parameters={"integration_id": integration_id},
            jwt_claims=claims(workspace="ws-2"),
        ),
        lambda_context,
    )

    webhook.deliver("comment.update", "open-id-alpha", comment_content())
    assert [lead["integration_id"] for lead in stored_leads(aws)] == [kept]


# -- authorization.removed ------------------------------------------------------------------------
def test_authorization_removed_revokes_and_deletes_the_dead_token(webhook, alpha, aws):
    assert alpha in aws.token_secrets()

    response = webhook.deliver("authorization.removed", "open-id-alpha", {"reason": 2})

    assert status_of(response) == (200, "accepted")
    item = integration(aws, alpha)
    assert item["status"]["S"] == "revoked"
    assert item["revoked_reason"]["S"] == "account_deleted"
    assert item["display_name"]["S"] == "Alpha Shop"  # the record stays visible
    assert "refresh_bucket" not in item
    assert "refresh_due_at" not in item
    assert aws.token_secrets() == {}


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (0, "unknown"),
        (1, "user_disconnected"),
        (2, "account_deleted"),
        (3, "age_changed"),
        (4, "account_banned"),
        (5, "developer_revoked"),
        (42, "unknown"),
        (-1, "unknown"),
    ],
)
def test_revoked_reason_codes(reason, expected):
    from orcapulse_tiktok.capture import revoked_reason

    assert revoked_reason(reason) == expected


def test_events_after_revocation_are_ignored_and_removal_redelivery_is_duplicate(webhook, alpha, aws):
    webhook.deliver("authorization.removed", "open-id-alpha", {"reason": 1})

    assert status_of(webhook.deliver("comment.update", "open-id-alpha", comment_content()))[1] == "ignored"
    assert status_of(webhook.deliver("im_receive_msg", "open-id-alpha", message_content()))[1] == "ignored"
    assert stored_leads(aws) == []
    again = webhook.deliver("authorization.removed", "open-id-alpha", {"reason": 1})
    assert status_of(again) == (200, "duplicate")
    assert integration(aws, alpha)["revoked_reason"]["S"] == "user_disconnected"


def test_a_late_removal_does_not_revoke_a_newer_connection(webhook, alpha, aws, tiktok_state):
    # The removal was created an hour before the (re)connection: it is a late redelivery.
    import time

    response = webhook.deliver(
        "authorization.removed", "open-id-alpha", {"reason": 1}, create_time=int(time.time()) - 3600
    )

    assert status_of(response) == (200, "ignored")
    assert integration(aws, alpha)["status"]["S"] == "active"
    assert alpha in aws.token_secrets()


def test_removal_for_an_unknown_account_is_ignored(webhook, alpha, aws):
    response = webhook.deliver("authorization.removed", "open-id-nobody", {"reason": 1})
    assert status_of(response) == (200, "ignored")
    assert integration(aws, alpha)["status"]["S"] == "active"


# -- sandbox --------------------------------------------------------------------------------------
@pytest.fixture
def sandbox(monkeypatch):
    from orcapulse_tiktok.config import get_settings

    monkeypatch.setenv("WEBHOOK_MODE", "sandbox")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_sandbox_verifies_logs_and_acknowledges_without_storing(sandbox, webhook, alpha, aws, logs):
    integration_before = integration(aws, alpha)
    secrets_before = aws.token_secrets()

    for event, content in [
        ("comment.update", comment_content()),
        ("im_receive_msg", message_content()),
        ("authorization.removed", {"reason": 1}),
    ]:
        assert status_of(webhook.deliver(event, "open-id-alpha", content)) == (200, "accepted")

    assert stored_leads(aws) == []
    assert integration(aws, alpha) == integration_before
    assert aws.token_secrets() == secrets_before
    records = [json.loads(line) for line in logs]
    logged = [r for r in records if r.get("message", "").startswith("webhook event verified")]
    assert [r["event_type"] for r in logged] == ["comment.update", "im_receive_msg", "authorization.removed"]
    text = "\n".join(logs)
    assert "orca plush" not in text  # message text only ever at DEBUG


def test_sandbox_makes_no_aws_call_but_reading_the_app_secrets(sandbox, webhook, alpha, aws):
    with recording_aws_calls() as calls:
        with calls.measure() as cold:
            webhook.deliver("comment.update", "open-id-alpha", comment_content())
        with calls.measure() as warm:
            webhook.deliver("authorization.removed", "open-id-alpha", {"reason": 1})
    # Cold: the Login Kit app's secret and the Business app's (both may sign deliveries).
    assert (cold, warm) == (["secretsmanager.GetSecretValue"] * 2, [])


def test_sandbox_still_rejects_bad_signatures(sandbox, webhook, aws, tiktok_state):
    body = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content())
    response = webhook.post(body, webhook.signed(body, secret="not-the-secret"))
    assert status_of(response) == (401, "signature_invalid")


# -- metrics and logs -----------------------------------------------------------------------------
def test_metrics_count_events_by_type_and_outcome_and_leads_created(webhook, alpha, aws, capsys):
    capsys.readouterr()
    webhook.deliver("comment.update", "open-id-alpha", comment_content())
    webhook.deliver("comment.update", "open-id-alpha", comment_content())
    webhook.deliver("video.publish.completed", "open-id-alpha", {"share_id": "video.1.x"})
    webhook.post(b"{}", {"TikTok-Signature": "t=1,s=00"})

    out = capsys.readouterr().out.splitlines()
    docs = [json.loads(line) for line in out if line.startswith("{") and '"_aws"' in line]
    outcomes = [(d["event_type"], d["outcome"]) for d in docs if "WebhookEvents" in d]
    assert outcomes == [
        ("comment.update", "accepted"),
        ("comment.update", "duplicate"),
        ("video.publish.completed", "ignored"),
        ("unverified", "rejected"),
    ]
    assert [d["LeadsCreated"] for d in docs if "LeadsCreated" in d] == [[1.0]]
    [rejected] = [d for d in docs if "WebhookRejected" in d]
    assert rejected["error_code"] == "signature_malformed"


def test_message_text_is_never_logged_above_debug(webhook, alpha, aws, logs):
    webhook.deliver("comment.update", "open-id-alpha", comment_content(text="call me at +351 912 345 678"))
    webhook.deliver("im_receive_msg", "open-id-alpha", message_content(text="my email is a@b.example"))
    text = "\n".join(logs)
    assert "912 345 678" not in text
    assert "a@b.example" not in text
    handled = [json.loads(line) for line in logs if '"webhook event handled"' in line]
    assert [len(h["leads_created"]) for h in handled] == [1, 1]


def test_the_webhook_does_not_load_requests_or_the_tiktok_client():
    """Cold start: the webhook verifies with the client secret only; it never calls TikTok."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    probe = (
        "import sys, importlib.util, conftest\n"
        "spec = importlib.util.spec_from_file_location('webhook_app', 'functions/webhook/app.py')\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted(m for m in ('requests', 'orcapulse_tiktok.tiktok.client') if m in sys.modules))\n"
    )
    env = {"PYTHONPATH": os.pathsep.join([str(root), str(root / "layers" / "common")])}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
