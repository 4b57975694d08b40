"""Fixtures shared by the webhook tests: the webhook function, one connected TikTok account and a
subscriber's view of the event bus."""

from __future__ import annotations

import pytest

from orcapulse_local.streams import StreamSource
from tests.support.connect import connect
from tests.support.deployment import CONTEXT
from tests.support.lead_forms import ads_integration, form, leads_webhook  # noqa: F401 - lead-form fixtures
from tests.support.webhooks import BusCapture, Webhook, lead_stream


@pytest.fixture
def webhook(load_function, lambda_context, aws, tiktok_state) -> Webhook:
    return Webhook(load_function("webhook"), lambda_context, tiktok_state)


@pytest.fixture
def alpha(load_function, lambda_context, tiktok, aws) -> str:
    """``open-id-alpha`` connected to workspace ``ws-1``; its integration id."""
    return connect(load_function, lambda_context, tiktok, workspace="ws-1", open_id="open-id-alpha")


@pytest.fixture
def stream(load_function, lambda_context, aws) -> StreamSource:
    """The leads table's stream feeding the lead publisher function; ``pump()`` delivers what is
    pending, as Lambda's event source mapping would."""
    publisher = load_function("lead_publisher")
    return lead_stream(
        CONTEXT.resources["LeadsTable"]["Ref"], lambda event: publisher.lambda_handler(event, lambda_context)
    )


@pytest.fixture
def bus(aws, stream) -> BusCapture:
    """What a subscriber of the leads bus receives (the stream is pumped before each read)."""
    return BusCapture(aws.event_bus, pump=stream.pump)
