"""End to end in headless Chromium, as a newcomer meets the console: empty states that say what
to do, connecting two TikTok accounts at the emulator's consent page, test events becoming leads —
people, with their account named: one author's DM and comment are one person with two
interactions, whose timeline opens and pages — TikTok revoking one account and a Reconnect, a
workspace switch, the same page at phone width, and a disconnect; then a business account
connected with its kind shown, and a comment whose webhook TikTok dropped found by the catch-up.

Uses Debian's Chromium (``make browser`` installs it) through Playwright's bundled driver. Under
``make test`` (ORCAPULSE_REQUIRE_BROWSER=1) a missing browser fails the test instead of skipping
it. With ORCAPULSE_SCREENSHOTS=<folder> each state is saved there as console-<state>.png (the
README and docs/local.md show the ones in docs/)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "playwright is not installed (make venv)"
    if missing is None and not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        missing = f"{CHROMIUM} is missing (make browser)"
    if missing:
        if os.environ.get("ORCAPULSE_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _shoot(page: Any, state: str) -> None:
    folder = os.environ.get("ORCAPULSE_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"console-{state}.png"), full_page=True)


def _approve(page: Any, live: Any, open_id: str) -> None:
    """At the emulator's consent page: continue as ``open_id`` and approve; back on the console."""
    page.wait_for_url(live.tiktok_url + "/v2/auth/authorize/**")
    page.get_by_test_id(f"account-{open_id}").check()
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(live.api_url + "/")


def _send(page: Any, open_id: str, kind: str, text: str = "", author: str = "") -> None:
    page.get_by_test_id("event-account").select_option(open_id)
    page.get_by_test_id("event-kind").select_option(kind)
    page.get_by_test_id("event-author").fill(author)
    if text:
        page.get_by_test_id("event-text").fill(text)
    page.get_by_test_id("send-event").click()


