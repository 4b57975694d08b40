"""The Marketing API calls of lead forms (DESIGN §10), on the Business API transport.

Same base, envelope and error typing as ``business_client`` (``{"code", "message", "request_id",
"data"}``; a non-zero ``code`` is an error even with HTTP 200): advertiser authorisation
(``oauth2/access_token/``, ``oauth2/advertiser/get/``, ``oauth2/revoke_token/``), LEAD subscriptions
(``subscription/subscribe/``, ``subscription/get/``, ``subscription/unsubscribe/``), forms
(``page/get/``) and the lead download task (``page/lead/task/``, ``page/lead/task/download/``).
Ids are read as strings whichever JSON type TikTok uses. No token or secret ever reaches an
error message.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import requests

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.observability import tracer
from orcapulse_tiktok.tiktok.business_answers import envelope
from orcapulse_tiktok.tiktok.business_client import PREFIX, BusinessClient
from orcapulse_tiktok.tiktok.client import TIMEOUT, TikTokResponseError, TikTokTransientError
from orcapulse_tiktok.tiktok.credentials import AppCredentials

MAX_FORMS_PER_PAGE = 100  # page/get/ page_size
MAX_SUBSCRIPTIONS_PER_PAGE = 1000  # subscription/get/ page_size
MAX_CSV_BYTES = 10 * 1024 * 1024  # larger exports come zipped (DESIGN §10): not read here


class AdvertiserGrant(NamedTuple):
    """``oauth2/access_token/``'s answer: a token that does not expire, and what it covers."""

    access_token: str
    advertiser_ids: tuple[str, ...]
    scope: tuple[str, ...]

    def __repr__(self) -> str:  # the token never reaches a log line or a traceback
        return f"AdvertiserGrant(advertiser_ids={self.advertiser_ids!r}, access_token='***')"


class Subscription(NamedTuple):
    subscription_id: str
    advertiser_id: str | None
    callback_url: str | None


class LeadTask(NamedTuple):
    task_id: str
    status: str  # SUCCEED, FAILED; anything else (CREATED, RUNNING, ...) is pending
    file_type: str | None


