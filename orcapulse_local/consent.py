"""The emulator's consent decision: whether TikTok accepts an authorize request, and where Approve
or Deny sends the browser. An authorize request naming the Login Kit app's ``client_key`` connects a
personal account (``TikTokState``); one naming the Business app's ``app_id`` a business account
(``BusinessEmulator``)."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlencode, urlsplit

from orcapulse_local.business_emulator import BusinessEmulator
from orcapulse_local.tiktok_state import TikTokState


def authorize_problem(
    params: dict[str, str], *, client_keys: Collection[str], redirect_uris: Collection[str]
) -> str | None:
    """Why TikTok would refuse this authorize request, or None."""
    if params.get("client_key") not in client_keys:
        return "This app (client_key) is not known to TikTok."
    if params.get("response_type") != "code":
        return "response_type must be code."
    redirect = params.get("redirect_uri", "")
    if redirect_uris and redirect not in redirect_uris:
        return "redirect_uri is not registered for this app."
    if not redirect:
        return "redirect_uri is missing."
    if not params.get("scope"):
        return "scope is missing."
    if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
        return "code_challenge_method must be S256."
    return None


def decide(
    form: list[tuple[str, str]], state: TikTokState, business: BusinessEmulator
) -> tuple[str, str | None]:
    """The consent form's answer: the redirect location, and the account approved (None if denied)."""
    params = dict(form)
    redirect = params["redirect_uri"]
    sep = "&" if urlsplit(redirect).query else "?"
    kept = {"state": params["state"]} if params.get("state") else {}
    if params.get("decision") != "approve":
        denied = {"error": "access_denied", "error_description": "The user denied the request."}
        return f"{redirect}{sep}{urlencode({**denied, **kept})}", None
    requested = [s.strip() for s in params.get("scope", "").split(",") if s.strip()]
    if "scopes_submitted" in params:
        # The consent page's boxes: the user may untick a scope, as on TikTok.
        ticked = {v for k, v in form if k == "granted_scope"}
        requested = [s for s in requested if s in ticked]
    granted = ",".join(requested)  # a scripted approval grants what was asked for
    if business.is_business(params["client_key"]):
        name = params.get("display_name") or "New Orca Shop"
        open_id, code = business.approve(
            params.get("open_id", ""), name, scopes=granted, redirect_uri=redirect
        )
    else:
        open_id = params.get("open_id") or next(iter(state.accounts))
        if open_id == "new":
            open_id = state.add_account(display_name=params.get("display_name") or "New Orca Fan").open_id
        code = state.authorize(
            client_key=params["client_key"],
            redirect_uri=redirect,
            scope=params.get("scope", ""),
            code_challenge=params.get("code_challenge") or None,
            open_id=open_id,
            granted_scopes=granted,
        )
    return f"{redirect}{sep}{urlencode({'code': code, 'scopes': granted, **kept})}", open_id