def test_a_newcomer_connects_captures_reconnects_and_disconnects(live, browser):
    from playwright.sync_api import expect

    # First requests may meet cold starts on a busy two-core machine.
    expect.set_options(timeout=20_000)
    bay = live.emulator.state.add_account("open-id-browser-bay", display_name="Browser Bay Shop")
    kelp = live.emulator.state.add_account("open-id-kelp-corner", display_name="Kelp Corner")
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    banner = page.get_by_test_id("banner")
    try:
        page.goto(live.api_url + "/")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        favicon = page.locator("link[rel=icon]").get_attribute("href")
        assert favicon
        assert page.request.get(live.api_url + favicon).ok
        page.get_by_test_id("workspace").fill("ws-browser")
        page.get_by_test_id("user").fill("maria")
        page.get_by_role("button", name="Sign in").click()

        # Nothing connected: every empty place says what to do first.
        expect(page.get_by_test_id("integrations-empty")).to_contain_text("Connect a TikTok account to start")
        expect(page.get_by_test_id("integrations")).to_be_hidden()
        expect(page.get_by_test_id("leads-empty")).to_contain_text("Connect a TikTok account to start")
        expect(page.get_by_test_id("event-account")).to_be_disabled()
        expect(page.get_by_test_id("event-account")).to_have_text("No account connected yet")
        # TikTok's own capture sources only, in words; none the emulator cannot produce.
        expect(page.get_by_test_id("filter-source").locator("option")).to_have_text(
            ["any", "TikTok comment", "TikTok direct message", "TikTok lead form"]
        )
        _shoot(page, "empty")

        # Two shops: the console starts OAuth, the emulator's consent page, back via the callback.
        page.get_by_test_id("connect").click()
        expect(page.get_by_role("button", name="Deny")).to_be_visible()
        _approve(page, live, bay.open_id)
        expect(banner).to_contain_text("TikTok account connected: Browser Bay Shop")
        page.get_by_test_id("connect").click()
        _approve(page, live, kelp.open_id)
        expect(banner).to_contain_text("TikTok account connected: Kelp Corner")
        bay_row = page.locator("#integrations tbody tr", has_text="Browser Bay Shop")
        expect(bay_row.get_by_test_id("integration-status")).to_have_text("Active")
        expect(page.get_by_test_id("leads-empty")).to_contain_text("Send a test comment or direct message")

        # Test events become leads — people — each named by its account; the next action clears
        # the banner. One author writes a DM and then a comment: one person, two interactions.
        _send(page, bay.open_id, "comment", "Is the orca plush machine washable?")
        expect(banner).to_be_hidden()
        expect(page.get_by_test_id("event-result")).to_contain_text("accepted")
        expect(page.get_by_test_id("lead-count")).to_have_text(["1"])
        with page.expect_request("**/local/tiktok/webhooks") as sent:
            _send(page, kelp.open_id, "dm", "Can I order 20 for my shop?", author="kelp.buyer")
        assert sent.value.post_data_json["author"] == "kelp.buyer"
        expect(page.get_by_test_id("lead-count")).to_have_text(["1", "1"])
        _send(page, kelp.open_id, "comment", "Love the orca plush!", author="kelp.buyer")
        expect(page.get_by_test_id("lead-count")).to_have_text(["2", "1"])
        expect(page.get_by_test_id("lead-person").first).to_have_text("kelp.buyer")
        expect(page.get_by_test_id("lead-person").last).to_contain_text("stranger.")
        expect(page.get_by_test_id("lead-message")).to_have_text(
            ["Love the orca plush!", "Is the orca plush machine washable?"]
        )
        expect(page.get_by_test_id("lead-account")).to_have_text(["Kelp Corner", "Browser Bay Shop"])
        expect(page.get_by_test_id("lead-sources")).to_have_text(
            ["TikTok commentTikTok direct message", "TikTok comment"]
        )
        # Last activity to the minute, as the listing orders people.
        expect(page.get_by_test_id("lead-activity").first).to_have_text(
            re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$")
        )

        # A person's timeline: what they did, newest first, in words.
        page.get_by_test_id("lead-person").first.click()
        timeline = page.get_by_test_id("timeline")
        expect(timeline).to_be_visible()
        expect(page.get_by_test_id("timeline-title")).to_have_text("What kelp.buyer did")
        expect(page.get_by_test_id("timeline-summary")).to_contain_text("2 interactions with Kelp Corner")
        expect(page.get_by_test_id("interaction-kind")).to_have_text(["Comment", "Direct message"])
        expect(page.get_by_test_id("interaction-message")).to_have_text(
            ["Love the orca plush!", "Can I order 20 for my shop?"]
        )
        expect(page.get_by_test_id("interaction-state")).to_have_text(["On TikTok", "On TikTok"])
        expect(timeline.locator("time")).to_have_count(2 + 2)  # each interaction's, first and last seen
        expect(page.get_by_test_id("timeline-more")).to_be_hidden()
        selected = page.locator("#leads tr.selected")
        expect(selected).to_have_count(1)
        expect(selected.get_by_test_id("lead-person")).to_have_text("kelp.buyer")

        # Filters: an account, then a capture source matching any of a person's sources.
        page.get_by_test_id("filter-account").select_option(label="Browser Bay Shop")
        page.get_by_test_id("apply-filters").click()
        expect(page.get_by_test_id("lead-message")).to_have_text(["Is the orca plush machine washable?"])
        page.get_by_test_id("filter-account").select_option("")
        page.get_by_test_id("filter-source").select_option("tiktok_dm")
        page.get_by_test_id("apply-filters").click()
        expect(page.get_by_test_id("lead-account")).to_have_text(["Kelp Corner"])
        page.get_by_test_id("filter-source").select_option("tiktok_comment")
        page.get_by_test_id("apply-filters").click()
        expect(page.get_by_test_id("lead-account")).to_have_text(["Kelp Corner", "Browser Bay Shop"])
        page.get_by_test_id("filter-source").select_option("")
        page.get_by_test_id("apply-filters").click()
        expect(page.get_by_test_id("lead-message")).to_have_count(2)
        _shoot(page, "leads")

        # More than a page of interactions: "Load more" follows the cursor to the oldest.
        for n in range(4):
            requests.post(
                live.api_url + "/local/tiktok/webhooks",
                json={
                    "event": "dm",
                    "open_id": kelp.open_id,
                    "text": f"Follow-up {n + 1}",
                    "author": "kelp.buyer",
                },
                timeout=30,
            ).raise_for_status()
        page.get_by_test_id("lead-person").first.click()
        expect(page.get_by_test_id("timeline-summary")).to_contain_text("6 interactions")
        expect(page.get_by_test_id("interaction")).to_have_count(5)
        expect(page.get_by_test_id("interaction-message").first).to_have_text("Follow-up 4")
        page.get_by_test_id("timeline-more").click()
        expect(page.get_by_test_id("interaction")).to_have_count(6)
        expect(page.get_by_test_id("interaction-message").last).to_have_text("Can I order 20 for my shop?")
        expect(page.get_by_test_id("timeline-more")).to_be_hidden()
        _shoot(page, "timeline")

        # TikTok says the owner removed the app: revoked, with why and what to do.
        _send(page, bay.open_id, "removed")
        expect(bay_row.get_by_test_id("integration-status")).to_have_text("Revoked")
        expect(bay_row).to_contain_text("the account owner disconnected the app at TikTok")
        expect(bay_row.get_by_test_id("remove")).to_be_visible()
        _shoot(page, "revoked")
        bay_row.get_by_test_id("reconnect").click()
        _approve(page, live, bay.open_id)
        expect(banner).to_contain_text("TikTok account reconnected: Browser Bay Shop is active again")
        expect(bay_row.get_by_test_id("integration-status")).to_have_text("Active")
        expect(page.locator("#integrations tbody tr")).to_have_count(2)

        # Another workspace: the banner goes, its own empty states come.
        page.get_by_test_id("workspace").fill("ws-browser-other")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("integrations-empty")).to_be_visible()
        expect(banner).to_be_hidden()
        expect(page.get_by_test_id("timeline")).to_be_hidden()
        page.get_by_test_id("workspace").fill("ws-browser")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("lead-message")).to_have_count(2)

        # Phone width: nothing wider than the screen; tables scroll in their card; dates on one line.
        page.set_viewport_size({"width": 390, "height": 844})
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.get_by_test_id("lead-person").first.click()
        expect(page.get_by_test_id("interaction")).to_have_count(5)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        heights = page.locator("#leads time, #integrations time, #timeline time").evaluate_all(
            "nodes => nodes.map((node) => node.getBoundingClientRect().height)"
        )
        assert heights
        assert max(heights) < 24, heights
        _shoot(page, "narrow")
        page.set_viewport_size({"width": 1100, "height": 800})

        # Disconnect: revoked at the emulator, gone from the list; its leads stay, named as such.
        kelp_row = page.locator("#integrations tbody tr", has_text="Kelp Corner")
        revocations = live.emulator.state.revoked.count(kelp.open_id)
        kelp_row.get_by_test_id("disconnect").click()
        expect(banner).to_contain_text("Kelp Corner is disconnected: TikTok revoked the access")
        expect(kelp_row).to_have_count(0)
        expect(page.get_by_test_id("lead-account")).to_have_text(["disconnected account", "Browser Bay Shop"])
        assert live.emulator.state.revoked.count(kelp.open_id) == revocations + 1
    finally:
        context.close()


