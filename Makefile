# OrcaPulse TikTok channel — every entry point a developer or CI needs.
# `make test` and `make local` do all their own set-up on a fresh machine.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Offline-safe defaults for tools that would otherwise look for an AWS account or phone home.
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv test lint typecheck template build unit local token webhook demo bench load clean

help:
	@echo "make local   run the whole product on this machine (no AWS, no Docker)"
	@echo "make test    lint, type-check, validate and build the template, run the tests"
	@echo "make demo    drive the connect → lead → disconnect story against the local stack"
	@echo "make bench   cold-start, round-trip and paging benchmark (writes bench/results.json)"

$(STAMP): requirements-dev.txt layers/common/requirements.txt
	@test -x $(PY) || $$(scripts/find-python312) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy layers/common/orcapulse_tiktok

template: $(STAMP)
	$(BIN)/cfn-lint template.yaml
	PATH="$(abspath $(BIN)):$$PATH" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
	  $(BIN)/sam validate --lint --template-file template.yaml

build: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/sam build --template-file template.yaml

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck template build unit

clean:
	rm -rf .aws-sam bench/results.json .pytest_cache .mypy_cache .ruff_cache