def text_id(value: Any) -> str | None:
    """An id as a string from a JSON string or integer (never a float or a bool)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


class AdsClient(BusinessClient):
    """Calls the Marketing API under ``{base}/open_api/v1.3/``."""

    # -- authorisation -----------------------------------------------------------------------------
    def access_token(self, creds: AppCredentials, auth_code: str) -> AdvertiserGrant:
        """``POST oauth2/access_token/``: trade the callback's single-use ``auth_code`` (never retried)."""
        data = self._call(
            "POST",
            "oauth2/access_token/",
            retry=False,
            body={"app_id": creds.client_key, "secret": creds.client_secret, "auth_code": auth_code},
        )
        token, ids = data.get("access_token"), data.get("advertiser_ids")
        if not isinstance(token, str) or not token or not isinstance(ids, list):
            raise TikTokResponseError("malformed_token_response")
        scope = data.get("scope")
        return AdvertiserGrant(
            access_token=token,
            advertiser_ids=tuple(i for i in (text_id(v) for v in ids) if i),
            scope=tuple(str(s) for s in scope) if isinstance(scope, list) else (),
        )

    def advertisers(self, creds: AppCredentials, access_token: str) -> dict[str, str | None]:
        """``GET oauth2/advertiser/get/``: advertiser id → name, of the advertisers the token covers."""
        data = self._call(
            "GET",
            "oauth2/advertiser/get/",
            retry=True,
            token=access_token,
            params={"app_id": creds.client_key, "secret": creds.client_secret},
        )
        items = data.get("list")
        if not isinstance(items, list):
            raise TikTokResponseError("malformed_advertiser_list")
        out: dict[str, str | None] = {}
        for item in items:
            if isinstance(item, dict) and (advertiser := text_id(item.get("advertiser_id"))):
                name = item.get("advertiser_name")
                out[advertiser] = name if isinstance(name, str) and name else None
        return out

    def revoke_token(self, creds: AppCredentials, access_token: str) -> None:
        """``POST oauth2/revoke_token/`` (idempotent: revoking twice leaves it revoked)."""
        self._call(
            "POST",
            "oauth2/revoke_token/",
            retry=True,
            body={"app_id": creds.client_key, "secret": creds.client_secret, "access_token": access_token},
        )

    # -- subscriptions ---------------------------------------------------------------------------
    def subscribe(
        self, creds: AppCredentials, *, access_token: str, advertiser_id: str, callback_url: str
    ) -> str:
        """``POST subscription/subscribe/`` for the advertiser's Instant Form leads; the subscription id.
        Not retried here: a retry after a lost answer would make a second subscription (the caller
        looks for one with ``subscriptions`` first)."""
        data = self._call(
            "POST",
            "subscription/subscribe/",
            retry=False,
            body={
                "app_id": creds.client_key,
                "secret": creds.client_secret,
                "subscribe_entity": "LEAD",
                "callback_url": callback_url,
                "subscription_detail": {
                    "access_token": access_token,
                    "advertiser_id": advertiser_id,
                    "lead_source": "INSTANT_FORM",
                },
            },
        )
        subscription_id = text_id(data.get("subscription_id"))
        if subscription_id is None:
            raise TikTokResponseError("malformed_subscription")
        return subscription_id

    def subscriptions(self, creds: AppCredentials, *, max_pages: int = 5) -> list[Subscription]:
        """``GET subscription/get/``: the app's LEAD subscriptions (up to ``max_pages`` pages)."""
        out: list[Subscription] = []
        for page in range(1, max_pages + 1):
            data = self._call(
                "GET",
                "subscription/get/",
                retry=True,
                params={
                    "app_id": creds.client_key,
                    "secret": creds.client_secret,
                    "subscribe_entity": "LEAD",
                    "page": page,
                    "page_size": MAX_SUBSCRIPTIONS_PER_PAGE,
                },
            )
            items = data.get("subscriptions") or []
            if not isinstance(items, list):
                raise TikTokResponseError("malformed_subscriptions")
            for item in items:
                if not isinstance(item, dict) or not (sid := text_id(item.get("subscription_id"))):
                    continue
                detail = item.get("subscription_detail")
                detail = detail if isinstance(detail, dict) else {}
                url = item.get("callback_url")
                out.append(
                    Subscription(
                        sid, text_id(detail.get("advertiser_id")), url if isinstance(url, str) else None
                    )
                )
            if _total_pages(data) <= page:
                break
        return out

    def unsubscribe(self, creds: AppCredentials, subscription_id: str) -> None:
        """``POST subscription/unsubscribe/`` (idempotent in effect: a gone subscription stays gone)."""
        self._call(
            "POST",
            "subscription/unsubscribe/",
            retry=True,
            body={
                "app_id": creds.client_key,
                "secret": creds.client_secret,
                "subscription_id": subscription_id,
            },
        )

    # -- forms and the lead download task --------------------------------------------------------
    def forms(self, access_token: str, advertiser_id: str, *, max_pages: int = 3) -> list[str]:
        """``GET page/get/`` with ``business_type=LEAD_GEN``: the advertiser's form (page) ids."""
        out: list[str] = []
        for page in range(1, max_pages + 1):
            data = self._call(
                "GET",
                "page/get/",
                retry=True,
                token=access_token,
                params={
                    "advertiser_id": advertiser_id,
                    "business_type": "LEAD_GEN",
                    "page": page,
                    "page_size": MAX_FORMS_PER_PAGE,
                },
            )
            items = data.get("list") or []
            if not isinstance(items, list):
                raise TikTokResponseError("malformed_forms")
            out.extend(p for p in (text_id(i.get("page_id")) for i in items if isinstance(i, dict)) if p)
            if _total_pages(data) <= page:
                break
        return out

    def lead_task(
        self,
        access_token: str,
        advertiser_id: str,
        page_id: str,
        *,
        task_id: str | None = None,
        region: str | None = None,
    ) -> LeadTask:
        """``POST page/lead/task/``: create the form's download task, or (with ``task_id``) poll it."""
        body = {"advertiser_id": advertiser_id, "page_id": page_id}
        if task_id:
            body["task_id"] = task_id
        data = self._call(
            "POST",
            "page/lead/task/",
            retry=bool(task_id),
            token=access_token,
            body=body,
            headers=_region(region),
        )
        found = text_id(data.get("task_id")) or task_id
        status = data.get("status")
        if not found or not isinstance(status, str):
            raise TikTokResponseError("malformed_lead_task")
        file_type = data.get("file_type")
        return LeadTask(found, status, file_type if isinstance(file_type, str) else None)

    def lead_download(
        self, access_token: str, advertiser_id: str, task_id: str, *, region: str | None = None
    ) -> bytes:
        """``GET page/lead/task/download/``: the task's file (CSV). An error answers with the JSON
        envelope instead of a file."""
        try:
            resp = self._retrying.get(
                self.base_url + PREFIX + "page/lead/task/download/",
                params={"advertiser_id": advertiser_id, "task_id": task_id},
                headers={"Access-Token": access_token, **_region(region)},
                timeout=TIMEOUT,
                stream=True,
            )
            content = resp.raw.read(MAX_CSV_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise TikTokTransientError(type(exc).__name__) from None
        if resp.status_code == 429 or resp.status_code >= 500:
            raise TikTokTransientError("http_error", status=resp.status_code)
        if "json" in resp.headers.get("Content-Type", ""):
            envelope(resp.status_code, content)
            raise TikTokResponseError("no_lead_file", status=resp.status_code)
        if len(content) > MAX_CSV_BYTES:
            raise TikTokResponseError("lead_file_too_large", status=resp.status_code)
        return bytes(content)


def _region(region: str | None) -> dict[str, str]:
    # Lead data of the EEA, Switzerland and the UK is read with ``x-lead-region: eu`` (the docs).
    return {"x-lead-region": region} if region else {}


def _total_pages(data: dict[str, Any]) -> int:
    info = data.get("page_info")
    total = info.get("total_page") if isinstance(info, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) else 1


@lru_cache(maxsize=4)
def _client_for(base_url: str) -> AdsClient:
    tracer.patch(("requests",))
    return AdsClient(base_url)


def ads_client() -> AdsClient:
    """The container's Marketing API client for ``TIKTOK_BUSINESS_API_BASE_URL``."""
    return _client_for(get_settings().business_api_base_url)


def reset_ads_client() -> None:
    _client_for.cache_clear()