def test_a_person_is_qualified_assigned_labelled_dismissed_reopened_and_routed(live, browser):
    """The lifecycle block of the timeline: each button is a PATCH with the ETag the console read;
    a change someone else made meanwhile is a 412 the console explains and recovers from."""
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
    shop = live.emulator.state.add_account("open-id-lifecycle-shop", display_name="Lifecycle Shop")
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        page.goto(live.api_url + "/")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        page.get_by_test_id("workspace").fill("ws-browser-lifecycle")
        page.get_by_test_id("user").fill("maria")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_test_id("connect").click()
        _approve(page, live, shop.open_id)
        expect(page.get_by_test_id("banner")).to_contain_text("TikTok account connected: Lifecycle Shop")
        _send(page, shop.open_id, "comment", "Do you ship to Porto?", author="porto.buyer")
        expect(page.get_by_test_id("lead-count")).to_have_text(["1"])
        page.get_by_test_id("lead-person").first.click()

        status = page.get_by_test_id("lc-status")
        result = page.get_by_test_id("lc-result")
        expect(status).to_have_text("New")
        expect(page.get_by_test_id("lc-route")).to_be_disabled()
        expect(page.get_by_test_id("lc-reopen")).to_be_disabled()
        with page.expect_request(lambda r: r.method == "PATCH") as sent:
            page.get_by_test_id("lc-dismiss").click()
        assert sent.value.headers["if-match"] == '"1"'
        expect(status).to_have_text("Dismissed")
        expect(page.get_by_test_id("lead-status")).to_have_text(["Dismissed"])
        page.get_by_test_id("lc-reopen").click()
        expect(status).to_have_text("New")
        page.get_by_test_id("lc-qualify").click()
        expect(status).to_have_text("Qualified")
        expect(page.get_by_test_id("lead-status")).to_have_text(["Qualified"])
        expect(page.get_by_test_id("timeline-summary")).to_contain_text("· Qualified")
        page.get_by_test_id("lc-assignee").fill("ana")
        page.get_by_test_id("lc-assign").click()
        expect(result).to_have_text("Assigned to ana.")
        page.get_by_test_id("lc-labels").fill("vip, porto, vip")
        page.get_by_test_id("lc-save-labels").click()
        expect(result).to_have_text("Labels: vip, porto.")
        _shoot(page, "lifecycle")

        # Someone else changes the person meanwhile: the console's ETag is stale.
        lead_id = page.locator("#leads tbody tr").first.get_attribute("data-lead")
        token = requests.post(
            live.api_url + "/local/dev-token",
            json={"workspace": "ws-browser-lifecycle", "user": "bo"},
            timeout=30,
        ).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        url = f"{live.api_url}/social-leads/{lead_id}"
        etag = requests.get(url, headers=bearer, timeout=30).headers["ETag"]
        changed = requests.patch(
            url, headers={**bearer, "If-Match": etag}, json={"labels": ["bo-was-here"]}, timeout=30
        )
        assert changed.status_code == 200, changed.text
        page.get_by_test_id("lc-route").click()
        expect(result).to_contain_text("Someone changed this person meanwhile")
        expect(page.get_by_test_id("lc-labels")).to_have_value("bo-was-here")
        expect(status).to_have_text("Qualified")
        page.get_by_test_id("lc-route").click()
        expect(status).to_have_text("Routed")
        for button in ("lc-qualify", "lc-route", "lc-dismiss", "lc-reopen"):
            expect(page.get_by_test_id(button)).to_be_disabled()

        lead = requests.get(url, headers=bearer, timeout=30).json()
        assert (lead["status"], lead["assignee"], lead["labels"]) == ("routed", "ana", ["bo-was-here"])
        assert [(h["field"], h["by"]) for h in lead["history"]] == [
            ("status", "maria"),
            ("status", "maria"),
            ("status", "maria"),
            ("assignee", "maria"),
            ("labels", "maria"),
            ("labels", "bo"),
            ("status", "maria"),
        ]
    finally:
        context.close()


