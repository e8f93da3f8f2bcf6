# Every target creates .venv when missing and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck imports docs bench bench-quick chaos clean install

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
	$(BIN)/ruff check src tests bench docs/*.py
	$(BIN)/ruff format --check src tests bench docs/*.py

typecheck: $(STAMP)
	$(BIN)/mypy

# the layering contracts of [tool.importlinter] in pyproject.toml
imports: $(STAMP)
	$(BIN)/lint-imports

# The site: docs/hooks.py regenerates docs/reference/ (CLI and configuration) first.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The suite checks that the committed references are current before the strict build
# (which would rewrite them); a broken link or a page left out of the nav fails it.
test: lint typecheck imports
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=25 tests
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir $(VENV)/site-check

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(VENV)/.bench-installed

bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench

bench-quick: $(VENV)/.bench-installed
	$(BIN)/python -m bench --quick

chaos: $(STAMP)
	$(BIN)/python -m pytest tests/chaos --chaos-long -p no:xdist
	SAMBAND_CONVERGENCE_SCALE=10 $(BIN)/python -m pytest -n 2 tests/engine/test_convergence.py tests/kinds/sql/test_tracking.py -k convergence

clean:
	rm -rf $(VENV) demo-output site .pytest_cache .mypy_cache .ruff_cache
