"""What the webhook refuses: unsigned, mis-signed, stale or foreign deliveries (401), oversized
bodies (413), and bodies that are not TikTok's envelope (400) — each with its own stable code, and
none of them stores anything."""

from __future__ import annotations

import base64
import json
import time
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from orcapulse_tiktok.errors import Unauthorized
from orcapulse_tiktok.tiktok import signature

from tests.support.webhooks import comment_content, recording_aws_calls, status_of

SECRET = "cs_0123456789abcdef"


def nothing_stored(aws, integrations_before) -> bool:
    return cast(bool, aws.items("LeadsTable") == [] and aws.items("IntegrationsTable") == integrations_before)


# -- the signature module -------------------------------------------------------------------------
def header(ts: int, body: bytes, secret: str = SECRET) -> str:
    return f"t={ts},s={signature.expected_signature(secret, ts, body)}"


def code_of(fn) -> str:
    with pytest.raises(Unauthorized) as info:
        fn()
    return info.value.code


def check(value: str | None, body: bytes = b"{}", now: float = 1_700_000_000, tolerance: int = 300) -> None:
    signature.verify(signature.parse_header(value), body, SECRET, now=now, tolerance_seconds=tolerance)


def test_a_valid_signature_passes_at_both_edges_of_the_window():
    check(header(1_700_000_000, b"{}"))
    check(header(1_700_000_000 - 300, b"{}"))
    check(header(1_700_000_000 + 300, b"{}"))
    check(" t=1700000000 , s=" + signature.expected_signature(SECRET, 1_700_000_000, b"{}").upper())


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (None, "signature_missing"),
        ("", "signature_missing"),
        ("   ", "signature_missing"),
        ("s=" + "0" * 64, "signature_malformed"),
        ("t=1700000000", "signature_malformed"),
        ("t=1700000000;s=" + "0" * 64, "signature_malformed"),
        ("t=abc,s=" + "0" * 64, "signature_malformed"),
        ("t=-1700000000,s=" + "0" * 64, "signature_malformed"),
        ("t=1.7e9,s=" + "0" * 64, "signature_malformed"),
        ("t=１７００,s=" + "0" * 64, "signature_malformed"),  # non-ASCII digits
        ("t=1700000000,s=xyz", "signature_malformed"),
        ("t=1700000000,s=" + "0" * 63, "signature_malformed"),
        ("t=1700000000,s=" + "g" * 64, "signature_malformed"),
        ("t=1700000000,t=1700000001,s=" + "0" * 64, "signature_malformed"),
        ("t=1700000000,s=" + "0" * 64 + ",junk", "signature_malformed"),
        ("t=1700000000,s=" + "0" * 64 + "," * 2000, "signature_malformed"),
        ("t=1700000000,s=" + "0" * 64, "signature_invalid"),
    ],
)
def test_header_defects_have_their_own_codes(value, code):
    assert code_of(lambda: check(value)) == code


def test_stale_and_future_timestamps_are_expired():
    assert code_of(lambda: check(header(1_700_000_000 - 301, b"{}"))) == "signature_expired"
    assert code_of(lambda: check(header(1_700_000_000 + 301, b"{}"))) == "signature_expired"


def test_wrong_secret_and_altered_body_are_invalid():
    assert code_of(lambda: check(header(1_700_000_000, b"{}", secret="other"))) == "signature_invalid"
    assert code_of(lambda: check(header(1_700_000_000, b"{}"), body=b"{} ")) == "signature_invalid"
    # The timestamp is signed too: moving it breaks the MAC.
    mac = signature.expected_signature(SECRET, 1_700_000_000, b"{}")
    assert code_of(lambda: check(f"t=1700000001,s={mac}")) == "signature_invalid"


def test_the_timestamp_is_signed_exactly_as_sent():
    mac = signature.expected_signature(SECRET, "01700000000", b"{}")
    check(f"t=01700000000,s={mac}")
    assert code_of(lambda: check(f"t=1700000000,s={mac}")) == "signature_invalid"


