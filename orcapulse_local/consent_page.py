"""The TikTok emulator's Login Kit pages: the consent page (the app's name, the accounts to
continue as, the requested scopes, Approve and Deny) and the error page, rendered with Jinja2."""

from __future__ import annotations

from collections.abc import Iterable

import jinja2

from orcapulse_local.tiktok_state import Account

AUTHORIZE_PATH = "/v2/auth/authorize/"
AUTHORIZE_PARAMETERS = (
    "client_key",
    "scope",
    "redirect_uri",
    "state",
    "response_type",
    "code_challenge",
    "code_challenge_method",
)
# Jinja2 (Flask's template engine) escapes every value put into the pages.
_PAGES = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_PAGE = _PAGES.from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>TikTok — {{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font-family: system-ui, sans-serif; background: #121212; color: #f1f1f2; margin: 0; }
main { max-width: 28rem; margin: 3rem auto; background: #1e1e1e; padding: 2rem; border-radius: 12px; }
h1 { font-size: 1.3rem; margin-top: 0; } .note { color: #a0a0a8; font-size: .85rem; }
label { display: block; margin: .4rem 0; } fieldset { border: 1px solid #333; border-radius: 8px; }
.buttons { display: flex; gap: .75rem; margin-top: 1.2rem; }
button { flex: 1; padding: .7rem; border-radius: 6px; border: 0; font-size: 1rem; cursor: pointer; }
.approve { background: #fe2c55; color: white; order: 2; } .deny { background: #3a3a3f; color: #f1f1f2; }
.error { color: #ff8a8a; }
</style></head><body><main>
{% if error %}<h1>Something went wrong</h1><p class="error">{{ error }}</p>{% else %}
<h1>Log in to <strong>{{ app_name }}</strong> with TikTok</h1>
<p class="note">TikTok emulator on this machine — no real TikTok account is involved.</p>
<form method="post" action="{{ action }}">
{% for name, value in hidden %}<input type="hidden" name="{{ name }}" value="{{ value }}">{% endfor %}
<!-- Approve comes first in the form, so Enter in the name field approves rather than denies. -->
<fieldset><legend>Continue as</legend>
{% for a in accounts %}<label><input type="radio" name="open_id" value="{{ a.open_id }}"
{%- if loop.first %} checked{% endif %} data-testid="account-{{ a.open_id }}"> {{ a.display_name }}
<span class="note">({{ a.open_id }})</span></label>{% endfor %}
<label><input type="radio" name="open_id" value="new"> A new account named
<input name="display_name" value="New Orca Fan" size="16"></label></fieldset>
<input type="hidden" name="scopes_submitted" value="1">
<fieldset><legend>This app will be able to</legend>
{% for s in scopes %}<label><input type="checkbox" name="granted_scope" value="{{ s }}" checked> {{ s }}</label>
{% endfor %}</fieldset>
<div class="buttons">
<button class="approve" type="submit" name="decision" value="approve">Approve</button>
<button class="deny" type="submit" name="decision" value="deny">Deny</button>
</div></form>{% endif %}</main></body></html>"""
)


def consent_page(params: dict[str, str], accounts: Iterable[Account], app_name: str) -> str:
    """The consent page for an authorize request: the app, the accounts to continue as, the scopes."""
    return _PAGE.render(
        title="authorize app",
        error=None,
        app_name=app_name,
        action=AUTHORIZE_PATH,
        hidden=[(k, v) for k, v in params.items() if k in AUTHORIZE_PARAMETERS],
        accounts=list(accounts),
        scopes=[s.strip() for s in params.get("scope", "").split(",") if s.strip()],
    )


def error_page(message: str) -> str:
    """TikTok's error page, saying what is wrong with the request."""
    return _PAGE.render(title="error", error=message)
