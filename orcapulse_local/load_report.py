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
    # Which kind of delivery: the route and the mix entry (load_mix.MIX), e.g.
    # "POST /webhooks/tiktok business dm".
    route: str = "POST /webhooks/tiktok"


@dataclass
class Report:
    """What a run did and found; ``ok`` when ``problems`` is empty."""

    deliveries: int = 0
    unique_events: int = 0
    duplicates_sent: int = 0
    senders: int = 0
    accounts: int = 0
    advertisers: int = 0
    workspaces: int = 0
    integrations: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0
    expected_people: int = 0
    people: int = 0
    missing_people: int = 0
    unexpected_people: int = 0
    wrong_counts: int = 0
    expected_interactions: int = 0
    interactions: int = 0
    missing_interactions: int = 0
    unexpected_interactions: int = 0
    bus_events: int = 0
    repeated_events: int = 0  # the same detail.event_id again (at-least-once; consumers dedupe)
    captured: int = 0
    activity: int = 0
    people_captured_once: int = 0
    people_not_captured: int = 0
    missing_activity: int = 0
    extra_activity: int = 0
    foreign_events: int = 0
    # The ramp-up: warm workers per function before the first delivery (load.warm_up).
    warm_workers: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    setup_seconds: float = 0.0
    check_seconds: float = 0.0
    throughput_per_second: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    # Deliveries that got no 200 at first and were sent again, as TikTok redelivers (load.redeliver),
    # and how many of them still got none after the last round.
    redelivered: int = 0
    still_failing: int = 0
    # Per route and mix entry: deliveries, p50 and p95 in ms, 5xx (or no answer).
    routes: dict[str, dict[str, float]] = field(default_factory=dict)
    leads_per_second: float = 0.0
    interactions_per_second: float = 0.0
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
            "concurrency": f"{self.senders} senders; warm workers "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.warm_workers.items())),
            "accounts": f"{self.accounts} accounts, {self.advertisers} advertisers, {self.workspaces} workspaces, "
            f"{self.integrations} integrations",
            "answers": ", ".join(f"{k} {v}" for k, v in sorted(self.answers.items())),
            "5xx": f"{self.server_errors} at first; {self.redelivered} delivered again, "
            f"{self.still_failing} still without a 200",
            "people": f"{self.people} leads of {self.expected_people} expected "
            f"({self.missing_people} missing, {self.unexpected_people} unexpected, "
            f"{self.wrong_counts} with a wrong interaction_count)",
            "interactions": f"{self.interactions} of {self.expected_interactions} unique events "
            f"({self.missing_interactions} missing, {self.unexpected_interactions} unexpected)",
            "bus events": f"{self.bus_events} ({self.repeated_events} repeated ids): "
            f"{self.captured} SocialLeadCaptured, {self.activity} SocialLeadActivity; "
            f"{self.people_not_captured} people never captured, {self.missing_activity} interactions "
            f"never announced, {self.extra_activity + self.foreign_events} unexpected",
            "throughput": f"{self.throughput_per_second:.1f} deliveries/s over {self.seconds:.1f} s",
            "latency": ", ".join(f"{k} {v}" for k, v in lat.items()),
            "per route": "; ".join(
                f"{route}: {int(r['deliveries'])} sent, p50 {r['p50']:.0f} ms, p95 {r['p95']:.0f} ms"
                for route, r in sorted(self.routes.items())
            ),
            "leads": f"{self.leads_per_second:.1f} leads created/s ({self.people} over {self.seconds:.1f} s), "
            f"{self.interactions_per_second:.1f} interactions/s ({self.interactions})",
            "result": "OK" if self.ok else "FAILED: " + "; ".join(self.problems),
        }
        return "\n".join(f"{k.ljust(13)}  {v}" for k, v in rows.items()) + "\n\n" + self.route_table()

    def route_table(self) -> str:
        """Per route: deliveries, p50 and p95 latency and 5xx; then leads and interactions created
        per second over the whole run."""
        head = ("route", "deliveries", "p50 ms", "p95 ms", "5xx")
        lines = [
            (route, str(int(r["deliveries"])), f"{r['p50']:.0f}", f"{r['p95']:.0f}", str(int(r["5xx"])))
            for route, r in sorted(self.routes.items())
        ]
        lines.append(
            (
                "all",
                str(sum(int(r["deliveries"]) for r in self.routes.values())),
                f"{self.latency_ms.get('p50', 0):.0f}",
                f"{self.latency_ms.get('p95', 0):.0f}",
                str(self.server_errors),
            )
        )
        widths = [max(len(row[i]) for row in [head, *lines]) for i in range(len(head))]
        text = [
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
            for row in [head, *lines]
        ]
        text.insert(1, "  ".join("-" * w for w in widths))
        text.append(
            f"leads created {self.leads_per_second:.1f}/s, interactions {self.interactions_per_second:.1f}/s "
            f"(over {self.seconds:.1f} s of sending)"
        )
        return "\n".join(text)


