# Two commands do all set-up: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DISTRICT ?= 小店区
HOST ?= 127.0.0.1
PORT ?= 8000

APT_RUN  := libsqlite3-mod-spatialite
APT_TEST := $(APT_RUN) postgresql-15-postgis-3 chromium chromium-driver fonts-noto-cjk

.PHONY: run test install install-test assets lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || (scripts/apt.sh python3-venv && $(PYTHON) -m venv $(VENV))
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[test,dev]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
	scripts/apt.sh $(APT_RUN)

install-test: $(VENV)/.installed-test
	scripts/apt.sh $(APT_TEST)

assets:
	@if [ -f package-lock.json ]; then \
	  command -v npm >/dev/null || scripts/apt.sh nodejs npm; \
	  [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error; \
	fi

## Serve the bundled district (built and cached on first use) at http://$(HOST):$(PORT)/
## (no SMS gateway locally: sign-in codes are written to the log, unless the environment says no)
run: install assets
	PRACTICE_CIRCLE_SIGNIN_LOG_CODES=$${PRACTICE_CIRCLE_SIGNIN_LOG_CODES:-true} \
	  $(BIN)/practice-circle serve --district $(DISTRICT) --host $(HOST) --port $(PORT)

## Install everything the tests need (apt packages included) and run them all
test: install-test assets
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: install-test
	$(BIN)/ruff check . && $(BIN)/mypy

bench: install-test assets
	for b in benchmarks/bench_*.py; do echo "== $$b"; \
	  PRACTICE_CIRCLE_RATE_LIMIT_ENABLED=false $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache var artifacts
