"""Reads ``template.yaml`` so that tests and the local stack take tables, environment and routes
from the template itself: the template stays the single source of truth.

cfn-lint's decoder reads the template (short-form tags become their long form); SAM's own Globals
plugin merges ``Globals`` into each function. What is left here is resolving the intrinsic
functions this template uses (Ref, Sub, GetAtt, Join, If and the conditions) against a deployment
:class:`Context`."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import decode
from samtranslator.plugins.globals.globals import Globals

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template at ``path`` as plain data, intrinsic functions in their long form."""
    template, problems = decode(str(path))
    if problems or not isinstance(template, dict):
        raise ValueError(f"{path.name} is not a readable template: {'; '.join(str(p) for p in problems)}")
    return template


@dataclass
class Context:
    """What the template's references resolve to in a local or test deployment."""

    parameters: dict[str, str] = field(default_factory=dict)
    # logical id → {"Ref": physical id, "Arn": ..., "StreamArn": ..., "QueueName": ...}
    resources: dict[str, dict[str, str]] = field(default_factory=dict)
    region: str = "us-east-1"
    account_id: str = "123456789012"
    conditions: dict[str, Any] = field(default_factory=dict)

    def pseudo(self, name: str) -> str | None:
        """The value of a pseudo parameter (``AWS::Region``...); None for any other name."""
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "orcapulse-tiktok-local",
        }.get(name)


def parameter_defaults(template: dict[str, Any]) -> dict[str, str]:
    """Every parameter's ``Default``, as a string."""
    return {k: str(v["Default"]) for k, v in template.get("Parameters", {}).items() if "Default" in v}


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
            return re.sub(r"\$\{([^}!]+)\}", lambda m: str(_sub_var(m.group(1), extra, ctx)), text)
        if key == "Fn::Join":
            return arg[0].join(str(p) for p in resolve(arg[1], ctx))
        if key == "Fn::If":
            return resolve(arg[1] if _condition(ctx.conditions[arg[0]], ctx) else arg[2], ctx)
    return {k: resolve(v, ctx) for k, v in value.items()}


def _ref(name: str, ctx: Context) -> Any:
    if name.startswith("AWS::"):
        return ctx.pseudo(name)  # AWS::NoValue is None: the caller leaves the property out
    return ctx.parameters[name] if name in ctx.parameters else ctx.resources[name]["Ref"]


def _sub_var(name: str, extra: dict[str, Any], ctx: Context) -> Any:
    if name in extra:
        return extra[name]
    if "." in name and not name.startswith("AWS::"):
        logical, attr = name.split(".", 1)
        return ctx.resources[logical][attr]
    return _ref(name, ctx)


def _condition(spec: Any, ctx: Context) -> Any:
    if isinstance(spec, dict) and len(spec) == 1:
        ((key, arg),) = spec.items()
        if key == "Fn::Not":
            return not _condition(arg[0], ctx)
        if key == "Fn::Equals":
            return resolve(arg[0], ctx) == resolve(arg[1], ctx)
        if key in ("Fn::And", "Fn::Or"):
            return (all if key == "Fn::And" else any)(_condition(x, ctx) for x in arg)
        if key == "Condition":
            return _condition(ctx.conditions[arg], ctx)
    return resolve(spec, ctx)


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """The template's resources of type ``kind``, by logical id."""
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
    if props.get("LocalSecondaryIndexes"):
        kwargs["LocalSecondaryIndexes"] = [
            {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
            for i in props["LocalSecondaryIndexes"]
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
            api = props["ApiId"].get("Ref") if isinstance(props.get("ApiId"), dict) else None
            authorizer = props.get("Auth", {}).get("Authorizer")
            authorized = api_auth.get(api or "", False) if authorizer is None else authorizer != "NONE"
            routes.append(Route(props["Method"].upper(), props["Path"], logical, authorized))
    return routes


def function_spec(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """A function's properties merged over ``Globals.Function`` by SAM's own rules."""
    properties = copy.deepcopy(template["Resources"][logical_id]["Properties"])
    merged: dict[str, Any] = Globals(template).merge("AWS::Serverless::Function", properties, logical_id)
    return merged


def function_environment(template: dict[str, Any], logical_id: str, ctx: Context) -> dict[str, str]:
    """A function's environment variables, resolved for ``ctx``."""
    env = resolve(function_spec(template, logical_id).get("Environment", {}).get("Variables", {}), ctx)
    return {k: str(v) for k, v in env.items() if v is not None}


# The physical name property of each data resource, and the attributes GetAtt may ask for.
_NAMED = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Events::EventBus": "Name",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::S3::Bucket": "BucketName",
}
_ARN = {
    "AWS::DynamoDB::Table": "dynamodb:{region}:{account}:table/{name}",
    "AWS::Events::EventBus": "events:{region}:{account}:event-bus/{name}",
    "AWS::SQS::Queue": "sqs:{region}:{account}:{name}",
    "AWS::S3::Bucket": "s3:::{name}",
}


def deployment_context(template: dict[str, Any], parameters: dict[str, str], **kw: Any) -> Context:
    """Physical names for every table, bus, queue, secret and bucket, as CloudFormation would name them."""
    ctx = Context(parameters={**parameter_defaults(template), **parameters}, **kw)
    ctx.conditions = dict(template.get("Conditions", {}))
    for logical, spec in template["Resources"].items():
        kind = spec["Type"]
        if kind not in _NAMED:
            ctx.resources[logical] = {
                "Ref": logical,
                "Arn": f"arn:aws:local:{ctx.region}:{ctx.account_id}:{logical}",
            }
            continue
        name = str(resolve(spec["Properties"][_NAMED[kind]], ctx))
        arn = (
            f"arn:aws:{_ARN[kind]}".format(region=ctx.region, account=ctx.account_id, name=name)
            if kind in _ARN
            else name
        )
        ctx.resources[logical] = {"Ref": name, "Arn": arn, _NAMED[kind]: name, "Name": name}
        if kind == "AWS::DynamoDB::Table":
            ctx.resources[logical]["StreamArn"] = f"{arn}/stream/local"
    return ctx
