# SAM / CloudFormation lint and build. Included by the main Makefile (`include mk/lint.mk`).
#
#   make lint-sam      cfn-lint + `sam validate --lint` (offline), and checkov when .venv-checkov exists
#   make lint-checkov  installs checkov into its own venv (it pins an older boto3 than SAM) and runs it
#   make sam-build     `sam build` with a python3.12 first on PATH; prints and checks the unzipped sizes
#
# SAM CLI and cfn-lint live in their own venv: they pin boto3/click and would downgrade the dev venv.

# Keep the includer's default goal (this fragment defines no default target of its own).
_LINT_MK_DEFAULT_GOAL := $(.DEFAULT_GOAL)

SAM_BOOTSTRAP_PYTHON ?= python3
SAM_VENV       ?= .venv-sam
SAM            ?= $(SAM_VENV)/bin/sam
CFN_LINT       ?= $(SAM_VENV)/bin/cfn-lint
SAM_TEMPLATE   ?= template.yaml
SAM_REGION     ?= eu-west-1
# `sam build` for runtime python3.12 needs a python3.12 on PATH (DESIGN §6).
PY312          ?= /root/.pyenv/versions/3.12.1/bin/python3.12
PY312_BIN      := $(patsubst %/,%,$(dir $(PY312)))
SAM_BUILD_DIR  ?= .aws-sam/build
# Lambda: function code + all its layers must stay below 250 MB unzipped.
LAMBDA_UNZIPPED_LIMIT_BYTES := 262144000
# CoreLayer's own budget (tastebud_training.layer_lock.LAYER_BUDGET_BYTES): headroom for function code below the limit.
LAYER_BUDGET_BYTES := 230000000
# Every function of template.yaml (each one uses CoreLayer).
SAM_FUNCTIONS  ?= RecommendFunction StockFunction IngestFunction IndexTaskFunction ControlTaskFunction

CHECKOV_VENV    ?= .venv-checkov
CHECKOV_VERSION ?= 3.3.30
CHECKOV         ?= $(CHECKOV_VENV)/bin/checkov
CHECKOV_CMD      = $(CHECKOV) -f $(SAM_TEMPLATE) --framework cloudformation --quiet --compact --skip-download

# Never phone home (telemetry / update checks), which would only time out here; checkov likewise
# runs with --skip-download (else it retries a Prisma Cloud guidelines download for ~40 s, then goes on).
SAM_ENV := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$(SAM_REGION)

