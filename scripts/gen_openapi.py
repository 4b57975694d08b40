"""Generate the social-leads API's OpenAPI document (docs/openapi.json) from the resolvers of the
functions that serve it (leads_query: the reads; lead_update: PATCH; lead_merge and lead_erase):
their routes, typed parameters, request bodies and documented response models, in one document.

    make openapi                         # rewrite docs/openapi.json
    PYTHONPATH=.:layers/common python scripts/gen_openapi.py --check   # fail if it drifted

The resolver maps request-validation errors to 400 with the project's error shape, so the 422
response Powertools documents by default is dropped, with the schemas only it referenced."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "openapi.json"
HANDLERS = ("leads_query", "lead_update", "lead_merge", "lead_erase")
TITLE = "OrcaPulse social leads API"
DESCRIPTION = (
    "Social leads (read, and changed through their lifecycle), integrations and platform "
    "configuration of the caller's workspace. Every route "
    "needs a user JWT whose workspace claim scopes all reads; another workspace's objects answer 404. "
    'Errors are `{"error": {"code", "message"}}` with a stable code.'
)
_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")


def _load_resolver(function: str) -> Any:
    name = f"openapi_{function}_app"
    handler = ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(name, handler)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {handler}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        return module.app
    finally:
        sys.modules.pop(name, None)


def _version() -> str:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return str(tomllib.load(fh)["project"]["version"])


def document() -> dict[str, Any]:
    """The OpenAPI document of the social-leads API, as a JSON-ready dict."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    doc: dict[str, Any] = {}
    for function in HANDLERS:
        part = _schema(_load_resolver(function), HTTPBearer)
        if not doc:
            doc = part
            continue
        for path, item in part["paths"].items():
            doc["paths"].setdefault(path, {}).update(item)
        doc["components"]["schemas"].update(part.get("components", {}).get("schemas", {}))
    for path in doc["paths"].values():
        for operation in path.values():
            operation["responses"].pop("422", None)
            # A 204 has no body, whatever the handler's return annotation made Powertools infer.
            operation["responses"].get("204", {}).pop("content", None)
    text = json.dumps(doc["paths"])
    schemas = doc.get("components", {}).get("schemas", {})
    for name in _VALIDATION_SCHEMAS:
        if f"#/components/schemas/{name}" not in text:
            schemas.pop(name, None)
    return doc


def _schema(app: Any, bearer: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=_version(),
            description=DESCRIPTION,
            security_schemes={
                "UserJwt": bearer(
                    bearerFormat="JWT",
                    description="The HTTP API's JWT authorizer; `sub` is the user, the workspace claim the workspace",
                )
            },
            security=[{"UserJwt": []}],
        )
    )
    return doc


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/openapi.json is out of date")
    args = parser.parse_args(argv)
    text = render(document())
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run `make openapi`", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
