"""scripts/audit_requirements.py: pip-audit passes only on a real clean audit, or when the advisory
service is unreachable and the output says so."""

from __future__ import annotations

import json

from scripts.audit_requirements import verdict


def _report(*deps: dict[str, object]) -> str:
    return json.dumps({"dependencies": list(deps), "fixes": []})


def _found(name: str, *ids: str) -> dict[str, object]:
    return {"name": name, "version": "1.0", "vulns": [{"id": i, "fix_versions": []} for i in ids]}


def _missing(name: str) -> dict[str, object]:
    return {
        "name": name,
        "skip_reason": f"Dependency not found on PyPI and could not be audited: {name} (1.0)",
    }


def test_a_clean_audit_passes():
    code, summary = verdict(0, _report(_found("requests"), _found("boto3")), "")
    assert code == 0
    assert "2 pins audited" in summary


def test_a_vulnerability_fails_and_is_named():
    code, summary = verdict(1, _report(_found("requests", "PYSEC-2099-1"), _found("boto3")), "")
    assert code == 1
    assert "requests==1.0: PYSEC-2099-1" in summary


def test_a_service_that_answers_no_pin_is_unreachable_and_passes_saying_so():
    """A mirror without PyPI's JSON API: every pin is "not found" and pip-audit itself says "No
    known vulnerabilities found" — the wrapper says NOT AUDITED instead."""
    code, summary = verdict(0, _report(_missing("requests"), _missing("boto3")), "")
    assert code == 0
    assert "NOT AUDITED" in summary
    assert "unreachable" in summary


def test_a_connection_failure_is_unreachable_and_passes_saying_so():
    stderr = "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='pypi.org'): Max retries exceeded"
    code, summary = verdict(1, "", stderr)
    assert code == 0
    assert "NOT AUDITED" in summary


def test_a_partial_answer_fails_naming_the_unaudited_pins():
    code, summary = verdict(0, _report(_found("requests"), _missing("not-on-pypi")), "")
    assert code == 1
    assert "not-on-pypi" in summary


def test_any_other_failure_fails():
    code, summary = verdict(2, "", "ERROR: package boto3 has duplicate requirements")
    assert code == 1
    assert "duplicate requirements" in summary


def test_an_unaudited_pin_for_another_reason_fails():
    dep: dict[str, object] = {"name": "local-pkg", "skip_reason": "Dependency is editable"}
    code, summary = verdict(0, _report(dep), "")
    assert code == 1
    assert "editable" in summary
