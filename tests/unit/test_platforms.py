"""GET /platforms: the platform configuration, from the one source of truth the filters and the
lead model's enumerations use."""

from __future__ import annotations

import pytest
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.platforms import CAPTURE_SOURCE_IDS, INTEGRATION_STATUSES, LEAD_STATUSES, PLATFORM_IDS
from orcapulse_tiktok.schemas import PlatformsOut

from tests.support.events import json_body
from tests.support.leads import ReadApi


@pytest.fixture
def api(load_function, lambda_context, aws) -> ReadApi:
    return ReadApi(load_function("leads_query"), lambda_context)


def test_serves_every_platform_of_the_shared_model(api):
    response = api.get("/platforms")
    assert response["statusCode"] == 200
    body = json_body(response)
    PlatformsOut.model_validate(body)
    assert [p["id"] for p in body["items"]] == list(PLATFORM_IDS)
    assert set(PLATFORM_IDS) >= {"tiktok", "instagram", "whatsapp", "linkedin", "facebook"}
    assert [s["id"] for p in body["items"] for s in p["capture_sources"]] == list(CAPTURE_SOURCE_IDS)
    assert body["lead_statuses"] == list(LEAD_STATUSES)
    assert body["integration_statuses"] == list(INTEGRATION_STATUSES)
    for platform in body["items"]:
        assert platform["label"]
        assert all(
            s["id"].startswith(platform["id"] + "_") and s["label"] for s in platform["capture_sources"]
        )
        assert {"oauth", "webhook"} <= set(platform["capabilities"])


def test_tiktok_is_first_class_with_its_sources_and_webhook_mode(api):
    tiktok = json_body(api.get("/platforms"))["items"][0]
    assert tiktok["id"] == "tiktok"
    assert tiktok["label"] == "TikTok"
    assert [(s["id"], s["reserved"]) for s in tiktok["capture_sources"]] == [
        ("tiktok_comment", False),
        ("tiktok_dm", False),
        ("tiktok_lead_form", False),
    ]
    capabilities = tiktok["capabilities"]
    assert capabilities["oauth"] is True
    assert capabilities["webhook"] is True
    assert capabilities["webhook_modes"] == ["live", "sandbox"]
    assert capabilities["webhook_mode"] == "live"
    assert capabilities["account_types"]["ads"] == ["lead_forms", "lead_form_catch_up"]


def test_the_webhook_mode_is_the_deployment_s(api, monkeypatch):
    monkeypatch.setenv("WEBHOOK_MODE", "sandbox")
    get_settings.cache_clear()
    tiktok = json_body(api.get("/platforms"))["items"][0]
    assert tiktok["capabilities"]["webhook_mode"] == "sandbox"
    get_settings.cache_clear()


def test_every_capture_source_and_status_it_lists_is_a_valid_filter(api):
    body = json_body(api.get("/platforms"))
    for platform in body["items"]:
        assert api.get("/social-leads", {"platform": platform["id"]})["statusCode"] == 200
        assert api.get("/integrations", {"platform": platform["id"]})["statusCode"] == 200
        for source in platform["capture_sources"]:
            assert api.get("/social-leads", {"capture_source": source["id"]})["statusCode"] == 200
    for status in body["lead_statuses"]:
        assert api.get("/social-leads", {"status": status})["statusCode"] == 200
