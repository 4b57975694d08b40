"""Shared fixtures: moto for AWS (tables created from template.yaml), TikTok faked at the HTTP
boundary, handlers imported from their own folders, and a log capture that fails any test whose
logs contain a token, a code or the client secret."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import botocore.session
import pytest
import responses
from moto import mock_aws

from orcapulse_local.ads_state import AdsState
from orcapulse_local.tiktok_state import TikTokState
from tests.faults import report as fault_report
from tests.support import aws_calls
from tests.support.ads_fake import AdsFake
from tests.support.business_fake import BusinessFake, BusinessState
from tests.support.deployment import CONTEXT, table_kwargs
from tests.support.events import LambdaContext
from tests.support.functions import Functions
from tests.support.tiktok_fake import TikTokFake

# Before any test creates an AWS client, so that every client is one the interceptor sees.
aws_calls.install()


def reset_process_caches() -> None:
    """Forget everything a warm container keeps, so each test starts cold."""
    from aws_lambda_powertools.utilities import parameters
    from orcapulse_tiktok.config import get_settings
    from orcapulse_tiktok.data import clients as aws
    from orcapulse_tiktok.models.delivery import Delivery
    from orcapulse_tiktok.models.integration import Integration
    from orcapulse_tiktok.models.lead import Lead
    from orcapulse_tiktok.models.oauth_state import OAuthState
    from orcapulse_tiktok.tiktok.business_client import reset_business_client
    from orcapulse_tiktok.tiktok.client import reset_client

    get_settings.cache_clear()
    aws.reset_clients()
    reset_client()
    reset_business_client()
    parameters.clear_caches()
    for model in (Integration, Lead, OAuthState, Delivery):
        model._connection = None


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture
def tiktok_state() -> TikTokState:
    state = TikTokState()
    state.add_account("open-id-alpha", display_name="Alpha Shop")
    state.add_account("open-id-beta", display_name="Beta Store")
    return state


@pytest.fixture
def business_state(tiktok_state: TikTokState) -> BusinessState:
    """The TikTok API for Business app; what it issues is checked by the same log-leak guards."""
    state = BusinessState(issued=tiktok_state.issued)
    state.add_account("biz-open-id-orca", username="orca_shop")
    return state


@pytest.fixture
def business(business_state: BusinessState, tiktok: TikTokFake) -> BusinessFake:
    """The Business API, faked on the same ``responses`` mock as Login Kit."""
    return BusinessFake(business_state, tiktok.mock)


@pytest.fixture
def personal_data() -> list[str]:
    """People's data a test hands the product (emails, phones, form answers): the log check below
    fails the test if any of it appears in a log line, as it does for tokens."""
    return []


@pytest.fixture
def ads_state(business_state: BusinessState, personal_data: list[str]) -> AdsState:
    """The Marketing API (lead forms) of the same Business app; its tokens and codes go to the
    token leak checks, the emails, phones and answers of its leads to ``personal_data``'s."""
    return AdsState(
        app_id=business_state.app_id,
        secret=business_state.secret,
        issued=business_state.issued,
        personal=personal_data,
    )


@pytest.fixture
def ads(ads_state: AdsState, tiktok: TikTokFake) -> AdsFake:
    """The Marketing API, faked on the same ``responses`` mock as Login Kit."""
    return AdsFake(ads_state, tiktok.mock)


@pytest.fixture
def tiktok(tiktok_state: TikTokState, aws: AwsEnv) -> Iterator[TikTokFake]:
    # After `aws`: moto routes through `responses` too, and the TikTok routes must sit on top.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield TikTokFake(tiktok_state, mock)


