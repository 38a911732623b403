# The targets CI runs (.ci/run calls `make check`); each works from a fresh clone after `make install`.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Every code directory that exists and holds Python (benchmarks/ may still be empty).
TYPED := $(foreach dir,domain streams connectors storage api observability baylink tests benchmarks,\
	$(if $(shell find $(dir) -name '*.py' -print -quit 2>/dev/null),$(dir)))

.PHONY: venv install lint typecheck imports test check up demo

venv: $(BIN)/python

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: venv
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# --explicit-package-bases: tests/ has no __init__.py, so module names come from the path
# (tests.support.services, tests.unit.runtime.test_ports) and equal basenames cannot clash.
typecheck:
	$(BIN)/mypy --strict --explicit-package-bases $(TYPED)

imports:
	$(BIN)/lint-imports

# Any non-zero pytest status fails the target, including 5 (no tests collected).
test:
	$(BIN)/python -m pytest -q

check: lint typecheck imports test

up:
	$(BIN)/baylink up

# A throwaway runtime in var/demo, started clean each time.
demo:
	rm -rf var/demo
	$(BIN)/baylink up --data-dir var/demo
