# OrcaPulse TikTok channel — every entry point a developer or CI needs.
# `make test` and `make local` do all their own set-up on a fresh machine.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# Two package sets in one virtualenv: what the local stack needs to run (make local), and the
# development tools on top of it (make test). Each has its own stamp.
LOCAL_STAMP := $(VENV)/.installed-local
STAMP := $(VENV)/.installed
# Offline-safe defaults for tools that would otherwise look for an AWS account or phone home.
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv venv-local test lint typecheck template security replay build unit browser local token webhook demo bench load faults openapi migrate-leads register-webhooks clean

help:
	@echo "make local   run the whole product on this machine (no AWS, no Docker)"
	@echo "make test    lint, type-check, validate and build the template, run the tests"
	@echo "make demo    drive the connect → lead → disconnect story against the local stack"
	@echo "make token   print a dev JWT for the local API [WORKSPACE=ws-local USER=user-local]"
	@echo "make webhook send a signed TikTok event to the local stack [EVENT=comment|dm|high_intent|removed OPEN_ID= TEXT= AUTHOR=]"
	@echo "make bench   cold-start, round-trip and paging benchmark (writes bench/results.json)"
	@echo "make openapi regenerate docs/openapi.json from the read API's handler"
	@echo "make register-webhooks URL= SECRET_ID=  point the TikTok API for Business app's webhooks at URL"
	@echo "make register-webhooks   (no URL) the same against the running local stack's emulator"
	@echo "make security Checkov over the template, Bandit over the code, pip-audit over the pins"
	@echo "make replay  run kept webhook deliveries again: IDS= | SINCE= [UNTIL=] | QUARANTINED=1 [LOCAL=1 | FUNCTION=]"
	@echo "make faults  the full fault matrix: every outside call of each path failed every way, as a table"
	@echo "make migrate-leads  per-event leads of the old table → people (docs/leads-storage.md) SOURCE_TABLE= CHECKPOINT= [RATE=50]"
	@echo "make load    2,000 signed deliveries (comments, DMs, business, 100-entry lead forms), 20% duplicates, 16 senders [DELIVERIES=]"

# The layer's own pins are installed alongside, so the functions get exactly those (pip refuses when
# requirements-local.txt disagrees with them); likewise the development set must agree with the local one.
$(LOCAL_STAMP): requirements-local.txt layers/common/requirements.txt
	@test -x $(PY) || $$(scripts/find-python312) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check \
	  -r requirements-local.txt -r layers/common/requirements.txt
	touch $(LOCAL_STAMP)