def test_one_matching_signature_among_several_is_enough():
    good = signature.expected_signature(SECRET, 1_700_000_000, b"{}")
    check(f"t=1700000000,s={'0' * 64},s={good}")


def test_unknown_elements_are_ignored():
    check(header(1_700_000_000, b"{}") + ",v=2")


def test_header_lookup_ignores_case():
    for name in ("TikTok-Signature", "tiktok-signature", "TIKTOK-SIGNATURE", "Tiktok-Signature"):
        assert signature.header_value({"content-type": "application/json", name: "t=1,s=2"}) == "t=1,s=2"
    assert signature.header_value({"x-tiktok-signature": "t=1,s=2"}) is None
    assert signature.header_value(None) is None


# -- through the handler --------------------------------------------------------------------------
def test_signature_edge_cases_through_the_handler(webhook, alpha, aws, tiktok_state):
    before = aws.items("IntegrationsTable")
    body = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content())
    now = int(time.time())
    cases = [
        ({}, "signature_missing"),
        ({"TikTok-Signature": "sha256=abc"}, "signature_malformed"),
        (webhook.signed(body, secret="cs_wrong_secret"), "signature_invalid"),
        (webhook.signed(body, timestamp=now - 301), "signature_expired"),
        (webhook.signed(body, timestamp=now + 301), "signature_expired"),
    ]
    for headers, code in cases:
        assert status_of(webhook.post(body, headers)) == (401, code), code
    # Signed, then altered in transit.
    altered = body.replace(b"orca plush", b"orca plusH")
    assert status_of(webhook.post(altered, webhook.signed(body))) == (401, "signature_invalid")
    assert nothing_stored(aws, before)
    # Inside the window, on either side, the same body is accepted.
    assert status_of(webhook.post(body, webhook.signed(body, timestamp=now - 290)))[0] == 200


def test_the_header_name_is_case_insensitive_in_the_request(webhook, alpha, aws, tiktok_state):
    from tests.support.events import http_event

    body = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content())
    event = http_event("POST", "/webhooks/tiktok", body=body)
    event["headers"]["TIKTOK-SIGNATURE"] = tiktok_state.sign(body)
    assert status_of(webhook.module.lambda_handler(event, webhook.context)) == (200, "accepted")


def test_a_foreign_client_key_is_refused(webhook, alpha, aws, tiktok_state):
    before = aws.items("IntegrationsTable")
    envelope = json.loads(tiktok_state.envelope("comment.update", "open-id-alpha", comment_content()))
    body = json.dumps({**envelope, "client_key": "someone-elses-app"}).encode()
    assert status_of(webhook.deliver_body(body)) == (401, "unknown_client_key")
    assert nothing_stored(aws, before)


def _sized(tiktok_state, size: int) -> bytes:
    """A signed-able envelope of exactly ``size`` bytes."""
    base = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content(text=""))
    pad = size - len(base)
    body = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content(text="x" * pad))
    assert len(body) == size
    return cast(bytes, body)


def test_bodies_over_64_kib_are_413_before_anything_else(webhook, alpha, aws, tiktok_state):
    before = aws.items("IntegrationsTable")
    exact = _sized(tiktok_state, 65536)
    over = _sized(tiktok_state, 65537)

    with recording_aws_calls() as calls:
        assert status_of(webhook.post(over, webhook.signed(over))) == (413, "payload_too_large")
        assert status_of(webhook.post(over, {})) == (413, "payload_too_large")  # even unsigned
        assert status_of(webhook.post(over, webhook.signed(over), base64_body=True)) == (
            413,
            "payload_too_large",
        )
        assert status_of(webhook.post(b"x" * 10**6, {})) == (413, "payload_too_large")
        assert calls.calls == []  # refused before any AWS call
    assert nothing_stored(aws, before)

    assert status_of(webhook.post(exact, webhook.signed(exact), base64_body=True)) == (200, "accepted")