$(SAM_VENV)/.installed: requirements/sam.txt
	$(SAM_BOOTSTRAP_PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q --upgrade pip
	$(SAM_VENV)/bin/pip install -q -r requirements/sam.txt
	touch $@

$(CHECKOV_VENV)/.installed:
	$(SAM_BOOTSTRAP_PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/pip install -q checkov==$(CHECKOV_VERSION)
	touch $@

ASL_VALIDATOR  ?= node_modules/.bin/asl-validator
ASL_FILES      ?= $(wildcard statemachines/*.asl.json)

node_modules/.installed: package.json
	npm install --no-audit --no-fund --silent
	touch $@

.PHONY: lint-sam lint-checkov sam-build lint-sam-graph lint-asl

lint-sam: $(SAM_VENV)/.installed lint-sam-graph lint-asl  ## cfn-lint + sam validate --lint + cycles + ASL (+ checkov)
	$(CFN_LINT) $(SAM_TEMPLATE)
	$(SAM_ENV) $(SAM) validate --lint --template-file $(SAM_TEMPLATE)
	@if [ -x $(CHECKOV) ]; then echo "$(CHECKOV_CMD)"; $(CHECKOV_CMD); \
	else echo "lint-sam: checkov skipped ($(CHECKOV) absent; 'make lint-checkov' installs and runs it)"; fi

# cfn-lint lints BEFORE the SAM transform; a cycle that only the transform creates (inline function policies
# become <Function>Role policies) needs samtranslator's own transform + a Ref/GetAtt/Sub/DependsOn graph.
lint-sam-graph: $(SAM_VENV)/.installed  ## circular dependencies after the SAM transform (scripts/sam_graph.py)
	$(SAM_VENV)/bin/python scripts/sam_graph.py $(SAM_TEMPLATE)

# cfn-lint does not check ASL; asl-validator (npm, pinned in package.json) checks schema and state targets.
# `${...}` DefinitionSubstitutions appear only inside string values, so the raw files are valid JSON.
lint-asl: node_modules/.installed  ## asl-validator on statemachines/*.asl.json
	$(ASL_VALIDATOR) $(foreach f,$(ASL_FILES),--json-path $(f))

lint-checkov: $(CHECKOV_VENV)/.installed  ## install checkov in .venv-checkov and scan template.yaml
	$(CHECKOV_CMD)

sam-build: $(SAM_VENV)/.installed $(BIN)/.installed  ## sam build (CoreLayer from its lock); checks the 250 MB unzipped limit
	@test -x $(PY312) || { echo "sam-build: $(PY312) not found (set PY312=/path/to/python3.12)"; exit 1; }
	@start=$$(date +%s); \
	LAYER_PYTHON=$(abspath $(BIN)/python) PATH="$(PY312_BIN):$$PATH" $(SAM_ENV) $(SAM) build --template-file $(SAM_TEMPLATE) --build-dir $(SAM_BUILD_DIR) \
		|| exit 1; \
	echo "sam-build: built in $$(( $$(date +%s) - start )) s"
	@layer=$$(du -sb $(SAM_BUILD_DIR)/CoreLayer | cut -f1); status=0; \
	echo "sam-build: CoreLayer $$((layer / 1000000)) MB unzipped (budget $$(( $(LAYER_BUDGET_BYTES) / 1000000 )) MB; Lambda's limit $$(( $(LAMBDA_UNZIPPED_LIMIT_BYTES) / 1000000 )) MB per function + layers)"; \
	if [ $$layer -gt $(LAYER_BUDGET_BYTES) ]; then echo "sam-build: CoreLayer over its budget"; status=1; fi; \
	for fn in $(SAM_FUNCTIONS); do \
		size=$$(du -sb $(SAM_BUILD_DIR)/$$fn | cut -f1); total=$$((layer + size)); \
		echo "sam-build: $$fn $$((size / 1024)) KiB + CoreLayer = $$((total / 1000000)) MB"; \
		if [ $$total -ge $(LAMBDA_UNZIPPED_LIMIT_BYTES) ]; then echo "sam-build: $$fn over the Lambda unzipped limit"; status=1; fi; \
	done; exit $$status

.PHONY: layer-lock
layer-lock: $(BIN)/.installed  ## re-resolve layers/core/requirements.txt for Lambda python3.12 into requirements-lambda.lock
	$(BIN)/python -m tastebud_training.layer_lock lock

# The SageMaker SDK (2.x) in its own venv: it pins rich/protobuf/packaging below the dev venv's pins.
SAGEMAKER_VENV ?= .venv-sagemaker
SAGEMAKER_JOBS_DIR ?= build/sagemaker

$(SAGEMAKER_VENV)/.installed: requirements/sagemaker-sdk.txt
	$(SAM_BOOTSTRAP_PYTHON) -m venv $(SAGEMAKER_VENV)
	$(SAGEMAKER_VENV)/bin/pip install -q --upgrade pip
	$(SAGEMAKER_VENV)/bin/pip install -q -r requirements/sagemaker-sdk.txt
	touch $@

.PHONY: sagemaker-jobs
# make sagemaker-jobs REGION=eu-west-1 BUCKET=<ArtifactsBucket> ROLE=<TrainingJobRoleArn>, then upload (DEPLOY.md):
#   aws s3 cp build/sagemaker/sourcedir.tar.gz s3://$BUCKET/training/code/sourcedir.tar.gz
#   aws s3 cp training/tastebud_training/etl/spark_etl.py s3://$BUCKET/training/code/spark_etl.py
#   aws s3 cp build/sagemaker/jobs.json s3://$BUCKET/training/jobs.json      (last: it names the code)
sagemaker-jobs: $(SAGEMAKER_VENV)/.installed  ## SDK-rendered SageMaker job requests (jobs.json) + sourcedir.tar.gz
	@test -n "$(REGION)" -a -n "$(BUCKET)" -a -n "$(ROLE)" || { echo "sagemaker-jobs: set REGION, BUCKET and ROLE"; exit 1; }
	mkdir -p $(SAGEMAKER_JOBS_DIR)
	SAGEMAKER_SUPPRESS_V2_WARNING=1 PYTHONPATH=training:layers/core $(SAGEMAKER_VENV)/bin/python -m tastebud_training.sagemaker_jobs \
		--region $(REGION) --bucket $(BUCKET) --role $(ROLE) --out $(SAGEMAKER_JOBS_DIR)/jobs.json \
		--source-tar $(SAGEMAKER_JOBS_DIR)/sourcedir.tar.gz

.DEFAULT_GOAL := $(_LINT_MK_DEFAULT_GOAL)
