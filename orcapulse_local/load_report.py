"""What the load test (:mod:`orcapulse_local.load`) found: the :class:`Report`, and the checks
that fill it from the deliveries' answers, the product's read API and its bus events."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

REQUEST_TIMEOUT = 30.0  # every request of the load test, so a run always ends


@dataclass
class Sent:
    """One delivery's status, the product's answer and how long it took."""

    status: int
    answer: str
    ms: float


@dataclass
class Report:
    """What a run did and found; ``ok`` when ``problems`` is empty."""

    deliveries: int = 0
    unique_events: int = 0
    duplicates_sent: int = 0
    senders: int = 0
    accounts: int = 0
    workspaces: int = 0
    integrations: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0
    expected_leads: int = 0
    leads: int = 0
    missing_leads: int = 0
    unexpected_leads: int = 0
    announcements: int = 0
    leads_announced_once: int = 0
    leads_not_announced: int = 0
    leads_announced_twice_or_more: int = 0
    foreign_announcements: int = 0
    seconds: float = 0.0
    setup_seconds: float = 0.0
    check_seconds: float = 0.0
    throughput_per_second: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    timed_out: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``--json``)."""
        return {**asdict(self), "ok": self.ok}

    def table(self) -> str:
        """The report as a two-column text table."""
        lat = {k: f"{self.latency_ms.get(k, 0):.0f} ms" for k in ("p50", "p95", "p99", "max")}
        rows = {
            "deliveries": f"{self.deliveries} ({self.unique_events} unique + {self.duplicates_sent} duplicates)",
            "concurrency": f"{self.senders} senders",
            "accounts": f"{self.accounts} accounts, {self.workspaces} workspaces, {self.integrations} integrations",
            "answers": ", ".join(f"{k} {v}" for k, v in sorted(self.answers.items())),
            "5xx": str(self.server_errors),
            "leads": f"{self.leads} of {self.expected_leads} expected "
            f"({self.missing_leads} missing, {self.unexpected_leads} unexpected)",
            "announcements": f"{self.announcements}: {self.leads_announced_once} leads once, "
            f"{self.leads_not_announced} never, {self.leads_announced_twice_or_more} more than once",
            "throughput": f"{self.throughput_per_second:.1f} deliveries/s over {self.seconds:.1f} s",
            "latency": ", ".join(f"{k} {v}" for k, v in lat.items()),
            "result": "OK" if self.ok else "FAILED: " + "; ".join(self.problems),
        }
        return "\n".join(f"{k.ljust(13)}  {v}" for k, v in rows.items())


# -- checking ---------------------------------------------------------------------------------------
def listed_leads(stack: Any, workspace: str) -> list[dict[str, Any]]:
    """Every lead of the workspace, through GET /social-leads, page by page."""
    headers = {"Authorization": f"Bearer {stack.dev_token(workspace, 'load-user')}"}
    out: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10_000):
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        resp = requests.get(
            stack.api_url + "/social-leads", params=params, headers=headers, timeout=REQUEST_TIMEOUT
        )
        resp.raise_for_status()
        page = resp.json()
        out.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return out
    raise RuntimeError("paging did not end")


def bus_events(stack: Any, expected: int, wait: float = 10.0) -> list[dict[str, Any]]:
    """The events the product put on its bus (the stack copies them to a local queue), waiting a
    little for late ones."""
    deadline = time.monotonic() + wait
    seen = -1
    while True:
        events: list[dict[str, Any]] = stack.drain_bus_events()
        if len(events) == seen and (len(events) >= expected or time.monotonic() > deadline):
            return events
        if len(events) == seen:
            time.sleep(0.2)
        seen = len(events)


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of ``values`` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def check_answers(report: Report, sent: list[Sent], seconds: float) -> None:
    """Throughput, latency and answers of the deliveries; a 5xx or an odd answer is a problem."""
    report.seconds = round(seconds, 2)
    report.throughput_per_second = round(len(sent) / seconds, 1) if seconds else 0.0
    latencies = [s.ms for s in sent]
    report.latency_ms = {f"p{p}": round(percentile(latencies, p), 1) for p in (50, 95, 99)}
    report.latency_ms["max"] = round(max(latencies, default=0.0), 1)
    report.latency_ms["mean"] = round(statistics.fmean(latencies), 1) if latencies else 0.0
    report.answers = dict(Counter(f"{s.status} {s.answer}" for s in sent))
    report.server_errors = sum(1 for s in sent if s.status >= 500 or s.status == 0)
    if report.timed_out or len(sent) != report.deliveries:
        report.problems.append(
            f"only {len(sent)} of {report.deliveries} deliveries were sent in the time limit"
        )
    if report.server_errors:
        report.problems.append(f"{report.server_errors} deliveries got a 5xx or no answer")
    odd = {k: v for k, v in report.answers.items() if k not in ("200 accepted", "200 duplicate")}
    if odd:
        report.problems.append(f"unexpected answers: {odd}")


def check_leads(report: Report, stack: Any, expected: dict[str, set[tuple[str, str]]]) -> set[str]:
    """Each workspace's listed leads against ``expected`` (integration id, TikTok object id)
    pairs; the ids of the leads listed."""
    report.expected_leads = sum(len(v) for v in expected.values())
    lead_ids: set[str] = set()
    for workspace in expected:
        listed = listed_leads(stack, workspace)
        got = Counter(
            (
                lead["integration_id"],
                lead["source_ref"].get("comment_id") or lead["source_ref"].get("message_id"),
            )
            for lead in listed
        )
        report.leads += len(listed)
        report.missing_leads += len(expected[workspace] - set(got))
        report.unexpected_leads += len(set(got) - expected[workspace]) + sum(n - 1 for n in got.values())
        lead_ids.update(lead["lead_id"] for lead in listed)
        if any(lead["workspace_id"] != workspace for lead in listed):
            report.problems.append(f"{workspace} lists another workspace's lead")
    if report.missing_leads or report.unexpected_leads or report.leads != report.expected_leads:
        report.problems.append(
            f"leads {report.leads} != expected {report.expected_leads} "
            f"({report.missing_leads} missing, {report.unexpected_leads} unexpected)"
        )
    return lead_ids


def check_announcements(report: Report, stack: Any, lead_ids: set[str], workspaces: set[str]) -> None:
    """Every listed lead announced once on the bus, and nothing else of these workspaces."""
    announced = Counter(
        e["detail"].get("lead_id")
        for e in bus_events(stack, report.expected_leads)
        if e.get("detail-type") == "SocialLeadCaptured" and e["detail"].get("workspace_id") in workspaces
    )
    report.announcements = sum(announced.values())
    report.leads_announced_once = sum(1 for i in lead_ids if announced.get(i) == 1)
    report.leads_not_announced = sum(1 for i in lead_ids if i not in announced)
    report.leads_announced_twice_or_more = sum(1 for i in lead_ids if announced.get(i, 0) > 1)
    report.foreign_announcements = sum(n for i, n in announced.items() if i not in lead_ids)
    if report.leads_announced_once != len(lead_ids) or report.foreign_announcements:
        report.problems.append(
            f"announcements: {report.leads_not_announced} leads never, "
            f"{report.leads_announced_twice_or_more} more than once, {report.foreign_announcements} unknown"
        )
