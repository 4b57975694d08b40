"""The product's story, told over HTTP against a local stack, step by step: connect a TikTok
account; a person comments and then writes a DM, and is one lead with two interactions; a
duplicate delivery changes nothing; a second person is a second lead; the people are listed,
filtered and one's timeline is opened; the bus saw each person once and each later interaction
once; disconnecting revokes the token at TikTok. Then a business account (TikTok API for Business,
``demo_business``): its DM and comment become a lead, and a comment whose webhook TikTok dropped is
found by the catch-up, once.

Only the product's HTTP API and the stack's ``/local/`` helpers are used — exactly what a person
with a browser and the console could do."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

Say = Callable[[str], None]


class DemoFailed(Exception):
    """A step of the demo did not get the answer the product promises."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise DemoFailed(message)


class Demo:
    def __init__(self, api_url: str, say: Say = print, timeout: float = 30.0):
        self.api = api_url.rstrip("/")
        self.say = say
        self.timeout = timeout
        self.http = requests.Session()
        self.workspace = f"ws-demo-{secrets.token_hex(3)}"
        self.user = "demo-user"
        self.token = ""  # no JWT minted yet  # nosec B105
        self.integration: dict[str, Any] = {}

    # -- plumbing ----------------------------------------------------------------------------------
    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        resp = self.http.request(method, self.api + path, headers=headers, timeout=self.timeout, **kwargs)
        check(resp.status_code == expect, f"{method} {path} answered {resp.status_code}, expected {expect}")
        return resp.json() if resp.content else None

    def local(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.http.request(method, self.api + path, timeout=self.timeout, **kwargs)
        check(resp.ok, f"{method} {path} answered {resp.status_code}")
        return resp.json()

    def step(self, number: int, title: str) -> None:
        self.say(f"\n{number}. {title}")

    def detail(self, text: str) -> None:
        self.say(f"   {text}")

    def leads(self, **query: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", "/social-leads", params=query)
        return result

    # -- the story ---------------------------------------------------------------------------------
    def run(self) -> None:
        self.say(f"OrcaPulse TikTok channel — local demo against {self.api}")
        self.token = self.local(
            "POST", "/local/dev-token", json={"workspace": self.workspace, "user": self.user}
        )["token"]
        self.detail(f"signed in as {self.user} in workspace {self.workspace} (dev JWT)")
        self.connect()
        buyer, other = f"lisbon.aquarium.{secrets.token_hex(2)}", f"kelp.fan.{secrets.token_hex(2)}"
        comment = self.new_person(buyer)
        self.same_person(buyer)
        self.duplicate(comment)
        self.another_person(other)
        self.list_and_filter(buyer, other)
        self.announced()
        self.disconnect()
        from orcapulse_local.demo_business import BusinessStory  # it builds on this class

        BusinessStory(self).run(first_step=9)
        self.say("\nDone: every step behaved as the design says.")

    def connect(self) -> None:
        self.step(1, "Connect a TikTok account")
        self.integration = self.authorize("personal", f"Demo Aquarium Shop {secrets.token_hex(2)}")

    def authorize(self, account_type: str, name: str) -> dict[str, Any]:
        """Start connecting an account of ``account_type``, approve a new account named ``name`` at
        the TikTok emulator, follow the callback: the integration as ``GET /integrations`` lists it."""
        start = self.call("GET", "/integrations/tiktok/oauth/start", params={"account_type": account_type})
        authorize = start["authorize_url"]
        parts = urlsplit(authorize)
        self.detail(
            f"GET /integrations/tiktok/oauth/start?account_type={account_type} → authorize URL at "
            f"{parts.scheme}://{parts.netloc}"
        )
        page = self.http.get(authorize, timeout=self.timeout)
        check(page.status_code == 200 and "Approve" in page.text and "Deny" in page.text, "no consent page")
        self.detail("the TikTok consent page offers Approve and Deny")
        form = {**dict(parse_qsl(parts.query)), "decision": "approve", "open_id": "new", "display_name": name}
        approved = self.http.post(
            authorize.split("?")[0], data=form, allow_redirects=False, timeout=self.timeout
        )
        check(approved.status_code == 302, f"approving answered {approved.status_code}")
        callback = approved.headers["Location"]
        check(set(dict(parse_qsl(urlsplit(callback).query))) >= {"code", "scopes", "state"}, "no code")
        self.detail(f'approved as "{name}" → TikTok redirects to the callback with code, scopes, state')
        done = self.http.get(callback, allow_redirects=False, timeout=self.timeout)
        check(done.status_code == 302, f"the callback answered {done.status_code}")
        landing = dict(parse_qsl(urlsplit(done.headers["Location"]).query))
        check(landing.get("status") == "connected", f"the callback reported {landing}")
        self.detail(
            f"callback → 302 to the front end: status=connected, integration_id={landing['integration_id']}"
        )
        items = self.call("GET", "/integrations")["items"]
        found = [i for i in items if i["integration_id"] == landing["integration_id"]]
        check(len(found) == 1 and found[0]["status"] == "active", "the integration is not listed as active")
        self.detail(
            f"GET /integrations → {found[0]['display_name']} ({found[0]['open_id']}), status active, "
            f"account_type {found[0].get('account_type')}"
        )
        integration: dict[str, Any] = found[0]
        return integration

    def send(self, kind: str, text: str, author: str, open_id: str | None = None) -> dict[str, Any]:
        delivery: dict[str, Any] = self.local(
            "POST",
            "/local/tiktok/webhooks",
            json={
                "event": kind,
                "open_id": open_id or self.integration["open_id"],
                "text": text,
                "author": author,
            },
        )
        check(delivery["status"] == 200, f"the webhook answered {delivery['status']}: {delivery['response']}")
        check(delivery["response"] == {"status": "accepted"}, f"the webhook answered {delivery['response']}")
        self.detail(
            f'signed {delivery["event"]} from {author} → POST /webhooks/tiktok → 200 {{"status": "accepted"}}'
        )
        return delivery

    def person(self, author: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [
            lead for lead in self.leads()["items"] if lead["author"]["username"] == author
        ]
        check(len(found) == 1, f"expected one lead for {author}, found {len(found)}")
        integration: dict[str, Any] = found[0]
        return integration

    def new_person(self, author: str) -> dict[str, Any]:
        self.step(2, "A TikTok comment arrives: a new person, a new lead")
        comment = self.send(
            "comment", "Love this! How much is the orca plush? Do you ship to Lisbon?", author
        )
        lead = self.person(author)
        check(lead["interaction_count"] == 1, f"the new lead has {lead['interaction_count']} interactions")
        self.detail(f"GET /social-leads → {author}: lead {lead['lead_id']}, 1 interaction")
        return comment

    def same_person(self, author: str) -> None:
        self.step(3, "A TikTok direct message from the same person: the same lead, 2 interactions")
        self.send(
            "dm", "Hi again! I'd like 20 plushies for our aquarium shop — can we talk wholesale?", author
        )
        lead = self.person(author)
        check(lead["interaction_count"] == 2, f"expected 2 interactions, found {lead['interaction_count']}")
        check(
            lead["capture_sources"] == ["tiktok_comment", "tiktok_dm"], f"sources {lead['capture_sources']}"
        )
        check(len(self.leads()["items"]) == 1, "a second lead appeared for the same person")
        self.detail(f"still 1 lead: {author}, interaction_count 2, sources comment + DM")

    def duplicate(self, comment: dict[str, Any]) -> None:
        self.step(4, "TikTok delivers the comment again (at-least-once)")
        before = self.leads()["items"]
        again = self.local("POST", f"/local/tiktok/webhooks/{comment['delivery_id']}/redeliver", json={})
        check(again["response"] == {"status": "duplicate"}, f"the redelivery answered {again['response']}")
        after = self.leads()["items"]
        check(after == before, "the duplicate changed the leads")
        self.detail('same body, new signature → 200 {"status": "duplicate"}; still 1 lead, 2 interactions')

    def another_person(self, author: str) -> None:
        self.step(5, "Another person writes a direct message: a second lead")
        self.send("dm", "Is the big orca back in stock?", author)
        check(self.person(author)["interaction_count"] == 1, "the second person's count is wrong")
        self.detail(f"GET /social-leads → 2 leads: {author} and the first person")

    def list_and_filter(self, buyer: str, other: str) -> None:
        self.step(6, "List and filter the people, open a timeline")
        items = self.leads()["items"]
        check([lead["author"]["username"] for lead in items] == [other, buyer], "not by last activity")
        for lead in items:
            self.detail(
                f"{lead['last_activity_at']}  {lead['author']['username']:<24} "
                f"{lead['interaction_count']} interaction(s)  {', '.join(lead['capture_sources'])}"
            )
        comments = self.leads(capture_source="tiktok_comment", platform="tiktok", status="new")["items"]
        check([lead["author"]["username"] for lead in comments] == [buyer], "the comment filter is wrong")
        dms = self.leads(capture_source="tiktok_dm")["items"]
        check(len(dms) == 2, "the DM filter is wrong")
        self.detail(
            "capture_source=tiktok_comment&status=new → 1 person; capture_source=tiktok_dm → 2 people"
        )
        first = self.leads(limit=1)
        check(len(first["items"]) == 1 and first["next_cursor"], "no second page")
        second = self.leads(limit=1, cursor=first["next_cursor"])
        check(
            len(second["items"]) == 1 and second["items"][0]["lead_id"] != first["items"][0]["lead_id"],
            "paging",
        )
        self.detail("limit=1 → one person and a next_cursor; the cursor gives the other")
        lead_id = items[1]["lead_id"]
        timeline = self.call("GET", f"/social-leads/{lead_id}/interactions")["items"]
        check([i["kind"] for i in timeline] == ["dm", "comment"], f"the timeline is {timeline}")
        self.detail(f"GET /social-leads/{lead_id}/interactions → the DM, then the comment (newest first)")
        for interaction in timeline:
            self.detail(
                f"  {interaction['occurred_at']}  {interaction['kind']:<8} {interaction['message'][:48]}"
            )

    def announced(self) -> None:
        self.step(7, "The event bus: each person once, each later interaction once")
        deadline = time.monotonic() + 15
        mine: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            events = self.local("GET", "/local/bus-events")["items"]
            mine = [e for e in events if (e.get("detail") or {}).get("workspace_id") == self.workspace]
            if len(mine) >= 3:
                break
            time.sleep(0.5)
        kinds = sorted(str(e.get("detail-type")) for e in mine)
        expected = ["SocialLeadActivity", "SocialLeadCaptured", "SocialLeadCaptured"]
        check(kinds == expected, f"expected {expected}, saw {kinds}")
        check({e.get("source") for e in mine} == {"orcapulse.social-leads"}, "unexpected event source")
        check(len({e["detail"]["event_id"] for e in mine}) == 3, "event ids are not unique")
        self.detail(
            "2 × SocialLeadCaptured (one per person) + 1 × SocialLeadActivity (the DM); none for the duplicate"
        )
        self.detail("they come from the leads table's stream, through the lead publisher")

    def disconnect(self) -> None:
        self.step(8, "Disconnect")
        open_id = self.integration["open_id"]
        before = self._revocations(open_id)
        result = self.call("DELETE", f"/integrations/tiktok/{self.integration['integration_id']}")
        check(result.get("revoked") is True, f"DELETE answered {result}")
        self.detail(f"DELETE /integrations/tiktok/{self.integration['integration_id']} → revoked: true")
        check(self._revocations(open_id) == before + 1, "the emulator saw no revoke")
        self.detail("the TikTok emulator recorded the token revoke for this account")
        remaining = [i for i in self.call("GET", "/integrations")["items"] if i["open_id"] == open_id]
        check(remaining == [], "the integration is still listed")
        self.detail("GET /integrations → the account is gone")

    def _revocations(self, open_id: str) -> int:
        accounts = self.local("GET", "/local/tiktok/state")["accounts"]
        return next((a["revocations"] for a in accounts if a["open_id"] == open_id), 0)


def run_demo(api_url: str, say: Say = print) -> bool:
    """Run the story; False (after saying why) when a step does not behave as designed."""
    try:
        Demo(api_url, say).run()
    except (DemoFailed, requests.RequestException, KeyError, ValueError) as exc:
        say(f"\nDEMO FAILED: {type(exc).__name__}: {exc}")
        return False
    return True
