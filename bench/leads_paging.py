"""What one page of GET /social-leads, and one page of GET /social-leads/{id}/interactions, costs
when the leads table holds 1,000 and 100,000 leads (people).

Each size gets a fresh in-process moto, the tables of ``template.yaml``, and leads spread over
20 workspaces; one workspace holds 40 % of them (400 and 40,000). Every fourth lead has one stored
interaction, and one lead of the target workspace has 60 (its timeline is paged). The leads_query
handler is called with real-shaped HTTP API events for three listings — no filter, ``status=new``
and ``integration_id`` + ``high_intent=true`` (all on ``by_activity``, the filters as a
FilterExpression) — and the interactions of the busy lead (``by_time``), each on the first page
and on a deep page (a cursor resuming in the middle), with every DynamoDB call recorded at
botocore's boundary.

Per page it reports:

- ``calls``: DynamoDB requests (all Query, and the lead's GetItem for a timeline; a Scan fails
  the run);
- ``evaluated``: items DynamoDB read (``ScannedCount``), which is what a Query is billed on;
- ``rcu``: read capacity units, modelled with DynamoDB's rule for an eventually consistent Query
  (0.5 per 4 KB of evaluated item data per request, item sizes by DynamoDB's size rules) —
  moto's own ``ConsumedCapacity`` is a constant 1.0 per request (``moto_capacity``), kept beside it;
- ``service_ms``: wall time of the request minus the time inside DynamoDB calls (our code:
  validation, cursor, query planning, deserialising, JSON), and ``dynamodb_ms``: the time inside them.

``ratio`` is the largest 100k/1k ratio of ``calls``, ``evaluated`` and ``rcu`` over every
(query, page); ``service_time_ratio`` the same for ``service_cpu_ms`` (CPU time: on a shared
machine wall time also counts what other processes take; ``service_wall_ratio`` is kept too).
Both should be close to 1.
``dynamodb_ms`` is not: moto answers an index Query by walking and sorting the whole table in
Python, so its time grows with the table, where DynamoDB reads only the index partition's
range — the item and capacity counts are what DynamoDB would bill.

    PYTHONPATH=layers/common python -m bench.leads_paging [--sizes 1000 100000] [--json FILE]

Filling is boto3 ``batch_write_item`` (25 items a request) of items serialised by the ``Lead``
and ``Interaction`` models themselves; at 100,000 leads it takes a few minutes of moto's time.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import itertools
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from bench.capacity import item_size
from tests.support import aws_calls
from tests.support.aws_calls import Answer, AwsCall, Hook, intercepting
from tests.support.functions import Functions

WORKSPACES = 20
TARGET = "ws-bench"
TARGET_SHARE = 0.4
LIMIT = 25
BASE_MS = 1_780_000_000_000
# Every listing is bounded by ``since`` (a date before every lead: the same page as none). Unbounded,
# the layer's query names ``#s`` without using it, which DynamoDB refuses (being fixed in the read
# API's branch); the cost of the two Queries is the same.
SINCE = "2020-01-01T00:00:00Z"
QUERIES: dict[str, dict[str, str]] = {
    "all": {"since": SINCE},
    "status=new": {"since": SINCE, "status": "new"},
    # integration filled per run
    "integration+high_intent": {"since": SINCE, "integration_id": "", "high_intent": "true"},
}
TIMELINE = 60  # interactions of the lead whose timeline is paged


@dataclass
class PageCost:
    calls: int = 0
    evaluated: int = 0
    returned: int = 0
    rcu: float = 0.0
    moto_capacity: float = 0.0
    total_ms: float = 0.0
    dynamodb_ms: float = 0.0
    service_ms: float = 0.0
    service_cpu_ms: float = 0.0
    operations: list[str] = field(default_factory=list)


@dataclass
class _Call:
    operation: str
    started: float = 0.0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    scanned: int = 0
    count: int = 0
    item_bytes: list[int] = field(default_factory=list)
    capacity: float = 0.0


def query_rcu(item_bytes: int) -> float:
    """Eventually consistent Query: 0.5 RCU per 4 KB (rounded up) of evaluated item data."""
    return 0.5 * max(1, math.ceil(item_bytes / 4096))


class _Recorder(Hook):
    """Times and counts the DynamoDB calls, with what each one read."""

    def __init__(self) -> None:
        self.calls: list[_Call] = []

    def after(self, call: AwsCall, answer: Answer) -> None:
        if call.service != "dynamodb":
            return
        parsed = answer.parsed
        self.calls.append(
            _Call(
                operation=call.operation,
                started=call.started[0],
                seconds=call.seconds,
                cpu_seconds=call.cpu_seconds,
                scanned=int(parsed.get("ScannedCount", 0)),
                count=int(parsed.get("Count", 0)),
                item_bytes=[item_size(item) for item in parsed.get("Items", [])],
                capacity=float(parsed.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0)),
            )
        )


def _modelled_rcu(call: _Call) -> float:
    # Items the FilterExpression dropped were read too; their sizes are not returned, so they are
    # taken at the mean size of the returned ones (the generated leads are near-uniform in size).
    returned = sum(call.item_bytes)
    mean = returned / len(call.item_bytes) if call.item_bytes else 600.0
    return query_rcu(int(returned + (call.scanned - call.count) * mean))


@contextlib.contextmanager
def _environment() -> Iterator[dict[str, str]]:
    """Fake credentials, the leads_query function's environment from the template, tracing and
    metrics output off; restored afterwards."""
    from bench.scenarios import offline_aws
    from tests.support.deployment import function_env

    saved = dict(os.environ)
    offline_aws()
    os.environ.update({"POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"})
    env = function_env("LeadsQueryFunction")
    os.environ.update(env)
    try:
        yield env
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """The handler's EMF metric lines go to stdout; keep them (and Powertools' warning about
    invocations without metrics) out of the report."""
    import warnings

    from bench.scenarios import quiet_stdout

    with quiet_stdout(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _forget_process_caches() -> None:
    from tests.conftest import reset_process_caches

    reset_process_caches()


def _load_handler() -> ModuleType:
    from tests.support.functions import import_function

    return import_function("leads_query", "bench_leads_query_app")


class Seeded(NamedTuple):
    leads: list[Any]
    interactions: list[Any]
    main_integration: str
    busy_lead: str


def _leads(size: int) -> Seeded:
    """``size`` leads: 40 % in the target workspace, the rest over 19 others, one a second; every
    fourth with one interaction, and the target workspace's first lead with ``TIMELINE``."""
    from orcapulse_tiktok import clock, people
    from orcapulse_tiktok.models.integration import integration_id_for
    from orcapulse_tiktok.models.lead import interaction_sk, interactions, lead_pk, leads, time_key

    model, ix_model = leads(), interactions()
    target_count = int(size * TARGET_SHARE)
    others = [f"ws-{n:02d}" for n in range(WORKSPACES - 1)]
    main_integration = integration_id_for(TARGET, "open-id-main")
    out: list[Any] = []
    timeline: list[Any] = []

    def interaction(lead: Any, n: int, k: int, ms: int, dm: bool) -> Any:
        ix_id = people.interaction_id_for(lead.integration_id, f"{'dm' if dm else 'comment'}:{n}:{k}")
        return ix_model(
            lead_pk(lead.lead_id),
            interaction_sk(ix_id),
            interaction_id=ix_id,
            lead_id=lead.lead_id,
            integration_id=lead.integration_id,
            kind="dm" if dm else "comment",
            capture_source=lead.capture_source,
            message=lead.message,
            source_ref=lead.source_ref.as_dict(),
            occurred_ms=ms,
            ix_time=time_key(ms, ix_id),
            author=lead.author.as_dict(),
        )

    for n in range(size):
        workspace = TARGET if n < target_count else others[n % len(others)]
        # In the target workspace three leads in four come from the main account, half are new.
        account = "open-id-main" if workspace == TARGET and n % 4 != 3 else f"open-id-{n % 3}"
        integration = integration_id_for(workspace, account)
        dm = n % 5 == 0
        ms = BASE_MS + n * 997
        lead_id = people.lead_id_for(integration, people.handle_key(f"shopper_{n:06d}"))
        lead = model(
            lead_pk(lead_id),
            lead_id=lead_id,
            workspace_id=workspace,
            integration_id=integration,
            platform="tiktok",
            capture_source="tiktok_dm" if dm else "tiktok_comment",
            capture_sources={"tiktok_dm" if dm else "tiktok_comment"},
            status="new" if n % 2 == 0 else ("qualified", "routed", "dismissed")[n % 3],
            # Fixed-width numbers: every lead has the same size at any table size.
            author={"id": f"7{n:018d}", "username": f"shopper_{n:06d}"},
            message=f"Hi! Is the jacket from your video still available in size M? ({n:06d})",
            source_ref=(
                {"conversation_id": f"conv-{n:06d}", "message_id": f"msg-{n:06d}"}
                if dm
                else {"video_id": f"73{n:017d}", "comment_id": f"74{n:017d}"}
            ),
            high_intent=n % 7 == 0,
            source_state="present",
            captured_at=clock.iso(ms / 1000),
            created_at=clock.iso(ms / 1000 + 2),
            first_seen_ms=ms,
            last_activity_ms=ms,
            activity_key=time_key(ms, lead_id),
            interaction_count=TIMELINE if n == 0 else 1,
            version=1,
        )
        out.append(lead)
        if n == 0:
            timeline.extend(interaction(lead, n, k, ms - k * 60_000, dm) for k in range(TIMELINE))
        elif n % 4 == 0:
            timeline.append(interaction(lead, n, 0, ms, dm))
    return Seeded(out, timeline, main_integration, out[0].lead_id)


