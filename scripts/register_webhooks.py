"""Register the deployed webhook URL with the TikTok API for Business app (business accounts).

    make register-webhooks URL=<TikTokWebhookUrl output> SECRET_ID=<TikTokBusinessAppSecretArn output>

Runs with the operator's AWS credentials (it reads the Business app's secret from Secrets Manager)
and points the app's DIRECT_MESSAGE and COMMENT webhooks at URL, then reads them back. Safe to run
again: an event type already registered with URL is left alone. Exit status 0 on success."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True, help="the stack's TikTokWebhookUrl output (https)")
    parser.add_argument(
        "--secret-id",
        default=os.environ.get("TIKTOK_BUSINESS_APP_SECRET_ID"),
        help="Secrets Manager id of the Business app's {app_id, secret} (TikTokBusinessAppSecretArn)",
    )
    parser.add_argument("--api-base-url", default=None, help="default https://business-api.tiktok.com")
    args = parser.parse_args(argv)
    if not args.secret_id:
        parser.error("--secret-id (or TIKTOK_BUSINESS_APP_SECRET_ID) is required")
    os.environ["TIKTOK_BUSINESS_APP_SECRET_ID"] = args.secret_id
    if args.api_base_url:
        os.environ["TIKTOK_BUSINESS_API_BASE_URL"] = args.api_base_url

    from orcapulse_tiktok.config import get_settings
    from orcapulse_tiktok.errors import DomainError
    from orcapulse_tiktok.tiktok.client import TikTokError
    from orcapulse_tiktok.webhook_registration import register_webhooks

    get_settings.cache_clear()
    try:
        done = register_webhooks(args.url)
    except (DomainError, TikTokError) as exc:
        print(f"registration failed: {exc}", file=sys.stderr)
        return 1
    for registration in done:
        state = "registered" if registration.changed else "already registered"
        print(f"{registration.event_type}: {state} -> {registration.callback_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
