"""The sample events in events/ (for `sam local invoke` where a container runtime exists) stay
valid: each matches a route of template.yaml and reaches its handler's route."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orcapulse_local.template import http_routes
from tests.support.deployment import TEMPLATE

EVENTS = sorted((Path(__file__).resolve().parents[2] / "events").glob("*.json"))


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.name)
def test_sample_event_matches_a_template_route(path):
    event = json.loads(path.read_text())
    assert event["version"] == "2.0"
    method, route = event["routeKey"].split(" ", 1)
    assert (method, route) in {(r.method, r.path) for r in http_routes(TEMPLATE)}
    claims = event["requestContext"].get("authorizer", {}).get("jwt", {}).get("claims")
    authorized = {(r.method, r.path): r.authorized for r in http_routes(TEMPLATE)}[(method, route)]
    assert bool(claims) == authorized


def test_every_route_has_a_sample_event():
    routes = {(r.method, r.path) for r in http_routes(TEMPLATE)}
    covered = {tuple(json.loads(p.read_text())["routeKey"].split(" ", 1)) for p in EVENTS}
    assert routes <= covered
