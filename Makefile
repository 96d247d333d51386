# Cargobay: `make run` starts the server on the embedded default; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CACHE ?= $(CURDIR)/.cache
export CARGOBAY_CACHE_DIR ?= $(CACHE)

.PHONY: venv install install-test peers peers-test run test test-fast screenshots lint bench clean

# Dependencies install at the versions in constraints.txt, so a fresh clone gets what the suite passed with.
PIP := $(BIN)/python -m pip
PIP_INSTALL := $(PIP) install -q -c constraints.txt

# A venv left half-made (an interrupted first run: no working python or pip) is made again.
venv:
	@if ! $(BIN)/python -m pip --version >/dev/null 2>&1; then \
		rm -rf $(VENV) && $(PYTHON) -m venv $(VENV) && $(PIP) install -q --upgrade pip; \
	fi

# An editable install leaves src/ without bytecode, and where PYTHONDONTWRITEBYTECODE is set nothing
# writes it: every `cargobay` command would compile ~120 modules (~0.4 s) at each start.
install: venv
	$(PIP_INSTALL) -e .
	$(BIN)/python -m compileall -q src >/dev/null

install-test: venv
	$(PIP_INSTALL) -e '.[test]'
	$(BIN)/python -m compileall -q src >/dev/null

# Everything: the test peers plus the reference registry v3.1.1 the benchmarks compare against.
peers:
	bash scripts/install-peers.sh

# What the test suite runs against (skips the two-minute build of the reference registry v3).
peers-test:
	bash scripts/install-peers.sh --tests

run: install
	$(BIN)/cargobay serve

# One pytest worker per core (at most 4); each worker takes a whole file at a time, so a module-scoped
# server starts once. PYTEST_PARALLEL= runs everything in one process.
PYTEST_PARALLEL ?= -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder

test: install-test peers-test
	$(BIN)/pytest tests $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# The console's pictures in docs/screenshots, remade by its browser tests.
screenshots: install-test peers-test
	CARGOBAY_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest tests/browser $(PYTEST_PARALLEL)

test-fast: install-test
	$(BIN)/pytest tests -m "not slow" $(PYTEST_PARALLEL) $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install-test peers
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info
