"""The lead's lifecycle write: status, assignee, labels, history and the ``applied`` descriptor the
stream announces, all in one conditional UpdateItem on the lead's ``version`` (optimistic
concurrency), so a change is applied whole or not at all."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from orcapulse_tiktok.data import faults
from orcapulse_tiktok.data.leads import _key, _table, _value
from orcapulse_tiktok.models.lead import Lead, leads


class Written(NamedTuple):
    """``lead``: the lead after the write; or ``current``: the lead as stored when the condition
    did not hold (``None`` when there is no such lead)."""

    lead: Lead | None
    current: Lead | None


def write_lifecycle(lead_id: str, *, expected_version: int, changes: Mapping[str, Any]) -> Written:
    """Set ``changes`` (attribute name → value; ``None`` removes the attribute) on the lead and make
    it version ``expected_version + 1``, if it is still at ``expected_version``, not merged and not
    being erased."""
    names = {"#version": "version", "#merged": "merged_into", "#erasing": "erasing"}
    values: dict[str, Any] = {
        ":expected": {"N": str(expected_version)},
        ":next": {"N": str(expected_version + 1)},
    }
    sets, removes = ["#version = :next"], []
    for n, (attribute, value) in enumerate(changes.items()):
        names[f"#c{n}"] = attribute
        if value is None:
            removes.append(f"#c{n}")
        else:
            values[f":c{n}"] = _value(attribute, value)
            sets.append(f"#c{n} = :c{n}")
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    table, name = _table()
    try:
        response = table.update_item(
            TableName=name,
            Key=_key(lead_id),
            UpdateExpression=expression,
            ConditionExpression=(
                "attribute_exists(#version) AND #version = :expected"
                " AND attribute_not_exists(#merged) AND attribute_not_exists(#erasing)"
            ),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except (ClientError, BotoCoreError) as exc:
        if not faults.condition_failed(exc):
            raise faults.fault("update lead lifecycle", exc) from None
        old = exc.response.get("Item") if isinstance(exc, ClientError) else None
        return Written(None, leads().from_raw_data(old) if isinstance(old, dict) else None)
    return Written(leads().from_raw_data(response["Attributes"]), None)
