"""Fixtures shared by the webhook tests: the webhook function, one connected TikTok account and a
subscriber's view of the event bus."""

from __future__ import annotations

import pytest

from tests.support.connect import connect
from tests.support.webhooks import BusCapture, Webhook


@pytest.fixture
def webhook(load_function, lambda_context, aws, tiktok_state) -> Webhook:
    return Webhook(load_function("webhook"), lambda_context, tiktok_state)


@pytest.fixture
def alpha(load_function, lambda_context, tiktok, aws) -> str:
    """``open-id-alpha`` connected to workspace ``ws-1``; its integration id."""
    return connect(load_function, lambda_context, tiktok, workspace="ws-1", open_id="open-id-alpha")


@pytest.fixture
def bus(aws) -> BusCapture:
    return BusCapture(aws.event_bus)
