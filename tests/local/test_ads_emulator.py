"""The Marketing API emulator (lead forms): its consent page and endpoints on their own, and the
whole lead-form story through the local stack — an advertiser connected, a test lead submitted
and delivered signed, the lead with its answers in the read API; a dropped delivery found by the
catch-up."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest
import requests
from orcapulse_tiktok.data import delivery_bodies
from werkzeug.test import Client

from orcapulse_local import ads_emulator, config
from orcapulse_local.ads_emulator import LOCAL_APP_ID, AdsEmulator

REDIRECT = "http://127.0.0.1:9/integrations/tiktok-ads/oauth/callback"


@pytest.fixture
def emulator() -> AdsEmulator:
    return AdsEmulator(redirect_uris=[REDIRECT])


def test_the_consent_page_approves_and_denies(emulator):
    client = Client(emulator.wsgi)
    query = {"app_id": LOCAL_APP_ID, "state": "s-1", "redirect_uri": REDIRECT}
    page = client.get("/portal/auth", query_string=query)
    assert page.status_code == 200
    assert "7300000000000000555" in page.get_data(as_text=True)
    approved = client.post("/portal/auth", data={**query, "decision": "approve"})
    answer = dict(parse_qsl(urlsplit(approved.headers["Location"]).query))
    assert set(answer) == {"auth_code", "state"}
    denied = client.post("/portal/auth", data={**query, "decision": "deny"})
    assert dict(parse_qsl(urlsplit(denied.headers["Location"]).query)) == {"state": "s-1"}
    assert (
        client.get("/portal/auth", query_string={**query, "redirect_uri": "https://evil.test/"}).status_code
        == 400
    )


def test_the_token_endpoint_answers_in_the_documented_envelope(emulator):
    client = Client(emulator.wsgi)
    code = emulator.state.authorize(["7300000000000000555"])
    resp = client.post(
        "/open_api/v1.3/oauth2/access_token/",
        json={"app_id": LOCAL_APP_ID, "secret": emulator.state.secret, "auth_code": code},
    )
    body = resp.get_json()
    assert (resp.status_code, body["code"]) == (200, 0)
    assert body["data"]["advertiser_ids"] == ["7300000000000000555"]
    again = client.post(
        "/open_api/v1.3/oauth2/access_token/",
        json={"app_id": LOCAL_APP_ID, "secret": emulator.state.secret, "auth_code": code},
    ).get_json()
    assert again["code"] == 40002  # single use, an error with HTTP 200


def test_a_dropped_test_lead_is_kept_and_the_snapshot_shows_no_personal_data(emulator):
    client = Client(emulator.wsgi)
    resp = client.post("/local/ads/leads", json={"drop": True, "answers": {"email": "zoe@example.se"}})
    assert resp.status_code == 200
    assert resp.get_json()["delivered"] == []
    snapshot = client.get("/local/ads/state").get_json()
    assert snapshot["leads"] == 1
    assert "zoe@example.se" not in json.dumps(snapshot)
    assert client.post("/local/ads/leads", data="x", content_type="text/plain").status_code == 415


@pytest.mark.slow
def test_a_test_lead_becomes_a_lead_with_its_answers_through_the_local_stack(live):
    token = live.dev_token()
    headers = {"Authorization": f"Bearer {token}"}
    start = requests.get(f"{live.api_url}/integrations/tiktok-ads/oauth/start", headers=headers, timeout=30)
    consent = dict(parse_qsl(urlsplit(start.json()["authorize_url"]).query))
    decided = requests.post(
        f"{live.tiktok_url}/portal/auth",
        data={**consent, "decision": "approve"},
        allow_redirects=False,
        timeout=30,
    )
    callback = requests.get(decided.headers["Location"], allow_redirects=False, timeout=60)
    connected = dict(parse_qsl(urlsplit(callback.headers["Location"]).query))
    assert connected["status"] == "connected", connected

    ads = ads_emulator.of(live.emulator)
    answers = {"name": "Rita Sousa", "email": "rita.sousa@example.pt", "preferred_size": "XL"}
    submitted = requests.post(
        f"{live.tiktok_url}/local/ads/leads", json={"answers": answers}, timeout=60
    ).json()
    assert [d["status"] for d in submitted["delivered"]] == [200]
    assert submitted["delivered"][0]["answer"] == {"status": "accepted"}
    assert ads.snapshot()["subscriptions"]

    listed = requests.get(
        f"{live.api_url}/social-leads",
        params={"capture_source": "tiktok_lead_form"},
        headers=headers,
        timeout=30,
    ).json()["items"]
    [lead] = [item for item in listed if (item.get("contact") or {}).get("email") == answers["email"]]
    timeline = requests.get(
        f"{live.api_url}/social-leads/{lead['lead_id']}/interactions", headers=headers, timeout=30
    ).json()["items"]
    assert timeline[0]["form_fields"] == answers
    # Everything the person typed stays out of the function logs.
    text = "\n".join(line for _, line in list(live.logs))
    assert not [v for v in answers.values() if v in text]

    # A delivery over the archive's item limit: accepted through the gateway, its raw body kept as
    # an object in the stack's bucket (moto server), named by its archive item.
    [(advertiser, [page, *_])] = [(a, p) for a, p in ads.state.forms.items() if p][:1]
    note = "Call after six please, the large plush for the class. " * 17
    entries = [
        ads.state.submit_lead(
            advertiser,
            page,
            {"email": f"big{n}@example.pt", **{f"note_{k}": f"{n}.{k} {note}" for k in range(10)}},
        )
        for n in range(40)
    ]
    body = ads.state.delivery(entries)
    assert len(body) > delivery_bodies.INLINE_BODY_MAX_BYTES
    answer = requests.post(
        f"{live.api_url}/webhooks/tiktok/leads",
        data=body,
        headers={"X-Open-Signature": ads.state.signature(body), "Content-Type": "application/json"},
        timeout=120,
    )
    assert (answer.status_code, answer.json()) == (200, {"status": "accepted"})
    s3 = boto3.client(
        "s3",
        endpoint_url=live.aws_url,
        region_name=config.REGION,
        aws_access_key_id=config.AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=config.AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    [bucket] = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    [kept] = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert s3.get_object(Bucket=bucket, Key=kept["Key"])["Body"].read() == body
