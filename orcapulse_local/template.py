"""Reads ``template.yaml`` so that tests and the local stack take tables, environment and routes
from the template itself: the template stays the single source of truth.

Only the intrinsic functions the template uses are resolved (Ref, Sub, GetAtt, If, Not, Equals,
Select, Join, Split, ImportValue is not supported)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short-form tags into their long form."""


def _construct(tag: str):  # type: ignore[no-untyped-def]
    name = "Ref" if tag == "Ref" else f"Fn::{tag}"

    def build(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    return build


for _tag in (
    "Ref",
    "Sub",
    "GetAtt",
    "If",
    "Not",
    "Equals",
    "Select",
    "Join",
    "Split",
    "And",
    "Or",
    "Condition",
):
    _CfnLoader.add_constructor(f"!{_tag}", _construct(_tag))


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        template = yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(template, dict):
        raise ValueError(f"{path.name} is not a template (a YAML mapping)")
    return template


@dataclass
class Context:
    """What the template's references resolve to in a local or test deployment."""

    parameters: dict[str, str] = field(default_factory=dict)
    # logical id → {"Ref": physical id, "Arn": ..., "StreamArn": ..., "QueueName": ...}
    resources: dict[str, dict[str, str]] = field(default_factory=dict)
    region: str = "us-east-1"
    account_id: str = "123456789012"

    def pseudo(self, name: str) -> str | None:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "orcapulse-tiktok-local",
            "AWS::NoValue": None,  # type: ignore[dict-item]
        }.get(name)


def parameter_defaults(template: dict[str, Any]) -> dict[str, str]:
    return {
        name: str(spec["Default"])
        for name, spec in template.get("Parameters", {}).items()
        if "Default" in spec
    }


def resolve(value: Any, ctx: Context) -> Any:
    """Resolve intrinsic functions in ``value`` against ``ctx``."""
    if isinstance(value, list):
        return [resolve(v, ctx) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return _ref(arg, ctx)
        if key == "Fn::GetAtt":
            logical, attr = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return ctx.resources[logical][attr]
        if key == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], resolve(arg[1], ctx))
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(_sub_var(m.group(1), extra, ctx)), text)
        if key == "Fn::Join":
            sep, parts = arg
            return sep.join(str(p) for p in resolve(parts, ctx))
        if key == "Fn::If":
            cond, yes, no = arg
            return resolve(yes if _condition(cond, ctx) else no, ctx)
    return {k: resolve(v, ctx) for k, v in value.items()}


def _ref(name: str, ctx: Context) -> Any:
    pseudo = ctx.pseudo(name)
    if pseudo is not None or name == "AWS::NoValue":
        return pseudo
    if name in ctx.parameters:
        return ctx.parameters[name]
    return ctx.resources[name]["Ref"]


def _sub_var(name: str, extra: dict[str, Any], ctx: Context) -> Any:
    if name in extra:
        return extra[name]
    if "." in name:
        logical, attr = name.split(".", 1)
        return ctx.resources[logical][attr]
    return _ref(name, ctx)


_CONDITIONS: dict[str, Any] = {}


def _condition(name: str, ctx: Context) -> bool:
    spec = load_template()["Conditions"][name]
    return bool(_eval_condition(spec, ctx))


def _eval_condition(spec: Any, ctx: Context) -> Any:
    if isinstance(spec, dict) and len(spec) == 1:
        ((key, arg),) = spec.items()
        if key == "Fn::Not":
            return not _eval_condition(arg[0], ctx)
        if key == "Fn::Equals":
            a, b = (resolve(x, ctx) for x in arg)
            return a == b
        if key == "Fn::And":
            return all(_eval_condition(x, ctx) for x in arg)
        if key == "Fn::Or":
            return any(_eval_condition(x, ctx) for x in arg)
        if key == "Condition":
            return _condition(arg, ctx)
    return resolve(spec, ctx)


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v.get("Type") == kind}


