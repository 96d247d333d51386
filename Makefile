# Cargobay: `make run` starts the server on the embedded default; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CACHE ?= $(CURDIR)/.cache
export CARGOBAY_CACHE_DIR ?= $(CACHE)

.PHONY: install install-test peers peers-test run test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'

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
PYTEST_PARALLEL ?= -n auto --maxprocesses 4 --dist loadfile

test: install-test peers-test
	$(BIN)/pytest tests $(PYTEST_PARALLEL) $(PYTEST_ARGS)

test-fast: install-test
	$(BIN)/pytest tests -m "not slow" $(PYTEST_PARALLEL) $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: install-test peers
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info
