"""Every handler imports from the built artifact exactly as Lambda loads it — a fresh python3.12
whose path holds only the function's code, the layer and the packages the runtime provides — and
imports only what its routes need.

Reads ``.aws-sam/build`` (``make test`` builds it before running pytest)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.artifact import LAYER, RUNTIME_PACKAGES, Function, functions
from bench.coldstart import loaded_modules

pytestmark = pytest.mark.skipif(
    not LAYER.is_dir(), reason="no build in .aws-sam/build: run `make build` (make test does)"
)

# What a handler must not load at cold start because none of its routes uses it. requests is
# for calling TikTok; pydantic backs request validation (enable_validation), which only the
# user-facing routes with typed query parameters use.
MUST_NOT_LOAD = {
    "webhook": {"requests", "pydantic", "pydantic_core"},
    "lead_publisher": {"requests", "pydantic", "pydantic_core"},
    "oauth_start": {"requests"},
    "oauth_callback": {"pydantic", "pydantic_core"},
    "disconnect": {"pydantic", "pydantic_core"},
    "token_refresh": {"pydantic", "pydantic_core"},
    "business_catchup": {"pydantic", "pydantic_core"},
    "lead_update": {"requests"},
    "lead_decisions": {"requests"},
}

# Every request of these calls TikTok: the client is loaded while the container initialises, not
# on the first request (and the cold-import figures of `make bench` stay honest).
MUST_LOAD = {"oauth_callback": {"requests"}, "disconnect": {"requests"}}


@pytest.fixture(scope="module")
def imports() -> dict[str, dict[str, str]]:
    """Module name → origin for each function's cold import, one fresh interpreter per function."""
    found = functions()
    assert found, "no functions in template.yaml"

    def probe(function: Function) -> tuple[str, dict[str, str]]:
        return function.name, loaded_modules(function)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(probe, found))


def _top_level(modules: dict[str, str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_every_handler_imports_from_the_artifact_alone(imports):
    for name, modules in imports.items():
        assert "app" in modules, name
        assert modules["app"] == "function", name
        # The domain package resolves from the layer, not from the repository.
        assert modules["orcapulse_tiktok"] == "layer", name


def test_the_aws_sdk_comes_from_the_runtime_never_the_layer(imports):
    sdk = {"boto3", "botocore", "s3transfer"}
    for name, modules in imports.items():
        from_layer = {m for m, origin in modules.items() if m.split(".")[0] in sdk and origin == "layer"}
        assert not from_layer, f"{name} loads {sorted(from_layer)[:3]} from the layer"
        runtime = {m for m, origin in modules.items() if origin == "runtime"}
        assert {m.split(".")[0] for m in runtime} <= set(RUNTIME_PACKAGES), name


@pytest.mark.parametrize(("function", "forbidden"), sorted(MUST_NOT_LOAD.items()))
def test_handler_loads_only_what_its_routes_need(imports, function, forbidden):
    assert function in imports, f"{function} is not in template.yaml: update MUST_NOT_LOAD"
    loaded = _top_level(imports[function]) & forbidden
    assert not loaded, f"{function} loads {sorted(loaded)} at cold start"


@pytest.mark.parametrize(("function", "needed"), sorted(MUST_LOAD.items()))
def test_handler_loads_at_init_what_every_request_needs(imports, function, needed):
    assert needed <= _top_level(imports[function])


def test_no_handler_loads_powertools_utilities_it_does_not_use(imports):
    # Heavy optional utilities: a handler that imports one by accident pays for it on every cold start.
    unused = ("parser", "idempotency", "feature_flags", "validation", "data_masking", "streaming", "kafka")
    prefix = "aws_lambda_powertools.utilities."
    for name, modules in imports.items():
        bad = sorted(m for m in modules if m.startswith(prefix) and m.split(".")[2] in unused)
        assert not bad, f"{name} loads {bad[:3]}"


def test_no_handler_imports_boto3_at_cold_start(imports):
    # Our clients come from botocore (orcapulse_tiktok/data/clients.py); boto3's session and resource layer
    # cost about 30 ms of every cold import. Powertools' parameters load it on first use only.
    for name, modules in imports.items():
        assert "boto3" not in _top_level(modules), f"{name} imports boto3 at cold start"
