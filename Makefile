# Every target creates .venv when missing and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck imports bench bench-quick chaos clean install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/samband demo --output demo-output

lint: $(STAMP)
	$(BIN)/ruff check src tests bench docs/build_readme.py
	$(BIN)/ruff format --check src tests bench docs/build_readme.py

typecheck: $(STAMP)
	$(BIN)/mypy

# the layering contracts of [tool.importlinter] in pyproject.toml
imports: $(STAMP)
	$(BIN)/lint-imports

test: lint typecheck imports
	$(BIN)/python -m pytest -n 2 --dist loadgroup tests

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(VENV)/.bench-installed

bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench

bench-quick: $(VENV)/.bench-installed
	$(BIN)/python -m bench --quick

chaos: $(STAMP)
	$(BIN)/python -m pytest tests/chaos --chaos-long -p no:xdist
	SAMBAND_CONVERGENCE_SCALE=10 $(BIN)/python -m pytest -n 2 tests/test_engine_convergence.py tests/test_sql_tracking.py -k convergence

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