def test_a_business_account_is_connected_and_its_dropped_comment_caught_up(live, browser):
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
    live.emulator.business.state.add_account(
        "biz-browser-reef", username="browser_reef", display_name="Reef Shop"
    )
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    try:
        _business_story(live, context.new_page())
    finally:
        context.close()


def _business_story(live: Any, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(live.api_url + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.get_by_test_id("workspace").fill("ws-browser-business")
    page.get_by_role("button", name="Sign in").click()

    # Connect business account: the same consent page, offering the business accounts.
    page.get_by_test_id("connect-business").click()
    _approve(page, live, "biz-browser-reef")
    expect(page.get_by_test_id("banner")).to_contain_text("TikTok account connected: Reef Shop")
    row = page.locator("#integrations tbody tr", has_text="Reef Shop")
    expect(row.get_by_test_id("integration-kind")).to_contain_text("Business")
    expect(row.get_by_test_id("integration-capabilities")).to_contain_text("direct_messages")

    # TikTok drops a comment's webhook: no lead, until the catch-up finds it.
    _send(page, "biz-browser-reef", "held", "Is the reef tour on Sunday?", "diver.browser")
    expect(page.get_by_test_id("event-result")).to_contain_text("only the business catch-up can find it")
    expect(page.get_by_test_id("leads-empty")).to_be_visible()
    page.get_by_test_id("run-catchup").click()
    expect(page.get_by_test_id("catchup-result")).to_contain_text("new")
    expect(page.get_by_test_id("lead-person")).to_have_text(["diver.browser"])
    expect(page.get_by_test_id("lead-sources")).to_have_text(["TikTok comment"])
    _shoot(page, "business")


def test_two_leads_of_one_person_are_merged_and_then_erased(live, browser):
    """The console's merge action (tick a lead, merge it into the person shown) and erasure (with
    a confirmation) against the local stack's real functions."""
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
    reef = live.emulator.state.add_account("open-id-merge-reef", display_name="Merge Reef")
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(20_000)
    page = context.new_page()
    confirmations: list[str] = []

    def confirm(dialog: Any) -> None:
        confirmations.append(dialog.message)
        dialog.accept()

    page.on("dialog", confirm)
    banner = page.get_by_test_id("banner")
    try:
        page.goto(live.api_url + "/")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        page.get_by_test_id("workspace").fill("ws-browser-merge")
        page.get_by_test_id("user").fill("noor")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_test_id("connect").click()
        _approve(page, live, reef.open_id)
        expect(banner).to_contain_text("TikTok account connected: Merge Reef")

        # One person under two names: a DM as one, a comment as the other — two leads.
        _send(page, reef.open_id, "dm", "Do you have the orca in blue?", author="reef.fan")
        expect(page.get_by_test_id("lead-count")).to_have_text(["1"])
        _send(page, reef.open_id, "comment", "Me again, from my shop account", author="reef.fan.shop")
        expect(page.get_by_test_id("lead-count")).to_have_text(["1", "1"])

        # Open the older person, tick the newer one, merge: one person with both interactions.
        page.get_by_test_id("lead-person").last.click()
        expect(page.get_by_test_id("timeline-title")).to_have_text("What reef.fan did")
        page.get_by_test_id("merge-open").click()
        expect(page.get_by_test_id("merge-choice")).to_have_count(1)
        page.get_by_test_id("merge-choice").check()
        page.get_by_test_id("merge-submit").click()
        expect(banner).to_contain_text("Merged 1 lead into")
        expect(banner).to_contain_text("2 interactions now")
        expect(page.get_by_test_id("lead-count")).to_have_text(["2"])
        expect(page.get_by_test_id("timeline-summary")).to_contain_text("2 interactions with Merge Reef")
        expect(page.get_by_test_id("interaction-message")).to_have_text(
            ["Me again, from my shop account", "Do you have the orca in blue?"]
        )
        expect(page.get_by_test_id("merge-form")).to_be_hidden()

        # Erase the person: asked first, then gone from every view.
        page.get_by_test_id("erase-lead").click()
        expect(banner).to_contain_text("nothing of them is kept")
        assert len(confirmations) == 1
        assert "cannot be undone" in confirmations[0]
        expect(page.get_by_test_id("timeline")).to_be_hidden()
        expect(page.get_by_test_id("leads-empty")).to_be_visible()
    finally:
        context.close()
