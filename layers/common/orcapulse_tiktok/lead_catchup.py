"""Catch-up for lead forms (DESIGN §10): submissions whose delivery TikTok never got through
become leads anyway, with the webhook's ids (idempotent with it).

Per ads integration (the sparse ``by_catchup`` index, bucket ``tiktok_ads``; never a Scan), a run
first completes its pending LEAD subscriptions (the scheduled check of ``lead_subscriptions``),
then, per advertiser and form (``page/get/``, ``LEAD_GEN``), runs TikTok's lead download task —
``page/lead/task/`` to create it, the same call with ``task_id`` to poll it until ``SUCCEED``
(``FAILED`` ends it; any other status is still pending), ``page/lead/task/download/`` for the CSV —
and hands the rows of the last ``WINDOW_SECONDS`` to the webhook's ``apply_entries`` as the entries
TikTok would have delivered: same lead ids, same person keys, so what the webhook already captured
answers duplicate and a second run adds nothing.

Bounded per run: ``MAX_FORMS`` forms per advertiser, ``MAX_POLLS`` polls per task, ``MAX_ROWS``
rows per form, and an integration is started only while ``ITEM_BUDGET_MS`` remain. An advertiser
token TikTok reports invalid marks the integration ``needs_reauth``; one integration's failure
never stops the others.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import clock, lead_subscriptions, vault
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.data import advertisers
from orcapulse_tiktok.data import integrations as integration_store
from orcapulse_tiktok.errors import DomainError
from orcapulse_tiktok.lead_forms import apply_entries
from orcapulse_tiktok.observability import logger, metrics
from orcapulse_tiktok.tiktok.ads_client import AdsClient, ads_client
from orcapulse_tiktok.tiktok.client import TikTokError, TikTokGrantError
from orcapulse_tiktok.tiktok.lead_events import LeadEntry

WINDOW_SECONDS = 48 * 3600
MAX_FORMS = 20
MAX_POLLS = 5
POLL_SECONDS = 2.0
MAX_ROWS = 2000
ITEM_BUDGET_MS = 60_000
# CSV columns that are the lead's ids and time, not answers (header names normalised: lowercase,
# spaces as underscores).
ID_COLUMNS = {"lead_id": "lead_id", "id": "lead_id", "advertiser_id": "advertiser_id", "ad_id": "ad_id"}
ID_COLUMNS |= {
    "adgroup_id": "adgroup_id",
    "campaign_id": "campaign_id",
    "form_id": "page_id",
    "page_id": "page_id",
}
TIME_COLUMNS = ("created_time", "create_time")
META_COLUMNS = {"ad_name", "adgroup_name", "campaign_name", "form_name", "page_name", "lead_source"}


@dataclass
class LeadCatchupReport:
    """What one run did (counts and integration ids only: never a person's data)."""

    integrations: int = 0
    forms: int = 0
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    pending_tasks: int = 0
    deferred: int = 0
    failed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "failed": list(self.failed)}


def catch_up_leads(
    *, time_left_ms: Callable[[], int] | None = None, sleep: Callable[[float], None] = time.sleep
) -> LeadCatchupReport:
    """Catch every ads integration up; see the module docstring."""
    report = LeadCatchupReport()
    client = ads_client()
    for workspace_id, integration_id in advertisers.ads_integrations():
        if time_left_ms is not None and time_left_ms() < ITEM_BUDGET_MS:
            report.deferred += 1
            continue
        try:
            _one(workspace_id, integration_id, client, report, sleep)
        except TikTokGrantError:
            logger.warning("advertiser token invalid", extra={"integration_id": integration_id})
            advertisers.mark_needs_reauth(workspace_id, integration_id, clock.iso(clock.now()))
            report.failed.append(integration_id)
        except (TikTokError, DomainError) as exc:
            logger.warning(
                "lead catch-up failed",
                extra={"integration_id": integration_id, "error_code": getattr(exc, "code", "")},
            )
            report.failed.append(integration_id)
    metrics.add_metric(name="LeadCatchupLeadsAdded", unit=MetricUnit.Count, value=report.accepted)
    metrics.add_metric(name="LeadCatchupFailures", unit=MetricUnit.Count, value=len(report.failed))
    logger.info("lead catch-up run finished", extra={"report": report.to_dict()})
    return report