@dataclass
class AwsEnv:
    app_secret_id: str
    event_bus: str
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> Any:
        # Creating a botocore client costs tens of milliseconds; assertions make many calls.
        if service not in self._clients:
            # By name, as the product's data package creates its clients (boto3's typed overloads
            # want a literal service name).
            self._clients[service] = botocore.session.get_session().create_client(
                service, region_name="us-east-1"
            )
        return self._clients[service]

    def items(self, logical_table: str) -> list[dict[str, Any]]:
        """Every item of a table (a Scan: for assertions only, never in product code)."""
        ddb = self.client("dynamodb")
        name = CONTEXT.resources[logical_table]["Ref"]
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": name}
        while True:
            page = ddb.scan(**kwargs)
            out.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def bodies(self) -> dict[str, bytes]:
        """Every object of the delivery archive's bucket (``DeliveryBodiesBucket``), by key."""
        s3 = self.client("s3")
        bucket = CONTEXT.resources["DeliveryBodiesBucket"]["Ref"]
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}

    def token_secrets(self) -> dict[str, dict[str, Any]]:
        sm = self.client("secretsmanager")
        prefix = CONTEXT.resources["TikTokAppSecret"]["Ref"].rsplit("/", 1)[0] + "/tokens/"
        names = [s["Name"] for s in sm.list_secrets()["SecretList"] if s["Name"].startswith(prefix)]
        return {
            n.removeprefix(prefix): json.loads(sm.get_secret_value(SecretId=n)["SecretString"]) for n in names
        }


@contextlib.contextmanager
def aws_environment(tiktok_state: TikTokState, business: BusinessState | None = None) -> Iterator[AwsEnv]:
    """moto with the template's tables and bucket, the app secrets holding ``tiktok_state``'s (and
    the Business app's) credentials, the cursor key and the leads bus; process caches reset on the
    way in and out."""
    with mock_aws():
        reset_process_caches()
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        for kwargs in table_kwargs():
            ddb.create_table(**kwargs)
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        app_secret = CONTEXT.resources["TikTokAppSecret"]["Ref"]
        sm.create_secret(
            Name=app_secret,
            SecretString=json.dumps(
                {"client_key": tiktok_state.client_key, "client_secret": tiktok_state.client_secret}
            ),
        )
        business = business or BusinessState(issued=tiktok_state.issued)
        sm.create_secret(
            Name=CONTEXT.resources["TikTokBusinessAppSecret"]["Ref"],
            SecretString=json.dumps({"app_id": business.app_id, "secret": business.secret}),
        )
        sm.create_secret(Name=CONTEXT.resources["CursorKeySecret"]["Ref"], SecretString="k" * 64)
        sm.create_secret(Name=CONTEXT.resources["PersonKeySecret"]["Ref"], SecretString="p" * 64)
        bus = CONTEXT.resources["LeadsEventBus"]["Ref"]
        boto3.client("events", region_name="us-east-1").create_event_bus(Name=bus)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=CONTEXT.resources["DeliveryBodiesBucket"]["Ref"])
        try:
            yield AwsEnv(app_secret_id=app_secret, event_bus=bus)
        finally:
            reset_process_caches()


@pytest.fixture
def aws(tiktok_state: TikTokState, business_state: BusinessState) -> Iterator[AwsEnv]:
    with aws_environment(tiktok_state, business_state) as env:
        yield env


@pytest.fixture
def load_function() -> Iterator[Callable[[str], ModuleType]]:
    """Import ``functions/<name>/app.py`` afresh under a module name of its own; unload it
    afterwards, so the functions' ``app`` modules never collide in one pytest process."""
    functions = Functions("function", reuse=False)
    yield functions
    functions.close()


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(autouse=True)
def logs(tiktok_state: TikTokState, personal_data: list[str]) -> Iterator[list[str]]:
    """Every JSON log line the product writes during the test; afterwards, none may contain a
    secret the fake TikTok issued (codes, tokens), the app's client secret, or any of the people's
    data (emails, phones, form answers) the test handed the product."""
    from orcapulse_tiktok.observability import logger

    handler = _ListHandler()
    handler.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger._logger.removeHandler(handler)
    text = "\n".join(handler.lines)
    leaked = [s for s in [*tiktok_state.issued, tiktok_state.client_secret] if s in text]
    assert not leaked, f"{len(leaked)} secret value(s) appear in the logs"
    exposed = [s for s in personal_data if s in text]
    assert not exposed, f"{len(exposed)} value(s) of people's data appear in the logs"


_SECRET_CHARS = re.compile(r"[A-Za-z0-9_.~-]+")


