"""Replay kept webhook deliveries through the code that first received them (docs/operations.md).

Choose the deliveries — by id, by the time they arrived, or every quarantined one — and where:

    python scripts/replay_deliveries.py --quarantined --local             # the local stack (make local)
    python scripts/replay_deliveries.py --since 2026-12-01T08:00Z --until 2026-12-01T09:00Z \\
        --function <deployed webhook function name>                      # a deployment
    python scripts/replay_deliveries.py --ids 3f2a...,9b1c...            # the environment as set

``--local`` takes the local stack's environment from template.yaml (moto on LOCAL_AWS_PORT);
``--function`` reads a deployed webhook function's environment with your AWS credentials; with
neither, the environment must already name the tables and secrets (as the webhook function's).
Each delivery prints one line (id, route, outcome); the exit status is 1 when any delivery was
not processed (missing, quarantined again, a fault), so a script can retry. Safe to repeat.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator

WEBHOOK_FUNCTION = "WebhookFunction"
DONE = {"accepted", "duplicate", "ignored"}


def _epoch_ms(text: str) -> int:
    from orcapulse_tiktok.clock import parse_iso

    try:
        return int(parse_iso(text).timestamp() * 1000)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None


def _ids(text: str) -> list[str]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids or any(len(i) != 32 or any(c not in "0123456789abcdef" for c in i) for i in ids):
        raise argparse.ArgumentTypeError("delivery ids are 32 lower-case hex characters, comma-separated")
    return ids


def local_environment() -> dict[str, str]:
    """The webhook function's environment in the local stack (template.yaml, moto, the emulator)."""
    from orcapulse_local import config
    from orcapulse_local.template import deployment_context, function_environment, load_template

    template = load_template()
    api, tiktok, aws = (config.url(config.port_from_env(name)) for name in ("api", "tiktok", "aws"))
    ctx = deployment_context(template, config.stack_parameters(api), region=config.REGION)
    return {
        **function_environment(template, WEBHOOK_FUNCTION, ctx),
        **config.environment_overrides(tiktok, aws),
        "AWS_REGION": config.REGION,
        "AWS_DEFAULT_REGION": config.REGION,
    }


def deployed_environment(function_name: str) -> dict[str, str]:
    """A deployed function's environment variables (lambda:GetFunctionConfiguration)."""
    import boto3

    answer = boto3.client("lambda").get_function_configuration(FunctionName=function_name)
    return dict(answer.get("Environment", {}).get("Variables", {}))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", type=_ids, help="comma-separated delivery ids")
    which.add_argument("--since", type=_epoch_ms, help="deliveries received at or after (ISO 8601)")
    which.add_argument("--quarantined", action="store_true", help="every quarantined delivery")
    parser.add_argument("--until", type=_epoch_ms, help="with --since: received at or before (ISO 8601)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="the local stack (make local)")
    where.add_argument("--function", help="a deployed webhook function, whose environment is used")
    parser.add_argument("--dry-run", action="store_true", help="list the deliveries, replay nothing")
    args = parser.parse_args(argv)
    if args.until is not None and args.since is None:
        parser.error("--until needs --since")
    return args


def run(args: argparse.Namespace, say: Callable[[str], None] = print) -> int:
    """Replay what ``args`` selects in this process's environment; the exit status."""
    from orcapulse_tiktok import replay
    from orcapulse_tiktok.config import get_settings

    get_settings.cache_clear()
    selected: Iterator[str] = replay.select(
        ids=args.ids or (), since_ms=args.since, until_ms=args.until, quarantined=args.quarantined
    )
    if args.dry_run:
        count = 0
        for delivery_id in selected:
            say(delivery_id)
            count += 1
        say(f"{count} deliveries selected (dry run: none replayed)")
        return 0
    outcomes: Counter[str] = Counter()
    for done in replay.replay(list(selected)):
        say(f"{done.delivery_id} {done.route or '-'} {done.outcome}")
        outcomes[done.outcome] += 1
    say("replayed: " + (", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())) or "nothing"))
    return 0 if set(outcomes) <= DONE else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.local:
        os.environ.update(local_environment())
        os.environ.pop("AWS_PROFILE", None)
    elif args.function:
        os.environ.update(deployed_environment(args.function))
    # The functions' own logs would interleave with the report; they still go to stderr.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
