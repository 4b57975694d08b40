"""Lead forms (DESIGN §10): what a delivery of form entries costs, against moto with the tables of
``template.yaml``, through the leads webhook's own code path (``lead_forms.receive_leads``:
signature, parse, routing, the batch pre-check, the capture writes).

- AWS calls and write units per 100 new entries (100 people), and per redelivery of those 100;
- the in-process time of one delivery of 1,000 entries (wall time, in-process moto answering).

Write units are priced by ``bench/capacity.py``'s rules (the writes are intercepted and the items
read before and after, outside the count).

    PYTHONPATH=layers/common python -m bench.lead_forms
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections import Counter
from typing import Any

ADVERTISER = "7300000000000000777"
INTEGRATION = "tt_0123456789abcdef01234567"
APP_SECRET = secrets.token_hex(16)  # the Business app secret of this run


def _delivery(first: int, count: int) -> bytes:
    entries = [
        {
            "id": 7_400_000_000_000_000_000 + n,
            "lead_source": "INSTANT_FORM",
            "page_id": 7_400_000_000_000_000_001,
            "page_name": "Orca plush waitlist",
            "advertiser_id": int(ADVERTISER),
            "campaign_id": 1_800_000_000_000_000_001,
            "adgroup_id": 1_800_000_000_000_000_002,
            "ad_id": 1_800_000_000_000_000_003,
            "create_time": 1_780_000_000 + n,
            "changes": [
                {"field": "name", "value": f"Ana Lima {n}"},
                {"field": "email", "value": f"ana.lima{n}@example.com"},
                {"field": "phone_number", "value": f"+35191{n:07d}"},
                {"field": "preferred_size", "value": "large"},
            ],
        }
        for n in range(first, first + count)
    ]
    return json.dumps({"object": 1, "time": 1_780_000_000, "entry": entries}).encode()


def _post(body: bytes) -> str:
    from orcapulse_tiktok.lead_forms import receive_leads
    from orcapulse_tiktok.tiktok.lead_signature import sign

    return receive_leads(body.decode(), False, {"x-open-signature": sign(body, APP_SECRET)})


def run(entries: int = 1000) -> dict[str, Any]:
    """Calls and WCU per 100 entries (new, then redelivered) and the time of ``entries`` at once."""
    import boto3
    from orcapulse_tiktok.data import advertisers

    from bench.capacity import WriteTap, stack
    from tests.support.aws_calls import intercepting
    from tests.support.deployment import CONTEXT
    from tests.support.webhooks import AwsCalls

    out: dict[str, Any] = {}
    with stack() as shapes:
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name=CONTEXT.resources["TikTokBusinessAppSecret"]["Ref"],
            SecretString=json.dumps({"app_id": "7300000000000000900", "secret": APP_SECRET}),
        )
        advertisers.put_routes("ws-bench", INTEGRATION, [ADVERTISER], "2026-12-06T00:00:00Z")
        _post(_delivery(0, 1))  # a warm container: secrets and clients cached
        for name, first in (("100 new entries", 1_000), ("the same 100 redelivered", 1_000)):
            with intercepting(AwsCalls()) as calls:
                outcome = _post(_delivery(first, 100))
            out[name] = {"outcome": outcome, "aws_calls": dict(Counter(calls.calls))}
        tap = WriteTap(shapes)
        for name, first in (("100 new entries", 2_000), ("the same 100 redelivered", 2_000)):
            with tap.installed(), tap.event() as writes:
                _post(_delivery(first, 100))
            out[name]["wcu"] = sum(w.total for w in writes)
        body = _delivery(10_000, entries)
        started = time.perf_counter()
        outcome = _post(body)
        out["delivery"] = {
            "entries": entries,
            "bytes": len(body),
            "outcome": outcome,
            "seconds": round(time.perf_counter() - started, 2),
        }
    return out


def render(result: dict[str, Any]) -> str:
    lines = ["Lead forms: one delivery through the leads webhook's code path (in-process moto)"]
    for name in ("100 new entries", "the same 100 redelivered"):
        row = result[name]
        calls = ", ".join(f"{n}×{op}" for op, n in sorted(row["aws_calls"].items()))
        total = sum(row["aws_calls"].values())
        lines.append(f"{name:<26}{row['outcome']:<10}{total:>5} AWS calls {row['wcu']:>5} WCU   {calls}")
    d = result["delivery"]
    lines.append(
        f"{d['entries']} entries ({d['bytes']:,} bytes) in one delivery: {d['outcome']} in {d['seconds']} s "
        "(wall, including moto's answers)"
    )
    return "\n".join(lines)


def main() -> int:
    import os

    entries = int(os.environ.get("LEAD_BENCH_ENTRIES", "1000"))
    print(render(run(entries)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