$(STAMP): requirements-dev.txt $(LOCAL_STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check \
	  -r requirements-dev.txt -c requirements-local.txt
	touch $(STAMP)

venv-local: $(LOCAL_STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Everything that runs is type-checked, in one mypy run: the layer, the functions and what drives
# them. Each function is a module named `app`; with explicit_package_bases (pyproject.toml) it is
# functions.<name>.app, so the functions no longer collide and need no process each.
typecheck: $(STAMP)
	$(BIN)/mypy layers/common/orcapulse_tiktok functions bench tests orcapulse_local

# The security scanners live in their own virtualenv (requirements-security.in says why).
TOOLS_VENV ?= .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
$(TOOLS_STAMP): requirements-security.txt
	@test -x $(TOOLS_VENV)/bin/python || $$(scripts/find-python312) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-security.txt
	touch $(TOOLS_STAMP)

# Checkov: no finding that is not skipped inline with its reason; Bandit: none without a reasoned
# nosec; pip-audit over every pinned set (passes unaudited only when the advisory service is
# unreachable, and says so). docs/operations.md, "Scanners", has the counts and every reason.
security: $(TOOLS_STAMP)
	$(TOOLS_VENV)/bin/checkov --file template.yaml --framework cloudformation --skip-download --quiet --compact
	$(TOOLS_VENV)/bin/bandit --quiet --recursive layers functions orcapulse_local scripts
	$(TOOLS_VENV)/bin/python scripts/audit_requirements.py --pip-audit $(TOOLS_VENV)/bin/pip-audit \
	  requirements-dev.txt layers/common/requirements.txt requirements-security.txt

template: $(STAMP)
	$(BIN)/cfn-lint template.yaml
	PATH="$(abspath $(BIN)):$$PATH" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
	  $(BIN)/sam validate --lint --template-file template.yaml

build: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/sam build --template-file template.yaml

# On every core (pytest-xdist); tests sharing a package- or module-scoped fixture (a local stack)
# stay on one worker (tests/conftest.py). TEST_WORKERS=0 runs in this process, as bare pytest does.
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
unit: $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup

# The end-to-end console test drives Debian's Chromium with Playwright (whose wheel ships its
# driver; no browser is ever downloaded). make test requires it instead of skipping it.
browser:
	@test -x /usr/bin/chromium || { $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium >/dev/null; }

test: export ORCAPULSE_REQUIRE_BROWSER := 1
test: lint typecheck template security build browser unit

# The local stack (docs/local.md): moto, the TikTok emulator and the template's functions behind a
# local HTTP gateway, in the foreground until Ctrl-C. Ports: LOCAL_API_PORT, LOCAL_TIKTOK_PORT,
# LOCAL_AWS_PORT (3000, 3001, 3002). Installs only requirements-local.txt, not the test tools.
local: $(LOCAL_STAMP)
	$(PY) -m orcapulse_local serve

# USER is in everyone's environment: only a USER given on the command line names the token's user.
token: $(LOCAL_STAMP)
	@$(PY) -m orcapulse_local token \
	  $(if $(filter command line,$(origin WORKSPACE)),--workspace "$$WORKSPACE") \
	  $(if $(filter command line,$(origin USER)),--user "$$USER")

webhook: $(LOCAL_STAMP)
	@$(PY) -m orcapulse_local webhook --event "$${EVENT:-comment}" --open-id "$$OPEN_ID" --text "$$TEXT" --author "$$AUTHOR"

demo: $(LOCAL_STAMP)
	$(PY) -m orcapulse_local demo

# Measures the built artifact (.aws-sam/build); the in-process scenarios import the layer's
# package from layers/common, as the tests do.
bench: build
	PYTHONPATH=layers/common $(PY) -m bench.run

# The read API's OpenAPI document, generated from functions/leads_query (a unit test fails when
# the committed file drifts from the code).
# Business accounts (docs/business-accounts.md): register the deployed webhook URL with the TikTok API
# for Business app, for DIRECT_MESSAGE and COMMENT. Uses your AWS credentials; safe to run again.
# Without URL it registers the running local stack's webhook URL with the TikTok emulator.
register-webhooks: $(LOCAL_STAMP)
	$(if $(URL),PYTHONPATH=.:layers/common $(PY) scripts/register_webhooks.py --url "$(URL)" $(if $(SECRET_ID),--secret-id "$(SECRET_ID)"),$(PY) -m orcapulse_local register-webhooks)

openapi: $(STAMP)
	PYTHONPATH=.:layers/common $(PY) scripts/gen_openapi.py

# Every outside call (AWS, TikTok) of connect, disconnect, webhook, token refresh, lead merge and
# erasure made to fail
# with every fault kind that applies; make test runs each call once, with one kind, rotating.
faults: $(STAMP)
	ORCAPULSE_FAULTS=full $(BIN)/pytest tests/faults

# A bounded load test on 127.0.0.1 with a local stack of its own (make test sends 200); it stops by
# itself and exits non-zero unless every person is one lead holding exactly their unique events,
# announced once (and once per later interaction), with no 5xx.
load: $(LOCAL_STAMP)
	$(PY) -m orcapulse_local.load $(if $(DELIVERIES),--deliveries $(DELIVERIES))

# Kept webhook deliveries through the same code again (docs/operations.md, "Replay"): by ids, by
# arrival time, or every quarantined one; LOCAL=1 against `make local`, FUNCTION= a deployed
# webhook function (its environment, your AWS credentials). Idempotent: safe to repeat.
replay: $(LOCAL_STAMP)
	@test -n "$(IDS)$(SINCE)$(QUARANTINED)" || { echo "usage: make replay IDS=<id,id> | SINCE=<ISO> [UNTIL=<ISO>] | QUARANTINED=1  [LOCAL=1 | FUNCTION=<name>] [DRY_RUN=1]"; exit 2; }
	PYTHONPATH=.:layers/common $(PY) scripts/replay_deliveries.py \
	  $(if $(IDS),--ids "$(IDS)") $(if $(SINCE),--since "$(SINCE)") $(if $(UNTIL),--until "$(UNTIL)") \
	  $(if $(QUARANTINED),--quarantined) $(if $(LOCAL),--local) $(if $(FUNCTION),--function "$(FUNCTION)") \
	  $(if $(DRY_RUN),--dry-run)

# Per-event leads of the old table → people and interactions in the new one, resumable from
# CHECKPOINT (docs/leads-storage.md, "Migrating"). The new stack's LEADS_TABLE and
# PERSON_KEY_SECRET_ID come from the environment, with AWS credentials for its account.
migrate-leads: $(LOCAL_STAMP)
	@test -n "$(SOURCE_TABLE)" -a -n "$(CHECKPOINT)" || { echo "usage: make migrate-leads SOURCE_TABLE=<old table> CHECKPOINT=<file> [RATE=50]"; exit 2; }
	PYTHONPATH=.:layers/common $(PY) scripts/migrate_leads.py --source-table "$(SOURCE_TABLE)" \
	  --checkpoint "$(CHECKPOINT)" --max-per-second "$(or $(RATE),50)"

clean:
	rm -rf .aws-sam bench/results.json .pytest_cache .mypy_cache .ruff_cache
