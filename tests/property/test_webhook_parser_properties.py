"""The webhook body, envelope and content parsers against arbitrary bytes and JSON: each input is
parsed or refused with a 4xx and a stable code — never another exception — and TikTok ids come out
as the exact decimal strings they went in as, never through a float."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from orcapulse_tiktok.errors import BadRequest, DomainError
from orcapulse_tiktok.tiktok import events
from orcapulse_tiktok.webhook import MAX_BODY_BYTES, raw_body

BODY_CODES = {"invalid_json", "payload_too_large"}
ENVELOPE_CODES = {"invalid_json", "invalid_envelope", "invalid_content"}
INT64_MIN, UINT64_LIMIT = -(2**63), 2**64

any_text = st.text(st.characters(exclude_categories=[]), max_size=40)  # lone surrogates included
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=15,
)
# What TikTok (or a forger) may put where an id belongs.
id_values = st.one_of(
    st.integers(INT64_MIN, UINT64_LIMIT - 1),
    st.integers(-(2**80), 2**80),
    st.from_regex(r"[0-9]{1,25}", fullmatch=True),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    any_text,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
ID_FIELDS = {
    "comment.update": ("comment_id", "video_id", "parent_comment_id"),
    "im_receive_msg": ("message_id", "conversation_id"),
    "im_receive_high_intent_comment": ("comment_id", "video_id"),
}
REQUIRED = {
    "comment.update": "comment_id",
    "im_receive_msg": "message_id",
    "im_receive_high_intent_comment": "comment_id",
}


def envelope(event: str, content: str, **overrides: object) -> bytes:
    body = {
        "client_key": "awlocalclientkey",
        "event": event,
        "create_time": 1_795_000_000,
        "user_openid": "open-id-alpha",
        "content": content,
        **overrides,
    }
    return json.dumps(body).encode()


def refused(exc: DomainError, codes: set[str]) -> None:
    assert 400 <= exc.status < 500, exc
    assert exc.code in codes, exc.code


@settings(max_examples=300, deadline=None)
@given(body=st.none() | st.text(st.characters(exclude_categories=[]), max_size=300), b64=st.booleans())
@example(body="x" * (MAX_BODY_BYTES + 1), b64=False)
@example(body="é" * (MAX_BODY_BYTES // 2 + 1), b64=False)
@example(body="A" * (4 * (MAX_BODY_BYTES // 3 + 2)), b64=True)
def test_any_body_is_bytes_within_the_limit_or_a_4xx(body, b64):
    try:
        raw = raw_body(body, b64)
    except DomainError as exc:
        refused(exc, BODY_CODES)
        return
    assert isinstance(raw, bytes)
    assert len(raw) <= MAX_BODY_BYTES


@settings(max_examples=400, deadline=None)
@given(
    raw=st.binary(max_size=400) | json_values.map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass"))
)
@example(raw=b'{"client_key":"k","event":"e","create_time":NaN,"user_openid":"o","content":"{}"}')
@example(raw=b"[" * 100_000)
def test_any_bytes_are_an_envelope_or_a_4xx(raw):
    try:
        parsed = events.parse_envelope(raw)
    except DomainError as exc:
        refused(exc, ENVELOPE_CODES)
        return
    assert isinstance(parsed.content, str)
    assert 0 <= parsed.create_time < events.MS_LIMIT // 1000


@settings(max_examples=300, deadline=None)
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "client_key": json_values,
            "event": json_values,
            "create_time": json_values | st.integers(-(2**70), 2**70),
            "user_openid": json_values,
            "content": json_values | json_values.map(json.dumps),
        },
    )
)
def test_any_envelope_fields_parse_or_are_a_4xx(fields):
    try:
        events.parse_event(events.parse_envelope(json.dumps(fields).encode("utf-8", "surrogatepass")))
    except DomainError as exc:
        refused(exc, ENVELOPE_CODES)


@settings(max_examples=400, deadline=None)
@given(
    event=st.sampled_from([*ID_FIELDS, "authorization.removed", "im_send_msg", "something.new"]),
    content=st.dictionaries(
        st.sampled_from(
            [
                "comment_id",
                "video_id",
                "parent_comment_id",
                "message_id",
                "conversation_id",
                "comment_action",
                "text",
                "comment_text",
                "timestamp",
                "from_user",
                "to_user",
                "is_follower",
                "reason",
                "type",
            ]
        )
        | any_text,
        json_values,
        max_size=8,
    ),
)
def test_any_content_is_an_event_or_invalid_content(event, content):
    try:
        parsed = events.parse_event(events.parse_envelope(envelope(event, json.dumps(content))))
    except DomainError as exc:
        refused(exc, {"invalid_content"})
        return
    assert 0 <= parsed.occurred_ms() < events.MS_LIMIT
    # Whatever was accepted can be stored and logged: it is valid Unicode.
    json.dumps(parsed.content, ensure_ascii=False).encode("utf-8")


@settings(max_examples=400, deadline=None)
@given(event=st.sampled_from(sorted(ID_FIELDS)), data=st.data())
@example(event="comment.update", data=None)
def test_ids_are_kept_as_exact_strings_or_refused(event, data):
    fields = ID_FIELDS[event]
    ids: dict[str, object]
    if data is None:  # the int64 TikTok uses, beyond a float's 53 bits
        ids = dict.fromkeys(fields, 7321234567890123457)
    else:
        ids = {f: data.draw(id_values, label=f) for f in fields}
    content = {"comment_action": "insert", **ids}
    try:
        parsed = events.parse_event(events.parse_envelope(envelope(event, json.dumps(content))))
    except BadRequest as exc:
        code: str | None = exc.code
    else:
        code = None
    if code is not None:
        assert code == "invalid_content"
        assert any(_refusable(v) for v in ids.values()) or ids[REQUIRED[event]] in (None, "")
        return
    payload = parsed.payload
    for name, value in ids.items():
        got = getattr(payload, name)
        if value is None or value == "":
            assert got is None
        else:
            assert not _refusable(value), (name, value)
            assert got == (str(value) if isinstance(value, int) else value)
            assert isinstance(got, str)


def _refusable(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return value is not None
    if isinstance(value, int):
        return not INT64_MIN <= value < UINT64_LIMIT
    return value != "" and (len(value) > events.MAX_ID_LENGTH or not value.isprintable() or not value.strip())


@settings(max_examples=150, deadline=None)
@given(inner=json_values, depth=st.integers(1, 3))
def test_content_nested_in_json_strings_is_invalid_content(inner, depth):
    content = json.dumps(inner)
    for _ in range(depth):
        content = json.dumps(content)  # a string holding a string: never an object
    with pytest.raises(BadRequest) as raised:
        events.parse_event(events.parse_envelope(envelope("comment.update", content)))
    assert raised.value.code == "invalid_content"


@settings(max_examples=150, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not math.isnan(f)))
def test_float_timestamps_and_reasons_are_refused(value):
    for event, content in (
        ("im_receive_msg", {"message_id": "1", "timestamp": value}),
        ("authorization.removed", {"reason": value}),
    ):
        with pytest.raises(BadRequest) as raised:
            events.parse_event(events.parse_envelope(envelope(event, json.dumps(content))))
        assert raised.value.code == "invalid_content"
