"""The TikTok-Signature header parser and verifier against arbitrary input: every header string,
body and timestamp ends in a verified request or a 401 with a stable code — never another
exception — and only the exact signed bytes verify."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from orcapulse_tiktok.errors import Unauthorized
from orcapulse_tiktok.tiktok import signature

TOLERANCE = 300
NOW = 1_795_000_000
HEADER_CODES = {"signature_missing", "signature_malformed"}

any_text = st.text(st.characters(exclude_categories=[]), max_size=300)  # surrogates included
hex64 = st.text("0123456789abcdefABCDEF", min_size=64, max_size=64)
secrets = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=64)
header_like = st.lists(
    st.one_of(
        st.builds(lambda t: f"t={t}", st.integers(-10, 10**12) | any_text),
        st.builds(lambda s: f"s={s}", hex64 | any_text),
        st.builds(lambda k, v: f"{k}={v}", st.text(max_size=5), any_text),
        any_text,
    ),
    max_size=6,
).map(",".join)


def mac(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@settings(max_examples=400, deadline=None)
@given(value=st.none() | any_text | header_like)
@example(value="t=1,s=" + "a" * 64)
@example(value=" ")
@example(value="t=١٢٣,s=" + "a" * 64)  # non-ASCII digits
def test_any_header_parses_or_is_a_stable_401(value):
    try:
        parsed = signature.parse_header(value)
    except Unauthorized as exc:
        refused: Unauthorized | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.status == 401
        assert refused.code in HEADER_CODES
        return
    assert parsed.timestamp.isascii()
    assert parsed.timestamp.isdigit()
    assert len(parsed.timestamp) <= signature.MAX_TIMESTAMP_DIGITS
    assert parsed.signatures
    assert all(len(s) == 64 and s == s.lower() and int(s, 16) >= 0 for s in parsed.signatures)


@settings(max_examples=200, deadline=None)
@given(
    timestamp=st.integers(0, 10**11 - 1),
    signatures=st.lists(hex64, min_size=1, max_size=3),
    extras=st.lists(st.tuples(st.sampled_from(["v", "k", "x1"]), st.text("abc123", max_size=8)), max_size=2),
    spaces=st.sampled_from(["", " ", "  "]),
    data=st.data(),
)
def test_well_formed_headers_parse_in_any_order_with_unknown_elements(
    timestamp, signatures, extras, spaces, data
):
    elements = [f"t={timestamp}", *(f"s={s}" for s in signatures), *(f"{k}={v}" for k, v in extras)]
    order = data.draw(st.permutations(elements))
    parsed = signature.parse_header(("," + spaces).join(order))
    assert parsed.epoch == timestamp
    assert set(parsed.signatures) == {s.lower() for s in signatures}


@settings(max_examples=300, deadline=None)
@given(secret=secrets, body=st.binary(max_size=512), skew=st.integers(-TOLERANCE, TOLERANCE))
def test_the_exact_signed_bytes_verify_inside_the_window(secret, body, skew):
    ts = str(NOW + skew)
    header = signature.parse_header(f"t={ts},s={mac(secret, ts, body)}")
    signature.verify(header, body, secret, now=NOW, tolerance_seconds=TOLERANCE)


@settings(max_examples=300, deadline=None)
@given(
    secret=secrets,
    body=st.binary(max_size=512),
    other=st.binary(max_size=512),
    skew=st.integers(-TOLERANCE, TOLERANCE),
)
def test_any_other_body_is_signature_invalid(secret, body, other, skew):
    assume(body != other)
    ts = str(NOW + skew)
    header = signature.parse_header(f"t={ts},s={mac(secret, ts, body)}")
    with pytest.raises(Unauthorized) as raised:
        signature.verify(header, other, secret, now=NOW, tolerance_seconds=TOLERANCE)
    assert raised.value.code == "signature_invalid"


@settings(max_examples=200, deadline=None)
@given(secret=secrets, other=secrets, body=st.binary(max_size=256), ts_digits=st.integers(0, 10**10 - 1))
def test_another_secret_or_a_re_written_timestamp_is_signature_invalid(secret, other, body, ts_digits):
    assume(secret != other)
    ts = str(ts_digits)
    header = signature.parse_header(f"t={ts},s={mac(other, ts, body)}")
    with pytest.raises(Unauthorized) as raised:
        signature.verify(header, body, secret, now=ts_digits, tolerance_seconds=TOLERANCE)
    assert raised.value.code == "signature_invalid"
    # The MAC covers the timestamp as sent: a zero-padded copy of it is another message.
    padded = signature.parse_header(f"t=0{ts},s={mac(secret, ts, body)}")
    with pytest.raises(Unauthorized) as raised:
        signature.verify(padded, body, secret, now=ts_digits, tolerance_seconds=TOLERANCE)
    assert raised.value.code == "signature_invalid"


@settings(max_examples=200, deadline=None)
@given(
    secret=secrets,
    body=st.binary(max_size=256),
    drift=st.integers(TOLERANCE + 1, 10**9),
    sign=st.sampled_from([-1, 1]),
)
def test_an_authentic_but_stale_or_future_signature_is_expired(secret, body, drift, sign):
    ts = str(max(NOW + sign * drift, 0))
    assume(abs(int(ts) - NOW) > TOLERANCE)
    header = signature.parse_header(f"t={ts},s={mac(secret, ts, body)}")
    with pytest.raises(Unauthorized) as raised:
        signature.verify(header, body, secret, now=NOW, tolerance_seconds=TOLERANCE)
    assert raised.value.code == "signature_expired"


@settings(max_examples=200, deadline=None)
@given(secret=secrets, body=st.binary(max_size=256), candidates=st.lists(hex64, min_size=1, max_size=4))
def test_guessed_signatures_never_verify(secret, body, candidates):
    ts = str(NOW)
    assume(mac(secret, ts, body) not in {c.lower() for c in candidates})
    header = signature.parse_header(f"t={ts}," + ",".join(f"s={c}" for c in candidates))
    with pytest.raises(Unauthorized) as raised:
        signature.verify(header, body, secret, now=NOW, tolerance_seconds=TOLERANCE)
    assert raised.value.code == "signature_invalid"


@settings(max_examples=200, deadline=None)
@given(
    headers=st.none()
    | st.dictionaries(
        st.one_of(
            st.text(max_size=20), st.sampled_from(["TikTok-Signature", "tiktok-signature"]), st.integers()
        ),
        st.one_of(st.none(), st.text(max_size=20), st.integers(), st.lists(st.text(max_size=5), max_size=2)),
        max_size=5,
    )
)
def test_header_lookup_takes_any_mapping(headers):
    value = signature.header_value(headers)
    assert value is None or isinstance(value, str)