# (integration id, person handle) → the TikTok object ids of that person's unique events
Expected = dict[tuple[str, str], set[str]]


# -- checking ---------------------------------------------------------------------------------------
def _pages(stack: Any, workspace: str, path: str) -> list[dict[str, Any]]:
    """Every item of a paged read route of the workspace, page by page."""
    headers = {"Authorization": f"Bearer {stack.dev_token(workspace, 'load-user')}"}
    out: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10_000):
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        resp = requests.get(stack.api_url + path, params=params, headers=headers, timeout=REQUEST_TIMEOUT)
        resp.raise_for_status()
        page = resp.json()
        out.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return out
    raise RuntimeError("paging did not end")


def listed_leads(stack: Any, workspace: str) -> list[dict[str, Any]]:
    """Every lead of the workspace, through GET /social-leads."""
    return _pages(stack, workspace, "/social-leads")


def timeline(stack: Any, workspace: str, lead_id: str) -> list[dict[str, Any]]:
    """Every interaction of a lead, through GET /social-leads/{lead_id}/interactions."""
    return _pages(stack, workspace, f"/social-leads/{lead_id}/interactions")


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


def percentile(values: list[float], p: int) -> float:
    """The ``p``-th percentile of ``values`` (``statistics.quantiles``, inclusive: interpolated
    between the observed values, never beyond them; 0 for none)."""
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def check_answers(report: Report, sent: list[Sent], seconds: float) -> None:
    """Throughput, latency and answers of the deliveries; a 5xx or an odd answer is a problem."""
    report.seconds = round(seconds, 2)
    report.throughput_per_second = round(len(sent) / seconds, 1) if seconds else 0.0
    latencies = [s.ms for s in sent]
    report.latency_ms = {f"p{p}": round(percentile(latencies, p), 1) for p in (50, 95, 99)}
    report.latency_ms["max"] = round(max(latencies, default=0.0), 1)
    report.latency_ms["mean"] = round(statistics.fmean(latencies), 1) if latencies else 0.0
    by_route: dict[str, list[Sent]] = {}
    for s in sent:
        by_route.setdefault(s.route, []).append(s)
    report.routes = {
        route: {
            "deliveries": len(got),
            "p50": round(percentile([s.ms for s in got], 50), 1),
            "p95": round(percentile([s.ms for s in got], 95), 1),
            "5xx": sum(1 for s in got if server_error(s)),
        }
        for route, got in by_route.items()
    }
    report.answers = dict(Counter(f"{s.status} {s.answer}" for s in sent))
    report.server_errors = sum(1 for s in sent if server_error(s))
    if report.timed_out or len(sent) != report.deliveries:
        report.problems.append(
            f"only {len(sent)} of {report.deliveries} deliveries were sent in the time limit"
        )
    # A 5xx is a problem on every route but the lead forms', whose 100-entry deliveries can outlast
    # the gateway's 29 s behind the emulated DynamoDB (it answers one call at a time): TikTok
    # redelivers those, and so does the load; one still failing after that is a problem too.
    hard = sum(1 for s in sent if server_error(s) and LEADS_ROUTE not in s.route)
    if hard:
        report.problems.append(f"{hard} comment or DM deliveries got a 5xx or no answer")
    if report.still_failing:
        report.problems.append(f"{report.still_failing} deliveries got no 200 even when delivered again")
    odd = {
        k: v
        for k, v in report.answers.items()
        if k not in ("200 accepted", "200 duplicate") and not k.startswith(("5", "0 "))
    }
    if odd:
        report.problems.append(f"unexpected answers: {odd}")


LEADS_ROUTE = "/webhooks/tiktok/leads"


def server_error(sent: Sent) -> bool:
    """A 5xx, or no answer at all (a timeout, a dropped connection)."""
    return sent.status >= 500 or sent.status == 0


def _object_id(source_ref: dict[str, Any]) -> str | None:
    """The TikTok object an interaction is: a comment, a DM, a lead-form entry."""
    return source_ref.get("comment_id") or source_ref.get("message_id") or source_ref.get("lead_id")


