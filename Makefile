# rasterdrop: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON_BOOTSTRAP ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
# Node 20 is what this machine has; jsii still runs on it (aws-cdk-lib synth is tested).
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: setup test test-future lint unit demo serve token synth bench clean doctor bootstrap-model smoke

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt batch_image/requirements.txt constraints.txt client/pyproject.toml
	test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

unit: setup
	$(PY) -m pytest -n 2 --dist loadgroup -q

test: lint unit

# the whole suite with the wall clock a year ahead (no test may depend on today's date)
test-future: setup
	RASTERDROP_TEST_CLOCK_OFFSET_DAYS=365 $(PY) -m pytest -n 2 --dist loadgroup -q -p no:cacheprovider

demo: setup
	$(PY) -m sandbox demo --out demo-out

# the whole flow plus the tenants' API on this machine; prints RASTERDROP_API_URL/TOKEN
serve: setup
	$(PY) -m sandbox serve

# tenants' API tokens of the deployed stack: make token ARGS="issue acme" | "list" | "revoke ID"
token: setup
	PYTHONPATH=handlers $(PY) -m rasterdrop_api.admin $(if $(STACK),--stack $(STACK)) $(ARGS)

synth: setup
	CDK_OUTDIR=cdk.out $(PY) app.py

# Against the AWS account and region of your credentials (AWS_PROFILE, AWS_REGION); CDK=-c k=v
doctor: setup
	$(PY) -m ops doctor $(CDK)

bootstrap-model: setup
	$(PY) -m ops bootstrap-model $(if $(MODEL),--model $(MODEL)) $(CDK)

smoke: setup
	$(PY) -m ops smoke $(CDK)

bench: setup
	$(PY) -m pip install --quiet -r bench/requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps --upgrade --target bench/work/peer \
	  -r bench/requirements-peer.txt -c constraints.txt \
	  || echo "bench: pyspatialml did not install; it will be reported as null"
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf cdk.out demo-out serve-out .pytest_cache .ruff_cache bench/work
