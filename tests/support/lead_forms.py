"""Lead-form test helpers: the leads webhook function, an advertiser with a form connected to
workspace ``ws-1`` (fixtures), and Instant Form submissions shaped as the Marketing API sends them."""

from __future__ import annotations

from typing import Any

import pytest

from orcapulse_local.ads_state import AdsState
from tests.support.ads_fake import AdsFake
from tests.support.connect import connect_ads
from tests.support.events import http_event

LEADS_PATH = "/webhooks/tiktok/leads"
ADVERTISER = "7300000000000000777"  # beyond 2**53: a float would make it 7300000000000000512


@pytest.fixture
def leads_webhook(load_function, lambda_context, aws):
    module = load_function("leads_webhook")

    def post(body: bytes | None, headers: dict[str, str] | None = None) -> dict[str, Any]:
        event = http_event("POST", LEADS_PATH, headers=headers, body=body)
        response: dict[str, Any] = module.lambda_handler(event, lambda_context)
        return response

    return post


@pytest.fixture
def form(ads_state: AdsState) -> str:
    ads_state.add_advertiser(ADVERTISER, name="Orca Ads EU")
    return ads_state.add_form(ADVERTISER)


@pytest.fixture
def ads_integration(load_function, lambda_context, ads: AdsFake, form: str) -> str:
    return connect_ads(load_function, lambda_context, ads, [ADVERTISER])


def signed(state: AdsState, body: bytes) -> dict[str, str]:
    return {"X-Open-Signature": state.signature(body), "Content-Type": "application/json"}


def person(n: int, **extra: str) -> dict[str, str]:
    return {
        "name": f"Ana Lima {n}",
        "email": f"Ana.Lima{n}@Example.com",
        "phone_number": f"+35191234{n:04d}",
        "preferred_size": "large",
        **extra,
    }


def submissions(state: AdsState, page_id: str, count: int) -> list[dict[str, Any]]:
    return [state.submit_lead(ADVERTISER, page_id, person(n)) for n in range(count)]