def person_of(lead: dict[str, Any]) -> str:
    """Who a listed lead is: the TikTok handle, or for a lead-form person the normalised email
    (trimmed, lowercased: the person key of DESIGN §6 and docs/lead-forms.md)."""
    username = (lead.get("author") or {}).get("username")
    if username:
        return str(username)
    return str((lead.get("contact") or {}).get("email") or "").strip().lower()


def check_people(report: Report, stack: Any, expected: dict[str, Expected]) -> dict[str, int]:
    """Each workspace's listed leads against ``expected``: one lead per (integration, person),
    its ``interaction_count`` and its timeline exactly that person's unique events. The listed
    leads' ids with the number of interactions each should have."""
    report.expected_people = sum(len(people) for people in expected.values())
    report.expected_interactions = sum(len(ids) for people in expected.values() for ids in people.values())
    counts: dict[str, int] = {}
    for workspace, people in expected.items():
        listed = listed_leads(stack, workspace)
        report.people += len(listed)
        if any(lead["workspace_id"] != workspace for lead in listed):
            report.problems.append(f"{workspace} lists another workspace's lead")
        seen = Counter((lead["integration_id"], person_of(lead)) for lead in listed)
        report.missing_people += len(set(people) - set(seen))
        report.unexpected_people += len(set(seen) - set(people)) + sum(n - 1 for n in seen.values())
        for lead in listed:
            want = people.get((lead["integration_id"], person_of(lead)), set())
            got = Counter(_object_id(i["source_ref"]) for i in timeline(stack, workspace, lead["lead_id"]))
            report.interactions += sum(got.values())
            report.missing_interactions += len(want - set(got))
            report.unexpected_interactions += len(set(got) - want) + sum(n - 1 for n in got.values())
            if lead["interaction_count"] != len(want):
                report.wrong_counts += 1
            counts[lead["lead_id"]] = len(want)
    if report.missing_people or report.unexpected_people or report.people != report.expected_people:
        report.problems.append(
            f"people {report.people} != expected {report.expected_people} "
            f"({report.missing_people} missing, {report.unexpected_people} unexpected)"
        )
    if report.missing_interactions or report.unexpected_interactions or report.wrong_counts:
        report.problems.append(
            f"interactions: {report.missing_interactions} missing, {report.unexpected_interactions} "
            f"unexpected, {report.wrong_counts} leads with a wrong interaction_count"
        )
    return counts


def check_bus(report: Report, stack: Any, counts: dict[str, int], workspaces: set[str]) -> None:
    """On the bus, after deduplicating on ``detail.event_id``: ``SocialLeadCaptured`` once per
    listed lead and ``SocialLeadActivity`` once per later interaction, nothing else of these
    workspaces."""
    wanted = {"SocialLeadCaptured", "SocialLeadActivity"}
    events = [
        e
        for e in bus_events(stack, sum(counts.values()))
        if e.get("detail-type") in wanted and e["detail"].get("workspace_id") in workspaces
    ]
    unique = {e["detail"]["event_id"]: e for e in events}
    report.bus_events = len(events)
    report.repeated_events = len(events) - len(unique)
    captured = Counter(
        e["detail"]["lead_id"] for e in unique.values() if e["detail-type"] == "SocialLeadCaptured"
    )
    activity = Counter(
        e["detail"]["lead_id"] for e in unique.values() if e["detail-type"] == "SocialLeadActivity"
    )
    report.captured, report.activity = sum(captured.values()), sum(activity.values())
    report.people_captured_once = sum(1 for i in counts if captured.get(i) == 1)
    report.people_not_captured = sum(1 for i in counts if i not in captured)
    report.missing_activity = sum(max(0, n - 1 - activity.get(i, 0)) for i, n in counts.items())
    report.extra_activity = sum(max(0, activity.get(i, 0) - (n - 1)) for i, n in counts.items())
    report.foreign_events = sum(n for i, n in (captured + activity).items() if i not in counts)
    if (
        report.people_captured_once != len(counts)
        or report.missing_activity
        or report.extra_activity
        or report.foreign_events
    ):
        report.problems.append(
            f"bus: {report.people_not_captured} people never captured, "
            f"{len(counts) - report.people_captured_once - report.people_not_captured} more than once, "
            f"{report.missing_activity} interactions never announced, {report.extra_activity} announced "
            f"too often, {report.foreign_events} unknown"
        )