def test_base64_bodies_are_verified_on_the_decoded_bytes(webhook, alpha, aws, tiktok_state):
    body = tiktok_state.envelope(
        "im_receive_msg", "open-id-alpha", {"message_id": 1, "text": {"body": "olá 🐋"}}
    )
    assert status_of(webhook.post(body, webhook.signed(body), base64_body=True)) == (200, "accepted")
    # A signature over the base64 text is not a signature over the body.
    encoded = base64.b64encode(body)
    response = webhook.post(body, webhook.signed(encoded), base64_body=True)
    assert status_of(response) == (401, "signature_invalid")


NOT_ENVELOPES = [
    (b"", "invalid_json"),
    (b"not json", "invalid_json"),
    (b'{"client_key": ', "invalid_json"),
    (b"\xff\xfe{}", "invalid_json"),
    (b'{"a": NaN}', "invalid_json"),
    (b"[" * 10_000 + b"]" * 10_000, "invalid_json"),
    (b"[]", "invalid_envelope"),
    (b'"a string"', "invalid_envelope"),
    (b"{}", "invalid_envelope"),
]


def test_non_json_and_non_envelope_bodies_are_400(webhook, alpha, aws):
    before = aws.items("IntegrationsTable")
    for body, code in NOT_ENVELOPES:
        assert status_of(webhook.deliver_body(body)) == (400, code), body[:20]
    assert nothing_stored(aws, before)


def test_a_base64_body_that_is_not_base64_is_400(webhook, aws, tiktok_state):
    from tests.support.events import http_event

    event = http_event("POST", "/webhooks/tiktok", body="e30=", base64_body=True)
    event["body"] = "not base64!"
    event["headers"]["tiktok-signature"] = tiktok_state.sign(b"{}")
    assert status_of(webhook.module.lambda_handler(event, webhook.context)) == (400, "invalid_json")


def _envelope(tiktok_state, **changes) -> bytes:
    base = json.loads(tiktok_state.envelope("comment.update", "open-id-alpha", comment_content()))
    for key, value in changes.items():
        if value is ...:
            del base[key]
        else:
            base[key] = value
    return json.dumps(base).encode()


ENVELOPE_DEFECTS: list[tuple[dict[str, Any], str]] = [
    ({"client_key": ...}, "invalid_envelope"),
    ({"client_key": ""}, "invalid_envelope"),
    ({"event": ...}, "invalid_envelope"),
    ({"event": 7}, "invalid_envelope"),
    ({"user_openid": ...}, "invalid_envelope"),
    ({"user_openid": ""}, "invalid_envelope"),
    ({"user_openid": ["a"]}, "invalid_envelope"),
    ({"create_time": ...}, "invalid_envelope"),
    ({"create_time": "yesterday"}, "invalid_envelope"),
    ({"create_time": 1.5e9}, "invalid_envelope"),
    ({"create_time": True}, "invalid_envelope"),
    ({"create_time": -1}, "invalid_envelope"),
    ({"content": ...}, "invalid_envelope"),
    ({"content": {"comment_id": 1, "comment_action": "insert"}}, "invalid_content"),
    ({"content": None}, "invalid_content"),
    ({"content": "not json"}, "invalid_content"),
    ({"content": "[1, 2]"}, "invalid_content"),
    ({"content": '"text"'}, "invalid_content"),
    ({"content": json.dumps({**comment_content(), "comment_id": 7.321234567890124e18})}, "invalid_content"),
    ({"content": json.dumps({**comment_content(), "comment_id": True})}, "invalid_content"),
    ({"content": json.dumps({**comment_content(), "comment_id": None})}, "invalid_content"),
    ({"content": json.dumps({**comment_content(), "video_id": 1.0})}, "invalid_content"),
    ({"content": json.dumps({**comment_content(), "comment_id": 2**64})}, "invalid_content"),
    ({"content": json.dumps({**comment_content(), "comment_action": None})}, "invalid_content"),
    ({"content": json.dumps({**comment_content(), "text": ["a"]})}, "invalid_content"),
    ({"content": json.dumps({**comment_content(), "timestamp": "soon"})}, "invalid_content"),
    ({"content": json.dumps({**comment_content(), "timestamp": 1.7e12})}, "invalid_content"),
    ({"content": json.dumps({**comment_content(), "timestamp": 10**14})}, "invalid_content"),
    # A lone surrogate, escaped as JSON allows: no store or log can encode it.
    ({"content": json.dumps({**comment_content(), "text": "a\ud800b"})}, "invalid_content"),
    ({"content": json.dumps({**comment_content(), "\udfff": 1})}, "invalid_content"),
]


