"""docs/THREATS.md names the tests that prove each mitigation: every one it names must exist, so
the document cannot quietly point at a test that was renamed or removed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?")


def test_every_test_the_threat_model_names_exists():
    text = (ROOT / "docs" / "THREATS.md").read_text(encoding="utf-8")
    references = REFERENCE.findall(text)
    assert len(references) >= 30
    for path, name in references:
        source = ROOT / path
        assert source.is_file(), path
        if name:
            assert re.search(rf"^def {name}\(", source.read_text(encoding="utf-8"), re.MULTILINE), (
                f"{path}::{name}"
            )


def test_every_threat_has_a_mitigation_and_a_test():
    text = (ROOT / "docs" / "THREATS.md").read_text(encoding="utf-8")
    sections = re.split(r"^## \d+\. ", text, flags=re.MULTILINE)[1:]
    assert len(sections) >= 10
    for section in sections:
        title = section.splitlines()[0]
        assert "**Mitigation.**" in section, title
        assert "**Tests.**" in section, title
        assert REFERENCE.search(section.split("**Tests.**", 1)[1]), title
