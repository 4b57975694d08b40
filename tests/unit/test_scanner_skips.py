"""Every scanner finding the project does not fix is skipped where it lives, with its reason: a
Checkov skip in the resource's Metadata carries a one-line comment, and a Bandit ``nosec`` names
its test and follows the reason it is safe (``# <reason>  # nosec BXXX``)."""

from __future__ import annotations

import re
from pathlib import Path

from orcapulse_local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("layers", "functions", "orcapulse_local", "scripts")
NOSEC = re.compile(r"#\s*nosec\b(?P<tests>[^#]*)$")


def test_every_checkov_skip_names_a_check_and_gives_a_reason():
    skips = 0
    for logical, spec in load_template()["Resources"].items():
        for skip in (spec.get("Metadata") or {}).get("checkov", {}).get("skip", []):
            skips += 1
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (logical, skip)
            comment = skip.get("comment", "")
            assert len(comment) >= 20, (logical, skip["id"])
            assert "\n" not in comment, (logical, skip["id"])
    assert skips > 0


def test_every_nosec_names_its_test_and_follows_a_reason():
    found = 0
    for folder in SCANNED:
        for path in (ROOT / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                match = NOSEC.search(line)
                if not match:
                    continue
                found += 1
                where = f"{path.relative_to(ROOT)}:{number}"
                assert re.fullmatch(r"\s*B\d{3}(,\s*B\d{3})*\s*", match["tests"]), where
                before = line[: match.start()]
                assert "#" in before, where
                assert len(before.rsplit("#", 1)[1].strip()) >= 10, where
    assert found > 0
