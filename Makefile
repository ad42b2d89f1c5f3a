# Aurora: `make up` starts the stack, `make test` runs every test, `make down` stops the stack.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up down test smoke-e2e status install system-deps bench lint lock clean

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || scripts/ensure-system-deps.sh --python
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

system-deps:
	@scripts/ensure-system-deps.sh

up: install
	@scripts/ensure-system-deps.sh --best-effort
	@scripts/curl-globoff.sh
	@$(BIN)/aurora init
	@$(BIN)/aurora up

down:
	@if [ -x $(BIN)/aurora ]; then $(BIN)/aurora down; else echo "nothing to stop (no .venv)"; fi

status: install
	@$(BIN)/aurora status

smoke-e2e: install
	@$(BIN)/aurora smoke

# lint first, so that CI (make test on a fresh machine) keeps ruff and mypy clean;
# AURORA_REQUIRE_TOOLS=1: a missing system tool fails its tests instead of skipping them
test: system-deps lint
	@AURORA_REQUIRE_TOOLS=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install system-deps
	@$(BIN)/python benchmarks/run_all.py

lint: install
	@$(BIN)/ruff check src tests benchmarks scripts
	@$(BIN)/mypy

lock: install
	@$(BIN)/python -m pip freeze --exclude-editable | { printf '%s\n' \
	  '# Exact versions of every dependency, direct and transitive (pip freeze of .venv).' \
	  '# Regenerate after changing pyproject.toml: make lock'; cat; } > requirements.lock

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
