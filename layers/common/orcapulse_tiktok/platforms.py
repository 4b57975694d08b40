"""The platform configuration: one source of truth for the platforms the shared social-media
model knows, their capture sources and capabilities. The lead and integration models take their
enums from here, and ``GET /platforms`` serves it."""

from __future__ import annotations

from typing import Any, NamedTuple


class CaptureSource(NamedTuple):
    id: str
    label: str
    reserved: bool = False  # in the schema, not produced by this deployment yet


class Platform(NamedTuple):
    id: str
    label: str
    capture_sources: tuple[CaptureSource, ...]
    capabilities: dict[str, Any]


# DESIGN §8: what each kind of TikTok integration gives. A personal (Login Kit) account gives its
# identity and authorization.removed only; TikTok sends comment and DM webhooks to business
# accounts connected through the Accounts API of TikTok API for Business.
ACCOUNT_CAPABILITIES: dict[str, tuple[str, ...]] = {
    "personal": ("identity", "authorization_removed"),
    "business": (
        "identity",
        "authorization_removed",
        "comments",
        "direct_messages",
        "high_intent_comments",
        "comment_catch_up",
    ),
    "ads": ("lead_forms", "lead_form_catch_up"),
}


def account_capabilities(account_type: str) -> list[str]:
    """What an integration of ``account_type`` gives (an unknown kind gives nothing)."""
    return list(ACCOUNT_CAPABILITIES.get(account_type, ()))


PLATFORMS: tuple[Platform, ...] = (
    Platform(
        "tiktok",
        "TikTok",
        (
            CaptureSource("tiktok_comment", "TikTok comment"),
            CaptureSource("tiktok_dm", "TikTok direct message"),
            CaptureSource("tiktok_lead_form", "TikTok lead form"),
        ),
        {
            "oauth": True,
            "webhook": True,
            "webhook_modes": ["live", "sandbox"],
            "token_refresh": True,  # a capability flag, not a token  # nosec B105
            "account_types": {kind: list(caps) for kind, caps in ACCOUNT_CAPABILITIES.items()},
        },
    ),
    Platform(
        "instagram",
        "Instagram",
        (
            CaptureSource("instagram_comment", "Instagram comment"),
            CaptureSource("instagram_dm", "Instagram direct message"),
        ),
        {"oauth": True, "webhook": True},
    ),
    Platform(
        "whatsapp",
        "WhatsApp",
        (CaptureSource("whatsapp_message", "WhatsApp message"),),
        {"oauth": False, "webhook": True},
    ),
    Platform(
        "linkedin",
        "LinkedIn",
        (
            CaptureSource("linkedin_comment", "LinkedIn comment"),
            CaptureSource("linkedin_lead_form", "LinkedIn lead gen form"),
        ),
        {"oauth": True, "webhook": True},
    ),
    Platform(
        "facebook",
        "Facebook",
        (
            CaptureSource("facebook_comment", "Facebook comment"),
            CaptureSource("facebook_message", "Facebook Messenger message"),
            CaptureSource("facebook_lead_form", "Facebook lead ad form"),
        ),
        {"oauth": True, "webhook": True},
    ),
)

PLATFORM_IDS: tuple[str, ...] = tuple(p.id for p in PLATFORMS)
CAPTURE_SOURCE_IDS: tuple[str, ...] = tuple(s.id for p in PLATFORMS for s in p.capture_sources)
LEAD_STATUSES: tuple[str, ...] = ("new", "qualified", "routed", "dismissed")
INTEGRATION_STATUSES: tuple[str, ...] = ("active", "needs_reauth", "revoked")
SOURCE_STATES: tuple[str, ...] = ("present", "deleted", "hidden")


def _capabilities(platform: Platform, webhook_mode: str | None) -> dict[str, Any]:
    capabilities = dict(platform.capabilities)
    if webhook_mode is not None and webhook_mode in capabilities.get("webhook_modes", ()):
        capabilities["webhook_mode"] = webhook_mode
    return capabilities


def platform_configuration(webhook_mode: str | None = None) -> dict[str, Any]:
    """The document ``GET /platforms`` returns; ``webhook_mode`` is this deployment's mode
    (``WEBHOOK_MODE``), shown on the platforms that have webhook modes."""
    return {
        "items": [
            {
                "id": p.id,
                "label": p.label,
                "capture_sources": [
                    {"id": s.id, "label": s.label, "reserved": s.reserved} for s in p.capture_sources
                ],
                "capabilities": _capabilities(p, webhook_mode),
            }
            for p in PLATFORMS
        ],
        "lead_statuses": list(LEAD_STATUSES),
        "integration_statuses": list(INTEGRATION_STATUSES),
    }
