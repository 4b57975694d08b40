"""The demo's business-account chapter (DESIGN §8): connect a business account through TikTok API
for Business, see its kind and capabilities; a DM and a comment from one person become one lead; a
comment whose webhook TikTok dropped is found by the scheduled catch-up, and a second run adds
nothing; disconnecting revokes the business token at the emulator."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from orcapulse_local.demo import check

if TYPE_CHECKING:
    from orcapulse_local.demo import Demo

CATCHUP = "/local/schedules/BusinessCatchupFunction/run"


class BusinessStory:
    def __init__(self, demo: Demo):
        self.demo = demo
        self.integration: dict[str, Any] = {}

    def run(self, first_step: int) -> None:
        d = self.demo
        d.step(first_step, "Connect a TikTok business account (TikTok API for Business)")
        self.integration = d.authorize("business", f"Demo Reef Outfitters {secrets.token_hex(2)}")
        check(self.integration.get("account_type") == "business", "the integration is not a business one")
        caps = self.integration.get("capabilities") or []
        check({"comments", "direct_messages", "comment_catch_up"} <= set(caps), f"capabilities {caps}")
        d.detail(f"capabilities: {', '.join(caps)}")
        buyer, quiet = f"reef.buyer.{secrets.token_hex(2)}", f"quiet.diver.{secrets.token_hex(2)}"
        self.dm_and_comment(first_step + 1, buyer)
        self.dropped_comment(first_step + 2, quiet)
        self.disconnect(first_step + 3)

    def lead_of(self, author: str) -> dict[str, Any] | None:
        mine = self.demo.leads(integration_id=self.integration["integration_id"])["items"]
        found = [lead for lead in mine if lead["author"]["username"] == author]
        return found[0] if found else None

    def dm_and_comment(self, step: int, author: str) -> None:
        d = self.demo
        d.step(step, "A business DM and a business comment from one person: one lead")
        open_id = self.integration["open_id"]
        d.send("dm", "Hi! Do you rent wetsuits for a group of 12 in June?", author, open_id)
        d.send("comment", "Sent you a DM about the group booking!", author, open_id)
        lead = self.lead_of(author)
        if lead is None or lead["interaction_count"] != 2:
            raise SystemExit(f"make demo: the business lead is {lead}")
        check(sorted(lead["capture_sources"]) == ["tiktok_comment", "tiktok_dm"], "wrong sources")
        d.detail(
            f"GET /social-leads → {author}: 1 lead, 2 interactions (DM + comment), signed by the Business app"
        )

    def dropped_comment(self, step: int, author: str) -> None:
        d = self.demo
        d.step(step, "TikTok drops a comment's webhook; the catch-up finds it")
        held = d.local(
            "POST",
            "/local/tiktok/webhooks",
            json={
                "event": "comment",
                "open_id": self.integration["open_id"],
                "text": "How much for the reef tour?",
                "author": author,
                "hold": True,
            },
        )
        check(held["status"] is None, "the held comment was delivered")
        check(self.lead_of(author) is None, "a lead appeared without a delivery")
        d.detail("the comment is on the video at TikTok (business/comment/list/), its webhook never sent")
        first = self.catch_up()
        check(first["leads_created"] >= 1, f"the catch-up created no lead: {first}")
        lead = self.lead_of(author)
        check(lead is not None and lead["capture_sources"] == ["tiktok_comment"], f"no lead for {author}")
        d.detail(
            f"catch-up run 1: {first['comments_seen']} comment(s) seen, {first['leads_created']} new lead(s), "
            f"{first['duplicates']} already captured by their webhook → {author} is a lead"
        )
        second = self.catch_up()
        check(second["leads_created"] == 0, f"the second run added {second['leads_created']}")
        d.detail(
            f"catch-up run 2: {second['leads_created']} new, {second['duplicates']} duplicate(s): nothing added"
        )

    def catch_up(self) -> dict[str, Any]:
        outcome = self.demo.local("POST", CATCHUP, json={})
        check(outcome.get("ok") is True, f"the catch-up failed: {outcome.get('error')}")
        report: dict[str, Any] = outcome["result"]
        return report

    def disconnect(self, step: int) -> None:
        d = self.demo
        d.step(step, "Disconnect the business account")
        before = self._revocations()
        result = d.call("DELETE", f"/integrations/tiktok/{self.integration['integration_id']}")
        check(result.get("revoked") is True, f"DELETE answered {result}")
        check(self._revocations() == before + 1, "the emulator saw no business revoke")
        d.detail("revoked at tt_user/oauth2/revoke/ (the emulator counted it), secret and record removed")

    def _revocations(self) -> int:
        business = self.demo.local("GET", "/local/tiktok/state")["business"]
        return int(business["revocations"])
