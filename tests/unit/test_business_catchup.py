"""The business catch-up's direct messages and hidden comments (docs/business-accounts.md): a DM
or a hidden comment whose webhook never came is added with the webhook's own ids, so a second run
or a late webhook adds nothing. The Business API is faked at the HTTP boundary with the list
shapes TikTok documents (``orcapulse_local.business_state``)."""

# The fixtures come from the business accounts tests: pytest injects them by parameter name.
# ruff: noqa: F811

from __future__ import annotations

import time
from typing import Any

from orcapulse_tiktok import business_catchup

from orcapulse_local.business_state import listed_message
from tests.support.events import json_body
from tests.support.webhooks import comment_content, interaction_items, lead_items, message_content
from tests.unit.test_business_accounts import (  # noqa: F401 - fixtures
    BUSINESS_ID,
    connected,
    deliver,
    record,
    webhook,
)

VIDEO = "7300000000000000001"
COMMENT_ID = "7321234567890123999"


def add_dm(business, content: dict[str, Any], kind: str = "STRANGER") -> None:
    listed = listed_message(BUSINESS_ID, content, username="orca_shop", display_name="Orca Shop")
    business.state.add_message(BUSINESS_ID, content["conversation_id"], listed, kind)


def test_a_missed_dm_is_added_once_and_its_late_webhook_is_a_duplicate(connected, aws, business, webhook):
    now_ms = int(time.time() * 1000)
    dm = message_content("7400000000000000777", timestamp=now_ms - 60_000)
    add_dm(business, dm)
    first = business_catchup.catch_up()
    assert (first.messages_seen, first.leads_created, first.failed) == (1, 1, [])
    [lead] = lead_items(aws.items("LeadsTable"))
    assert lead["capture_source"]["S"] == "tiktok_dm"
    assert lead["author"]["M"]["username"]["S"] == "lisbon_buyer"  # the webhook's person key
    second = business_catchup.catch_up()
    assert (second.leads_created, second.duplicates) == (0, 1)
    assert json_body(deliver(webhook, business.state, "im_receive_msg", dm)) == {"status": "duplicate"}
    assert len(lead_items(aws.items("LeadsTable"))) == 1
    assert record(connected).catchup_watermark == (now_ms - 60_000) // 1000


def test_the_business_own_replies_and_old_conversations_are_left_alone(connected, aws, business):
    now_ms = int(time.time() * 1000)
    add_dm(business, message_content("7400000000000000001", timestamp=now_ms - 3 * 86400_000), "SINGLE")
    reply = {
        **listed_message(
            BUSINESS_ID,
            message_content("7400000000000000002", timestamp=now_ms),
            username="orca_shop",
            display_name="Orca Shop",
        ),
        "from_user": {"role": "BUSINESS_ACCOUNT", "id": BUSINESS_ID},
    }
    business.state.add_message(BUSINESS_ID, "0:1:reply:conv", reply, "SINGLE")
    report = business_catchup.catch_up()
    assert (report.messages_seen, report.leads_created) == (0, 0)
    assert business.state.calls["messages"] == 1  # only the recent conversation is opened
    assert aws.items("LeadsTable") == []


def test_an_account_refused_the_message_lists_still_gets_its_comments(connected, aws, business):
    now = int(time.time())
    business.state.add_video(BUSINESS_ID, VIDEO, now - 3600)
    business.state.add_comment(VIDEO, COMMENT_ID, "Price?", now - 120)
    business.state.fail_next("conversations", code=40001, message="No permission")
    report = business_catchup.catch_up()
    assert (report.comments_seen, report.leads_created, report.failed) == (1, 1, [])
    assert record(connected).catchup_watermark == now - 120


def test_a_rate_limit_on_the_message_lists_ends_the_run_without_moving_the_watermark(
    connected, aws, business
):
    business.state.fail_next("conversations", code=40100, times=3)
    report = business_catchup.catch_up()
    assert report.rate_limited
    assert record(connected).catchup_watermark is None


def test_a_hidden_comment_is_caught_up_hidden_once_and_a_newer_unhide_wins(connected, aws, business, webhook):
    now = int(time.time())
    business.state.add_video(BUSINESS_ID, VIDEO, now - 3600)
    business.state.add_comment(VIDEO, COMMENT_ID, "Spammy?", now - 300, status="HIDDEN")
    first = business_catchup.catch_up()
    assert (first.leads_created, first.hidden) == (1, 1)
    [lead] = lead_items(aws.items("LeadsTable"))
    [interaction] = interaction_items(aws.items("LeadsTable"))
    assert lead["source_state"]["S"] == interaction["source_state"]["S"] == "hidden"
    before = aws.items("LeadsTable")
    second = business_catchup.catch_up()
    assert (second.leads_created, second.hidden, second.duplicates) == (0, 0, 1)
    assert aws.items("LeadsTable") == before
    # The owner shows it again later: TikTok's webhook, newer than the comment, wins.
    unhide = comment_content(int(COMMENT_ID), action="set_to_public", timestamp=(now - 10) * 1000)
    assert json_body(deliver(webhook, business.state, "comment.update", unhide)) == {"status": "accepted"}
    business_catchup.catch_up()  # the list still says HIDDEN (stale): older than the unhide, ignored
    [interaction] = interaction_items(aws.items("LeadsTable"))
    assert interaction["source_state"]["S"] == "present"