def _quarantined(aws) -> dict[str, str]:
    """The quarantined deliveries of the archive: id → the failure recorded (a code, never data)."""
    return {
        item["pk"]["S"]: item["failure"]["S"]
        for item in aws.items("DeliveriesTable")
        if item.get("quarantine", {}).get("S") == "Q"
    }


def test_envelope_defects_are_400_and_content_defects_are_quarantined(webhook, alpha, aws, tiktok_state):
    """§3: a verified body that is not TikTok's envelope is 400 with its code. Content the parser
    cannot read inside a valid envelope is what a new TikTok payload shape looks like (§11): it is
    quarantined in the delivery archive and answered 200, so TikTok stops retrying and the
    delivery can be replayed after the fix."""
    before = aws.items("IntegrationsTable")
    content_defects = 0
    for changes, code in ENVELOPE_DEFECTS:
        response = webhook.deliver_body(_envelope(tiktok_state, **changes))
        if code == "invalid_content":
            content_defects += 1
            assert status_of(response) == (200, "accepted"), changes
        else:
            assert status_of(response) == (400, code), changes
    assert nothing_stored(aws, before)
    quarantined = _quarantined(aws)
    assert len(quarantined) == content_defects
    assert set(quarantined.values()) == {"invalid_content"}


WRONG_TYPES = [
    ("im_receive_msg", {"conversation_id": "c", "text": {"body": "hi"}}),  # no message_id
    ("im_receive_msg", {"message_id": "m", "text": 5}),
    ("im_receive_msg", {"message_id": "m", "from_user": "7399"}),
    ("im_receive_high_intent_comment", {"comment_text": "hi"}),  # no comment_id
    ("im_receive_high_intent_comment", {"comment_id": "1", "is_follower": "yes"}),
    ("authorization.removed", {"reason": "user"}),
    ("authorization.removed", {"reason": 1.0}),
]


def test_documented_fields_with_the_wrong_type_are_quarantined_as_invalid_content(webhook, aws, tiktok_state):
    for event, content in WRONG_TYPES:
        body = tiktok_state.envelope(event, "open-id-alpha", content)
        assert status_of(webhook.deliver_body(body)) == (200, "accepted"), (event, content)
    assert list(_quarantined(aws).values()) == ["invalid_content"] * len(WRONG_TYPES)


# -- fuzz -----------------------------------------------------------------------------------------
any_text = st.text(st.characters(exclude_categories=[]), max_size=20)  # surrogates included
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
event_names = st.sampled_from(
    ["comment.update", "im_receive_msg", "im_receive_high_intent_comment", "authorization.removed", "video.x"]
)
content_keys = st.sampled_from(
    [
        "comment_id",
        "comment_action",
        "video_id",
        "text",
        "timestamp",
        "message_id",
        "from_user",
        "comment_text",
        "is_follower",
        "reason",
        "unique_identifier",
    ]
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    event=event_names,
    open_id=st.sampled_from(["open-id-alpha", "open-id-nobody"]),
    content=st.dictionaries(content_keys | any_text, json_values, max_size=6) | json_values,
    raw=st.binary(max_size=64),
)
def test_fuzzed_signed_deliveries_never_cause_a_5xx(
    webhook, alpha, aws, tiktok_state, event, open_id, content, raw
):
    if isinstance(content, dict):
        body = tiktok_state.envelope(event, open_id, content)
    else:
        body = json.dumps(
            {"client_key": tiktok_state.client_key, "event": event, "content": content}
        ).encode()
    for candidate in (body, raw, body[: len(body) // 2]):
        status, _ = status_of(webhook.deliver_body(candidate))
        assert status in (200, 400), (candidate, status)