def _one(
    workspace_id: str,
    integration_id: str,
    client: AdsClient,
    report: LeadCatchupReport,
    sleep: Callable[[float], None],
) -> None:
    lead_subscriptions.ensure_subscribed(workspace_id, integration_id)
    record = integration_store.get(workspace_id, integration_id)
    if record is None or record.status != "active":
        return  # needs_reauth: its token is dead; deliveries still land through the webhook
    stored = vault.load(integration_id)
    if stored is None:
        return
    report.integrations += 1
    region = get_settings().lead_region
    since = clock.now() - WINDOW_SECONDS
    for advertiser_id in [str(a) for a in record.advertiser_ids or []]:
        for page_id in client.forms(stored.access_token, advertiser_id)[:MAX_FORMS]:
            report.forms += 1
            content = _download(client, stored.access_token, advertiser_id, page_id, region, sleep)
            if content is None:
                report.pending_tasks += 1
                continue
            entries = rows_to_entries(content, advertiser_id, page_id, since=since)
            report.rows += len(entries)
            counts = apply_entries(entries, None)
            report.accepted += counts["accepted"]
            report.duplicates += counts["duplicate"]


def _download(
    client: AdsClient,
    token: str,
    advertiser_id: str,
    page_id: str,
    region: str | None,
    sleep: Callable[[float], None],
) -> bytes | None:
    """The form's lead file, or ``None`` while TikTok has not finished it within the polls."""
    task = client.lead_task(token, advertiser_id, page_id, region=region)
    for _ in range(MAX_POLLS):
        if task.status in ("SUCCEED", "FAILED"):
            break
        sleep(POLL_SECONDS)
        task = client.lead_task(token, advertiser_id, page_id, task_id=task.task_id, region=region)
    if task.status != "SUCCEED":
        return None
    return client.lead_download(token, advertiser_id, task.task_id, region=region)


def rows_to_entries(content: bytes, advertiser_id: str, page_id: str, *, since: float) -> list[LeadEntry]:
    """The CSV's rows created since ``since`` (newest ``MAX_ROWS``) as delivery entries: the ids as
    the webhook has them, every other column an answer under its normalised name."""
    text = content.decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower().replace(" ", "_") for h in next(reader, [])]
    entries: list[LeadEntry] = []
    for row in reader:
        cells = dict(zip(header, (c.strip() for c in row), strict=False))
        ids = {ID_COLUMNS[k]: v for k, v in cells.items() if k in ID_COLUMNS and v.isdigit()}
        lead_id = ids.get("lead_id")
        if not lead_id:
            continue
        created = _time(next((cells[c] for c in TIME_COLUMNS if cells.get(c)), ""))
        if created is not None and created < since:
            continue
        answers = {
            k: v
            for k, v in cells.items()
            if k and k not in ID_COLUMNS and k not in TIME_COLUMNS and k not in META_COLUMNS and v
        }
        entries.append(
            LeadEntry(
                lead_id=lead_id,
                advertiser_id=advertiser_id,
                page_id=ids.get("page_id", page_id),
                ad_id=ids.get("ad_id"),
                adgroup_id=ids.get("adgroup_id"),
                campaign_id=ids.get("campaign_id"),
                create_time=int(created) if created is not None else None,
                lead_source="INSTANT_FORM",
                page_name=cells.get("form_name") or cells.get("page_name") or None,
                ad_name=cells.get("ad_name") or None,
                campaign_name=cells.get("campaign_name") or None,
                answers=answers,
            )
        )
    return entries[-MAX_ROWS:]


def _time(value: str) -> float | None:
    """A CSV time (UTC, ``YYYY-MM-DD HH:MM:SS``, or epoch seconds) as epoch seconds."""
    if value.isdigit():
        return float(value)
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
