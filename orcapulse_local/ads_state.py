"""A stateful model of the Marketing API endpoints of lead forms (DESIGN §10), answering as the docs
show: HTTP 200 with ``{"code", "message", "request_id", "data"}`` and a non-zero ``code`` for every
error. Advertiser authorisation (``oauth2/access_token/``, ``oauth2/advertiser/get/``,
``oauth2/revoke_token/``), LEAD subscriptions (``subscription/subscribe/``, ``/get/``,
``/unsubscribe/``), forms (``page/get/``), the lead download task (``page/lead/task/`` and
``/download/``, CSV) and lead deliveries signed with ``X-Open-Signature``.

The test suite drives it through ``responses`` (tests/support/ads_fake.py); the local stack serves
it over HTTP (``ads_emulator``). Every token and code it hands out is listed in ``issued``; every
email, phone and answer of a lead it makes in ``personal`` (the log-leak checks read both)."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import itertools
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from orcapulse_local.fault_queue import FaultQueue

ENDPOINTS = {
    "access_token": ("POST", "oauth2/access_token/"),
    "advertisers": ("GET", "oauth2/advertiser/get/"),
    "revoke_token": ("POST", "oauth2/revoke_token/"),
    "subscribe": ("POST", "subscription/subscribe/"),
    "subscriptions": ("GET", "subscription/get/"),
    "unsubscribe": ("POST", "subscription/unsubscribe/"),
    "forms": ("GET", "page/get/"),
    "lead_task": ("POST", "page/lead/task/"),
    "lead_download": ("GET", "page/lead/task/download/"),
}
TASK_POLLS = 1  # answers RUNNING this many times before SUCCEED
Answer = tuple[int, dict[str, str], bytes]


def request_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(12).upper()


def _ids() -> Any:
    return itertools.count(7_400_000_000_000_000_001)  # 19-digit ids, beyond 2**53


@dataclass
class AdsState(FaultQueue):
    app_id: str
    secret: str
    issued: list[str] = field(default_factory=list)
    personal: list[str] = field(default_factory=list)
    advertisers: dict[str, str] = field(default_factory=dict)  # id → name
    codes: dict[str, list[str]] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    forms: dict[str, list[str]] = field(default_factory=dict)  # advertiser → page ids
    leads: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # page id → entries
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    faults: dict[str, list[Any]] = field(default_factory=dict)  # endpoint → code dicts or "timeout"
    lock: threading.RLock = field(default_factory=threading.RLock)
    _seq: Any = field(default_factory=_ids)

    # -- set-up -----------------------------------------------------------------------------------
    def next_id(self) -> str:
        return str(next(self._seq))

    def add_advertiser(self, advertiser_id: str | None = None, name: str = "Orca Ads") -> str:
        advertiser_id = advertiser_id or self.next_id()
        self.advertisers[advertiser_id] = name
        self.forms.setdefault(advertiser_id, [])
        return advertiser_id

    def add_form(self, advertiser_id: str, page_id: str | None = None) -> str:
        page_id = page_id or self.next_id()
        self.forms.setdefault(advertiser_id, []).append(page_id)
        self.leads.setdefault(page_id, [])
        return page_id

    def authorize(self, advertiser_ids: list[str]) -> str:
        """The advertiser approves on the consent page: a single-use ``auth_code``."""
        for advertiser_id in advertiser_ids:
            if advertiser_id not in self.advertisers:
                self.add_advertiser(advertiser_id)
        code = secrets.token_hex(20)
        self.codes[code] = list(advertiser_ids)
        self.issued.append(code)
        return code

    # -- leads --------------------------------------------------------------------------------------
    def submit_lead(
        self,
        advertiser_id: str,
        page_id: str,
        answers: dict[str, str],
        *,
        lead_id: str | None = None,
        create_time: int | None = None,
    ) -> dict[str, Any]:
        """A person submits the form: the entry as a delivery carries it (also kept for the
        download task). Ids are JSON numbers in a delivery, as TikTok sends them."""
        entry = {
            "id": int(lead_id or self.next_id()),
            "lead_source": "INSTANT_FORM",
            "page_id": int(page_id),
            "page_name": "Orca plush waitlist",
            "advertiser_id": int(advertiser_id),
            "campaign_id": 1_800_000_000_000_000_001,
            "campaign_name": "Winter plush",
            "adgroup_id": 1_800_000_000_000_000_002,
            "adgroup_name": "EU adults",
            "ad_id": 1_800_000_000_000_000_003,
            "ad_name": "Plush video",
            "create_time": int(time.time()) if create_time is None else create_time,
            "changes": [{"field": k, "value": v} for k, v in answers.items()],
        }
        self.personal.extend(v for v in answers.values() if len(v) >= 6)
        self.leads.setdefault(page_id, []).append(entry)
        return entry

    def delivery(self, entries: list[dict[str, Any]], *, obj: int = 1) -> bytes:
        """A webhook body, as TikTok posts it (ids as JSON numbers)."""
        return json.dumps({"object": obj, "time": int(time.time()), "entry": entries}).encode()

    def signature(self, body: bytes) -> str:
        """``X-Open-Signature`` of a body this model made: ``json.dumps`` already writes non-ASCII
        as ``\\uXXXX``, so the body is its own escaped form and the HMAC is over it as is."""
        return hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()

    def csv_of(self, page_id: str) -> bytes:
        """The download task's file: one row per lead, the lead's ids and time (UTC), then each
        question of the form as a column."""
        entries = self.leads.get(page_id, [])
        questions: list[str] = []
        for entry in entries:
            for change in entry["changes"]:
                if change["field"] not in questions:
                    questions.append(change["field"])
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [
                "lead_id",
                "created_time",
                "advertiser_id",
                "campaign_id",
                "adgroup_id",
                "ad_id",
                "form_id",
                *questions,
            ]
        )
        for e in entries:
            answers = {c["field"]: c["value"] for c in e["changes"]}
            created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["create_time"]))
            writer.writerow(
                [
                    e["id"],
                    created,
                    e["advertiser_id"],
                    e["campaign_id"],
                    e["adgroup_id"],
                    e["ad_id"],
                    e["page_id"],
                ]
                + [answers.get(q, "") for q in questions]
            )
        return out.getvalue().encode()

    # -- answers ----------------------------------------------------------------------------------
    def _ok(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"code": 0, "message": "OK", "request_id": request_id(), "data": data}

    def _error(self, code: int, message: str) -> dict[str, Any]:
        return {"code": code, "message": message, "request_id": request_id(), "data": {}}

    def _app_ok(self, app_id: Any, secret: Any) -> bool:
        return app_id == self.app_id and hmac.compare_digest(str(secret or ""), self.secret)

    def _owner(self, token: str | None) -> list[str] | None:
        entry = self.tokens.get(token or "")
        return None if entry is None or entry.get("revoked") else list(entry["advertiser_ids"])

    def answer(self, endpoint: str, query: dict[str, str], body: dict[str, Any], token: str | None) -> Answer:
        """The HTTP answer to one call: (status, headers, body)."""
        with self.lock:
            if endpoint == "lead_download":
                return self._download(query, token)
            document = self._answer(endpoint, query, body, token)
        return 200, {"Content-Type": "application/json"}, json.dumps(document).encode()

    def _answer(
        self, endpoint: str, query: dict[str, str], body: dict[str, Any], token: str | None
    ) -> dict[str, Any]:
        args = {**query, **body}
        if endpoint in (
            "access_token",
            "advertisers",
            "revoke_token",
            "subscribe",
            "subscriptions",
            "unsubscribe",
        ) and not self._app_ok(args.get("app_id"), args.get("secret")):
            return self._error(40001, "Invalid app_id or secret")
        if endpoint == "access_token":
            advertiser_ids = self.codes.pop(str(args.get("auth_code") or ""), None)
            if advertiser_ids is None:
                return self._error(40002, "auth_code is invalid or expired")
            access = secrets.token_hex(20)
            self.tokens[access] = {"advertiser_ids": advertiser_ids}
            self.issued.append(access)
            return self._ok({"access_token": access, "advertiser_ids": advertiser_ids, "scope": [4, 5, 11]})
        if endpoint == "revoke_token":
            entry = self.tokens.get(str(args.get("access_token") or ""))
            if entry is not None:
                entry["revoked"] = True
            return self._ok(
                {"app_id": self.app_id, "advertiser_ids": entry["advertiser_ids"] if entry else []}
            )
        if endpoint == "subscriptions":
            items = [{"subscription_id": sid, **s} for sid, s in self.subscriptions.items()]
            return self._ok(
                {
                    "subscriptions": items,
                    "page_info": {"page": 1, "page_size": 1000, "total_number": len(items), "total_page": 1},
                }
            )
        if endpoint == "unsubscribe":
            if self.subscriptions.pop(str(args.get("subscription_id") or ""), None) is None:
                return self._error(40002, "subscription_id does not exist")
            return self._ok({"subscription_id": args.get("subscription_id")})
        if endpoint == "subscribe":
            detail = args.get("subscription_detail") or {}
            owned = self._owner(detail.get("access_token"))
            if owned is None:
                return self._error(40105, "The access token is invalid")
            if detail.get("advertiser_id") not in owned or args.get("subscribe_entity") != "LEAD":
                return self._error(40001, "No permission for this advertiser")
            sid = self.next_id()
            self.subscriptions[sid] = {
                "subscribe_entity": "LEAD",
                "callback_url": args.get("callback_url"),
                "subscription_detail": {
                    "advertiser_id": detail["advertiser_id"],
                    "lead_source": detail.get("lead_source"),
                },
            }
            return self._ok({"subscription_id": sid})
        owned = self._owner(token)
        if owned is None:
            return self._error(40105, "The access token is invalid")
        if endpoint == "advertisers":
            return self._ok(
                {
                    "list": [
                        {"advertiser_id": a, "advertiser_name": self.advertisers.get(a, "")} for a in owned
                    ]
                }
            )
        if args.get("advertiser_id") not in owned:
            return self._error(40001, "No permission for this advertiser")
        if endpoint == "forms":
            pages = self.forms.get(str(args["advertiser_id"]), [])
            return self._ok(
                {
                    "list": [
                        {"page_id": p, "title": "Orca plush waitlist", "status": "PUBLISHED"} for p in pages
                    ],
                    "page_info": {"page": 1, "page_size": 100, "total_number": len(pages), "total_page": 1},
                }
            )
        # lead_task: create, or poll with task_id
        task_id = args.get("task_id")
        if not task_id:
            task_id = self.next_id()
            self.tasks[task_id] = {
                "page_id": str(args.get("page_id")),
                "polls": 0,
                "advertiser_id": args["advertiser_id"],
            }
            return self._ok({"task_id": task_id, "status": "CREATED"})
        task = self.tasks.get(str(task_id))
        if task is None:
            return self._error(40002, "task_id does not exist")
        task["polls"] += 1
        if task["polls"] <= TASK_POLLS:
            return self._ok({"task_id": task_id, "status": "RUNNING"})
        return self._ok(
            {"task_id": task_id, "status": "SUCCEED", "file_name": f"{task_id}.csv", "file_type": "csv"}
        )

    def _download(self, query: dict[str, str], token: str | None) -> Answer:
        owned = self._owner(token)
        task = self.tasks.get(query.get("task_id", ""))
        if owned is None or task is None or query.get("advertiser_id") not in owned:
            document = self._error(40105 if owned is None else 40002, "Cannot download this task")
            return 200, {"Content-Type": "application/json"}, json.dumps(document).encode()
        return 200, {"Content-Type": "text/csv"}, self.csv_of(task["page_id"])
