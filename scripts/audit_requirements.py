"""pip-audit over the pinned requirements files, with one honest exception.

pip-audit asks an advisory service (PyPI's JSON API) about each pin. Where that service cannot be
reached — no network, or a package mirror that serves packages but not the JSON API — pip-audit
either fails to connect or reports every pin as "not found on PyPI" and, with nothing audited,
"No known vulnerabilities found". Neither is a clean audit. This wrapper tells the cases apart:

- vulnerabilities found: exit 1, listing them;
- every pin unanswered (connection error, or not-found for all of them): the advisory service is
  unreachable; say so plainly (NOT AUDITED) and exit 0, as DESIGN section 11 allows;
- some pins audited, some not found: exit 1 naming the unaudited pins (a real package the service
  does not know is a pin to look at, not something to pass silently);
- everything audited and clean: exit 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess  # runs pip-audit, a fixed program with fixed arguments  # nosec B404
import sys
from typing import Any

NOT_FOUND = "not found on PyPI"
UNREACHABLE_MARKS = ("ConnectionError", "Max retries exceeded", "NameResolutionError", "timed out")


def classify(report: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """(vulnerable ``name==version: ids``, unaudited names, audited names) of a pip-audit JSON
    report. An unaudited name carries its reason unless it is the service's "not found"."""
    vulnerable, unaudited, audited = [], [], []
    for dep in report.get("dependencies", []):
        name = str(dep.get("name"))
        reason = str(dep.get("skip_reason") or "")
        if reason:
            unaudited.append(name if NOT_FOUND in reason else f"{name} ({reason})")
            continue
        audited.append(name)
        ids = [str(v.get("id")) for v in dep.get("vulns", [])]
        if ids:
            vulnerable.append(f"{name}=={dep.get('version')}: {', '.join(ids)}")
    return vulnerable, unaudited, audited


def verdict(returncode: int, stdout: str, stderr: str) -> tuple[int, str]:
    """The exit code and the one-paragraph summary for a pip-audit run."""
    try:
        report = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        report = None
    if report is None:
        if any(mark in stderr for mark in UNREACHABLE_MARKS):
            return 0, "pip-audit: NOT AUDITED — the advisory service is unreachable (connection failed)."
        return 1, f"pip-audit failed (exit {returncode}):\n{stderr.strip()[-2000:]}"
    vulnerable, unaudited, audited = classify(report)
    if vulnerable:
        return 1, "pip-audit: known vulnerabilities:\n  " + "\n  ".join(vulnerable)
    if not audited and unaudited and all("(" not in name for name in unaudited):
        return 0, (
            f"pip-audit: NOT AUDITED — the advisory service is unreachable: it answered none of the "
            f"{len(unaudited)} pins (each 'not found'), so no vulnerability data was available."
        )
    if unaudited or not audited:
        return (
            1,
            f"pip-audit: {len(audited)} pins clean, but not audited: {', '.join(sorted(unaudited)) or 'none listed'}",
        )
    return 0, f"pip-audit: {len(audited)} pins audited, no known vulnerabilities."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pip-audit", default="pip-audit", help="the pip-audit executable")
    parser.add_argument("requirements", nargs="+", help="pinned requirements files")
    args = parser.parse_args(argv)
    worst = 0
    for path in args.requirements:
        # One run per file: the scanners' own set pins other versions than the product's.
        command = [args.pip_audit, "--no-deps", "--disable-pip", "--progress-spinner", "off", "-f", "json"]
        done = subprocess.run(  # a fixed program and arguments, no shell  # nosec B603
            [*command, "-r", path], capture_output=True, text=True, check=False
        )
        code, summary = verdict(done.returncode, done.stdout, done.stderr)
        print(f"{path}: {summary}")
        worst = max(worst, code)
    return worst


if __name__ == "__main__":
    sys.exit(main())
