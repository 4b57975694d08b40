"""`make replay LOCAL=1` against the local stack: a delivery the local webhook quarantined is
replayed from this process, through the same code, into the stack's own tables."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import requests
from orcapulse_tiktok.tiktok import events

from orcapulse_local.stack import LocalStack
from scripts import replay_deliveries
from tests.support.webhooks import comment_content

pytestmark = pytest.mark.slow


@pytest.fixture
def local_env(live: LocalStack, monkeypatch) -> Iterator[None]:
    """This process pointed at the stack, as `make replay LOCAL=1` points itself."""
    from tests.conftest import reset_process_caches

    for name, url in (("API", live.api_url), ("TIKTOK", live.tiktok_url), ("AWS", live.aws_url)):
        monkeypatch.setenv(f"LOCAL_{name}_PORT", url.rsplit(":", 1)[1])
    for key, value in replay_deliveries.local_environment().items():
        monkeypatch.setenv(key, value)
    reset_process_caches()
    yield
    monkeypatch.undo()
    reset_process_caches()
    assert "AWS_ENDPOINT_URL" not in os.environ


def test_a_quarantined_local_delivery_is_replayed_after_the_fix(live, local_env, monkeypatch):
    state = live.emulator.state  # type: ignore[union-attr]
    content = {**comment_content(7321234567890124242), "text": {"body": "new shape"}}
    body = state.envelope("comment.update", "open-id-orca-fan", content)
    answer = requests.post(
        live.api_url + "/webhooks/tiktok",
        data=body,
        headers={"TikTok-Signature": state.sign(body), "Content-Type": "application/json"},
        timeout=30,
    )
    assert (answer.status_code, answer.json()) == (200, {"status": "accepted"})

    said: list[str] = []
    assert (
        replay_deliveries.run(replay_deliveries.parse_args(["--quarantined", "--local"]), say=said.append)
        == 1
    )
    assert said[-1] == "replayed: 1 quarantined"

    def fixed(c: dict) -> events.CommentUpdate:  # type: ignore[type-arg]
        return events._comment_update({**c, "text": c["text"]["body"]})

    monkeypatch.setitem(events._PARSERS, events.COMMENT_UPDATE, fixed)
    said.clear()
    assert (
        replay_deliveries.run(replay_deliveries.parse_args(["--quarantined", "--local"]), say=said.append)
        == 0
    )
    # Ignored when no test connected the emulator's account in this stack, else a lead: either
    # way processed at last, so it leaves the quarantine.
    assert said[-1] in ("replayed: 1 ignored", "replayed: 1 accepted")
    said.clear()
    assert replay_deliveries.run(replay_deliveries.parse_args(["--quarantined"]), say=said.append) == 0
    assert said == ["replayed: nothing"]
    assert json.loads(body)["event"] == "comment.update"