@dataclass
class SuiteLogs:
    """Every log line of the whole run — the product's loggers, anything reaching the root logger,
    and the function logs of every local stack — and every secret any TikTok model handed out."""

    lines: list[str] = field(default_factory=list)
    states: list[TikTokState] = field(default_factory=list)

    def secrets(self) -> set[str]:
        out: set[str] = set()
        for state in self.states:
            out.update(state.issued)
            out.add(state.client_secret)
        return out


@pytest.fixture(scope="session", autouse=True)
def suite_logs() -> Iterator[SuiteLogs]:
    """Whatever a single test's check misses (logs written by fixtures, by other scopes, by the
    local stacks' functions): at the end of the run no token, code, OAuth state or client secret
    any fake TikTok issued may appear in any line logged during the whole suite."""
    from orcapulse_tiktok.observability import logger

    from orcapulse_local.stack import LocalStack
    from orcapulse_local.tiktok_emulator import TikTokEmulator

    captured = SuiteLogs()
    handler = _ListHandler()
    handler.lines = captured.lines
    handler.setFormatter(logger.registered_formatter)
    patches = pytest.MonkeyPatch()
    real_init = TikTokState.__init__
    real_log = LocalStack._log
    real_decide = TikTokEmulator.decide

    def init(self: TikTokState, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        captured.states.append(self)

    def log(self: LocalStack, source: str, line: str) -> None:
        captured.lines.append(line)
        real_log(self, source, line)

    def decide(self: TikTokEmulator, form: list[tuple[str, str]]) -> str:
        # The OAuth state passes the emulator's consent page: it must not reach a log either.
        state = dict(form).get("state")
        if state:
            self.state.issued.append(state)
        return real_decide(self, form)

    patches.setattr(TikTokState, "__init__", init)
    patches.setattr(LocalStack, "_log", log)
    patches.setattr(TikTokEmulator, "decide", decide)
    logger._logger.addHandler(handler)
    logging.getLogger().addHandler(handler)
    try:
        yield captured
    finally:
        logging.getLogger().removeHandler(handler)
        logger._logger.removeHandler(handler)
        patches.undo()
    # Every secret is a run of URL-safe characters, so splitting the logs into such runs finds it
    # wherever it was written whole (a JSON value, a header, a query string) in one set lookup.
    words = set(_SECRET_CHARS.findall("\n".join(captured.lines)))
    leaked = captured.secrets() & words
    assert not leaked, f"{len(leaked)} issued secret(s) appear in logs written during the suite"


# -- running in parallel (make unit: pytest -n <cores> --dist loadgroup) -------------------------------
def shared_scope(item: pytest.Item) -> str | None:
    """The widest fixture wider than one test (and narrower than the session) that ``item`` uses, as
    ``"<scope>:<where>"`` — the package for a package-scoped fixture (a local stack), the module for a
    module-scoped one — or None when the test shares nothing with others but the session."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    shared = None
    for name in info.names_closure:
        definitions = info.name2fixturedefs.get(name)
        scope = definitions[-1].scope if definitions else "function"
        if scope == "package":
            return f"package:{definitions[-1].baseid or '.'}"
        if scope == "module":
            shared = f"module:{item.nodeid.split('::')[0]}"
    return shared


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist's ``--dist loadgroup`` the tests that share a package- or module-scoped
    fixture (the local stacks of tests/local, tests/contract and tests/load with their browser and
    subprocesses; test_imports' cold imports, test_hot_partitions' burst...) form one group and run
    on one worker, one after the other: each shared fixture is built once, not once per worker, and
    a stack is stopped (its threads gone) before that worker mocks AWS in-process again. Every other
    test goes to whichever worker is free; each worker has its own session fixtures, moto and
    environment, in its own process."""
    for item in items:
        group = shared_scope(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    if hasattr(config, "workerinput"):
        # A test of minutes handed out last would run alone at the end: hand those out first.
        items.sort(key=lambda item: item.get_closest_marker("heavy") is None)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    fault_report.collect(report)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fault matrix's summary line (and its table under ``make faults``), here because this
    conftest is the one the xdist controller loads."""
    fault_report.summary(terminalreporter)