def create_table_kwargs(properties: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """boto3 ``create_table`` arguments from an ``AWS::DynamoDB::Table``'s properties."""
    props = resolve(properties, ctx)
    kwargs: dict[str, Any] = {
        "TableName": props["TableName"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = [
            {"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": g["Projection"]}
            for g in props["GlobalSecondaryIndexes"]
        ]
    if props.get("StreamSpecification"):
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    return kwargs


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # e.g. /integrations/tiktok/{integration_id}
    function: str  # logical id
    authorized: bool


def http_routes(template: dict[str, Any]) -> list[Route]:
    """Every HttpApi event of every function, with whether the JWT authorizer guards it."""
    api_auth = {
        logical: bool(spec["Properties"].get("Auth", {}).get("DefaultAuthorizer"))
        for logical, spec in resources_of_type(template, "AWS::Serverless::HttpApi").items()
    }
    routes = []
    for logical, spec in resources_of_type(template, "AWS::Serverless::Function").items():
        for event in spec["Properties"].get("Events", {}).values():
            if event.get("Type") != "HttpApi":
                continue
            props = event["Properties"]
            api = props.get("ApiId", {}).get("Ref") if isinstance(props.get("ApiId"), dict) else None
            default_auth = api_auth.get(api or "", False)
            authorizer = props.get("Auth", {}).get("Authorizer")
            authorized = default_auth if authorizer is None else authorizer != "NONE"
            routes.append(Route(props["Method"].upper(), props["Path"], logical, authorized))
    return routes


def function_spec(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """A function's properties merged over ``Globals.Function`` (environment merged key by key)."""
    glob = template.get("Globals", {}).get("Function", {})
    props = template["Resources"][logical_id]["Properties"]
    merged = {**glob, **props}
    env = {
        **glob.get("Environment", {}).get("Variables", {}),
        **props.get("Environment", {}).get("Variables", {}),
    }
    merged["Environment"] = {"Variables": env}
    return merged


def function_environment(template: dict[str, Any], logical_id: str, ctx: Context) -> dict[str, str]:
    env = resolve(function_spec(template, logical_id)["Environment"]["Variables"], ctx)
    return {k: str(v) for k, v in env.items() if v is not None}


def deployment_context(template: dict[str, Any], parameters: dict[str, str], **kw: Any) -> Context:
    """Physical names for every table, bus, queue and secret, as CloudFormation would name them."""
    ctx = Context(parameters={**parameter_defaults(template), **parameters}, **kw)
    arn = f"arn:aws:{{svc}}:{ctx.region}:{ctx.account_id}:{{rest}}"
    for logical, spec in template["Resources"].items():
        kind, props = spec["Type"], spec.get("Properties", {})
        if kind == "AWS::DynamoDB::Table":
            name = resolve(props["TableName"], ctx)
            table_arn = arn.format(svc="dynamodb", rest=f"table/{name}")
            ctx.resources[logical] = {"Ref": name, "Arn": table_arn, "StreamArn": f"{table_arn}/stream/local"}
        elif kind == "AWS::Events::EventBus":
            name = resolve(props["Name"], ctx)
            ctx.resources[logical] = {
                "Ref": name,
                "Arn": arn.format(svc="events", rest=f"event-bus/{name}"),
                "Name": name,
            }
        elif kind == "AWS::SQS::Queue":
            name = resolve(props["QueueName"], ctx)
            ctx.resources[logical] = {"Ref": name, "Arn": arn.format(svc="sqs", rest=name), "QueueName": name}
        elif kind == "AWS::SecretsManager::Secret":
            name = resolve(props["Name"], ctx)
            ctx.resources[logical] = {"Ref": name, "Arn": name, "Name": name}
        else:
            ctx.resources[logical] = {"Ref": logical, "Arn": arn.format(svc="local", rest=logical)}
    return ctx
