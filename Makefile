# Cargobay: `make run` starts the server on the embedded default; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CACHE ?= $(CURDIR)/.cache
export CARGOBAY_CACHE_DIR ?= $(CACHE)

.PHONY: install install-test peers run test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'

peers:
	bash scripts/install-peers.sh

run: install
	$(BIN)/cargobay serve

test: install-test peers
	$(BIN)/pytest tests $(PYTEST_ARGS)

test-fast: install-test
	$(BIN)/pytest tests -m "not slow" $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: install-test peers
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info