def _fill(client: Any, table: str, items: list[Any]) -> float:
    started = time.perf_counter()
    serialised = [item.serialize() for item in items]
    for batch in itertools.batched(serialised, 25):
        request: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in batch]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    return time.perf_counter() - started


def _payload(token: str) -> dict[str, Any]:
    body = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return decoded


def _measure_size(size: int, repeats: int) -> dict[str, Any]:
    import boto3
    from moto import mock_aws
    from orcapulse_tiktok import cursor

    from orcapulse_local.template import create_table_kwargs, resources_of_type
    from tests.support.deployment import CONTEXT, TEMPLATE
    from tests.support.events import claims, http_event

    # Before any client exists, so that the interceptor sees them all.
    aws_calls.install()
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(_environment())
        stack.enter_context(mock_aws())
        _forget_process_caches()
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        for spec in resources_of_type(TEMPLATE, "AWS::DynamoDB::Table").values():
            ddb.create_table(**create_table_kwargs(spec["Properties"], CONTEXT))
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name=env["CURSOR_KEY_SECRET_ID"], SecretString=os.urandom(32).hex()
        )
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name=env["PERSON_KEY_SECRET_ID"], SecretString=os.urandom(32).hex()
        )
        seeded = _leads(size)
        items, main_integration = seeded.leads, seeded.main_integration
        fill_seconds = _fill(ddb, env["LEADS_TABLE"], [*seeded.leads, *seeded.interactions])
        # The bench holds every lead twice (its models and moto's items), which a Lambda container
        # never does; keep the collector from walking them during the requests being timed.
        gc.collect()
        gc.freeze()
        stack.callback(gc.unfreeze)

        functions = Functions("bench")
        stack.callback(functions.close)
        handler = functions("leads_query")
        recorder = stack.enter_context(intercepting(_Recorder()))
        from tests.support.events import LambdaContext

        context = LambdaContext(function_name="bench-leads-query")

        def call(query: dict[str, str], lead_id: str | None = None) -> tuple[dict[str, Any], PageCost]:
            if lead_id is None:
                event = http_event("GET", "/social-leads", query=query, jwt_claims=claims(workspace=TARGET))
            else:
                event = http_event(
                    "GET",
                    f"/social-leads/{lead_id}/interactions",
                    route="/social-leads/{lead_id}/interactions",
                    path_parameters={"lead_id": lead_id},
                    query=query,
                    jwt_claims=claims(workspace=TARGET),
                )
            recorder.calls.clear()
            wall, cpu = time.perf_counter(), time.process_time()
            response = handler.lambda_handler(event, context)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert response["statusCode"] == 200, response["body"]
            cost = PageCost(
                calls=len(recorder.calls),
                evaluated=sum(c.scanned for c in recorder.calls),
                returned=sum(c.count for c in recorder.calls),
                rcu=sum(_modelled_rcu(c) for c in recorder.calls),
                moto_capacity=sum(c.capacity for c in recorder.calls),
                total_ms=wall * 1000,
                dynamodb_ms=sum(c.seconds for c in recorder.calls) * 1000,
                operations=sorted({c.operation for c in recorder.calls}),
            )
            cost.service_ms = cost.total_ms - cost.dynamodb_ms
            cost.service_cpu_ms = (cpu - sum(c.cpu_seconds for c in recorder.calls)) * 1000
            if not set(cost.operations) <= {"Query", "GetItem"}:
                raise AssertionError(f"the listing issued {cost.operations}")
            return json.loads(response["body"]), cost

        stack.enter_context(_quiet_stdout())
        # Warm the container (settings, DynamoDB client, cursor key) without a costly Query.
        warm = http_event(
            "GET",
            f"/social-leads/{items[0].lead_id}",
            route="/social-leads/{lead_id}",
            jwt_claims=claims(workspace=items[0].workspace_id),
        )
        assert handler.lambda_handler(warm, context)["statusCode"] == 200
        cursor.issue(workspace_id=TARGET, query="warm", position="warm")
        results: dict[str, Any] = {"leads": size, "target_workspace_leads": int(size * TARGET_SHARE)}
        results["fill_seconds"] = round(fill_seconds, 1)
        pages: dict[str, Any] = {}
        for name, filters in QUERIES.items():
            query = {k: (main_integration if k == "integration_id" else v) for k, v in filters.items()}
            query["limit"] = str(LIMIT)
            matching = sorted(
                (lead for lead in items if lead.workspace_id == TARGET and _matches(lead, query)),
                key=lambda lead: lead.activity_key,
                reverse=True,
            )
            expected = [lead.lead_id for lead in matching]
            first = [call(query) for _ in range(repeats)]
            # A deep page: the cursor the API hands out after the page that ends in the middle of
            # the matches, issued by the product's cursor module for this query's fingerprint.
            # A full page at every size: the middle, or later only as far as a page still fits.
            middle = max(1, min(len(matching) // 2, len(matching) - LIMIT - 1))
            deep_cursor = cursor.issue(
                workspace_id=TARGET,
                query=_payload(first[0][0]["next_cursor"])["q"],
                position=matching[middle - 1].activity_key,
            )
            deep = [call({**query, "cursor": deep_cursor}) for _ in range(repeats)]
            for page, start, samples in (("first", 0, first), ("deep", middle, deep)):
                got = [item["lead_id"] for item in samples[0][0]["items"]]
                assert got == expected[start : start + LIMIT], f"{name} {page}: wrong page"
                pages[f"{name} / {page}"] = _aggregate(cost for _, cost in samples) | {
                    "page_position": start,
                    "matches": len(matching),
                }
        # The busy lead's timeline, newest first, on the first page and from the middle.
        timeline = sorted(
            (ix for ix in seeded.interactions if ix.lead_id == seeded.busy_lead),
            key=lambda ix: ix.ix_time,
            reverse=True,
        )
        query = {"limit": str(LIMIT)}
        first = [call(query, seeded.busy_lead) for _ in range(repeats)]
        middle = len(timeline) // 2
        deep_cursor = cursor.issue(
            workspace_id=TARGET,
            query=_payload(first[0][0]["next_cursor"])["q"],
            position=timeline[middle - 1].ix_time,
        )
        deep = [call({**query, "cursor": deep_cursor}, seeded.busy_lead) for _ in range(repeats)]
        expected = [ix.interaction_id for ix in timeline]
        for page, start, samples in (("first", 0, first), ("deep", middle, deep)):
            got = [item["interaction_id"] for item in samples[0][0]["items"]]
            assert got == expected[start : start + LIMIT], f"interactions {page}: wrong page"
            pages[f"interactions / {page}"] = _aggregate(cost for _, cost in samples) | {
                "page_position": start,
                "matches": len(timeline),
            }
        results["pages"] = pages
    _forget_process_caches()
    return results


def _matches(lead: Any, query: dict[str, str]) -> bool:
    def value(k: str) -> Any:
        got = getattr(lead, k)
        return ("true" if got else "false") if k == "high_intent" else got

    return all(value(k) == v for k, v in query.items() if k not in ("limit", "since"))


def _aggregate(costs: Iterator[PageCost]) -> dict[str, Any]:
    """Counts are the same on every repeat; times take the fastest repeat, the least disturbed
    by other work on the machine."""
    rows = [asdict(c) for c in costs]
    out: dict[str, Any] = {}
    for key, value in rows[0].items():
        if key.endswith("_ms"):
            out[key] = round(min(r[key] for r in rows), 3)
        elif isinstance(value, int | float):
            out[key] = statistics.median_low(r[key] for r in rows)
        else:
            out[key] = value
    return out


def run(sizes: tuple[int, ...] = (1_000, 100_000), *, repeats: int = 2) -> dict[str, Any]:
    """Measure a page of each query at each table size; ``ratio`` compares the largest size with
    the smallest (see the module docstring)."""
    if len(sizes) < 2:
        raise ValueError("need two table sizes to compare")
    started = time.perf_counter()
    by_size = {size: _measure_size(size, repeats) for size in sizes}
    small, large = by_size[min(sizes)], by_size[max(sizes)]
    ratios: dict[str, dict[str, float]] = {}
    for page, cost in large["pages"].items():
        base = small["pages"][page]
        ratios[page] = {
            key: round(cost[key] / base[key], 3) if base[key] else float("nan")
            for key in ("calls", "evaluated", "rcu", "service_ms", "service_cpu_ms", "dynamodb_ms")
        }
    cost_keys = ("calls", "evaluated", "rcu")
    return {
        "ratio": max(r[k] for r in ratios.values() for k in cost_keys),
        # CPU time: on a shared machine wall time also counts what other processes take.
        "service_time_ratio": max(r["service_cpu_ms"] for r in ratios.values()),
        "service_wall_ratio": max(r["service_ms"] for r in ratios.values()),
        "page_size": LIMIT,
        "sizes": {str(size): result for size, result in by_size.items()},
        "ratios": ratios,
        "seconds": round(time.perf_counter() - started, 1),
        "notes": (
            "ratio = max over pages of 100k/1k calls, items evaluated and modelled RCU; "
            "dynamodb_ms is moto's time, which scans the whole table per GSI Query"
        ),
    }


def render(result: dict[str, Any]) -> str:
    sizes = list(result["sizes"])
    lines = [
        f"GET /social-leads and /social-leads/{{id}}/interactions, limit {result['page_size']}: cost of one page (times: fastest repeat)"
    ]
    header = f"{'page':<28}{'leads':>8}{'calls':>7}{'read':>6}{'RCU':>6}{'moto CU':>9}"
    header += f"{'service ms':>12}{'svc CPU ms':>12}{'DynamoDB ms':>13}"
    lines.append(header)
    for page in result["sizes"][sizes[0]]["pages"]:
        for size in sizes:
            c = result["sizes"][size]["pages"][page]
            lines.append(
                f"{page:<28}{size:>8}{c['calls']:>7}{c['evaluated']:>6}{c['rcu']:>6}{c['moto_capacity']:>9}"
                f"{c['service_ms']:>12.2f}{c['service_cpu_ms']:>12.2f}{c['dynamodb_ms']:>13.1f}"
            )
    lines.append(
        f"ratio {sizes[-1]}/{sizes[0]}: cost (calls, items read, RCU) {result['ratio']:.2f}; "
        f"service CPU time {result['service_time_ratio']:.2f} (wall {result['service_wall_ratio']:.2f})"
    )
    fills = ", ".join(f"{s}: {result['sizes'][s]['fill_seconds']} s" for s in sizes)
    lines.append(f"fill (boto3 batch_write_item into moto): {fills}; total {result['seconds']} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--repeats", type=int, default=2, help="requests per measured page (fastest kept)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    result = run(tuple(args.sizes), repeats=args.repeats)
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
