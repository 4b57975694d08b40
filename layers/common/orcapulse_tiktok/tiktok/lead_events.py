"""The Marketing API's webhook deliveries (DESIGN §10): ``{"object", "time", "entry": [...]}``.

``object`` 1 is a lead; its entries are Instant Form submissions, each
``{"id", "lead_source", "page_id", "page_name", "advertiser_id", "campaign_id", "campaign_name",
"adgroup_id", "adgroup_name", "ad_id", "ad_name", "create_time", "changes": [{"field", "value"}]}``.
Other objects (ad review, creative fatigue, ...) share the callback URL and are only acknowledged.

The body is parsed with every JSON integer kept as its digits (``parse_int=str``): ids are 19-digit
numbers in deliveries, strings in REST answers, and a float would round them. A JSON number with a
fraction or an exponent where an id belongs is refused. Every field is type-checked; fields TikTok
may add later are ignored.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from orcapulse_tiktok.errors import BadRequest

LEAD_OBJECT = "1"
MAX_ENTRIES = 1000  # TikTok's documented ceiling per delivery
MAX_CHANGES = 200
MAX_ID_LENGTH = 64
MAX_FIELD_LENGTH = 256
MAX_VALUE_LENGTH = 4096
MAX_NAME_LENGTH = 512


class _Float(str):
    """A JSON number with a fraction or exponent, kept as text so that it is never used as an id."""


class LeadEntry(NamedTuple):
    """One form submission, ids as strings, answers in the order the form sent them."""

    lead_id: str
    advertiser_id: str
    page_id: str | None
    ad_id: str | None
    adgroup_id: str | None
    campaign_id: str | None
    create_time: int | None  # epoch seconds
    lead_source: str | None
    page_name: str | None
    ad_name: str | None
    campaign_name: str | None
    answers: dict[str, str]


class Delivery(NamedTuple):
    object: str  # "1" is a lead; anything else is acknowledged and ignored
    time: int | None
    entries: list[LeadEntry]


def _invalid(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_payload")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(raw: bytes) -> Any:
    """JSON with integers as digit strings and other numbers marked, never through a float."""
    return json.loads(raw, parse_int=str, parse_float=_Float, parse_constant=_reject_constant)


def parse_delivery(raw: bytes) -> Delivery:
    """The delivery in ``raw``: ``invalid_json`` when it is not JSON, ``invalid_payload`` when it is not
    the documented shape. Only a lead object's entries are read."""
    try:
        body = loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("The body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise _invalid("The body is not a webhook delivery")
    obj = body.get("object")
    if isinstance(obj, _Float) or not isinstance(obj, str) or not obj.isdigit() or len(obj) > 4:
        raise _invalid("object must be an integer")
    when = _integer(body.get("time"), "time")
    if obj != LEAD_OBJECT:
        return Delivery(object=obj, time=when, entries=[])
    entries = body.get("entry")
    if not isinstance(entries, list):
        raise _invalid("entry must be a list")
    if len(entries) > MAX_ENTRIES:
        raise _invalid(f"A delivery holds at most {MAX_ENTRIES} entries")
    return Delivery(object=obj, time=when, entries=[_entry(e, n) for n, e in enumerate(entries)])


def _integer(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if (
        isinstance(value, str)
        and not isinstance(value, _Float)
        and value.isascii()
        and value.isdigit()
        and len(value) <= 19
    ):
        return int(value)
    raise _invalid(f"{name} must be an integer")


def _id(entry: dict[str, Any], key: str, n: int, *, required: bool = False) -> str | None:
    value = entry.get(key)
    if value is None or value == "":
        if required:
            raise _invalid(f"entry[{n}].{key} is required")
        return None
    if (
        isinstance(value, _Float)
        or not isinstance(value, str)
        or not value.isascii()
        or not value.isdigit()
        or len(value) > MAX_ID_LENGTH
    ):
        raise _invalid(f"entry[{n}].{key} must be an id")
    return value


def _text(entry: dict[str, Any], key: str, n: int) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or isinstance(value, _Float):
        raise _invalid(f"entry[{n}].{key} must be a string")
    return value[:MAX_NAME_LENGTH]


def _entry(entry: Any, n: int) -> LeadEntry:
    if not isinstance(entry, dict):
        raise _invalid(f"entry[{n}] must be an object")
    return LeadEntry(
        lead_id=_id(entry, "id", n, required=True) or "",
        advertiser_id=_id(entry, "advertiser_id", n, required=True) or "",
        page_id=_id(entry, "page_id", n),
        ad_id=_id(entry, "ad_id", n),
        adgroup_id=_id(entry, "adgroup_id", n),
        campaign_id=_id(entry, "campaign_id", n),
        create_time=_integer(entry.get("create_time"), f"entry[{n}].create_time"),
        lead_source=_text(entry, "lead_source", n),
        page_name=_text(entry, "page_name", n),
        ad_name=_text(entry, "ad_name", n),
        campaign_name=_text(entry, "campaign_name", n),
        answers=_answers(entry.get("changes"), n),
    )


def _answers(changes: Any, n: int) -> dict[str, str]:
    """``changes`` as field → value. A number answer keeps its digits; a repeated field keeps the
    last value (TikTok sends one change per question)."""
    if changes is None:
        return {}
    if not isinstance(changes, list) or len(changes) > MAX_CHANGES:
        raise _invalid(f"entry[{n}].changes must be a list of at most {MAX_CHANGES}")
    out: dict[str, str] = {}
    for change in changes:
        if not isinstance(change, dict):
            raise _invalid(f"entry[{n}].changes holds a non-object")
        field, value = change.get("field"), change.get("value")
        if not isinstance(field, str) or not field.strip() or len(field) > MAX_FIELD_LENGTH:
            raise _invalid(f"entry[{n}].changes holds a field without a name")
        if value is None:
            value = ""
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ", ".join(value)  # a multiple-choice answer
        if not isinstance(value, str):
            raise _invalid(f"entry[{n}].changes holds a value that is not text")
        out[field.strip()] = value[:MAX_VALUE_LENGTH]
    return out
