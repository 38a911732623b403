# The targets CI runs (.ci/run calls `make check`); each works from a fresh clone after `make install`.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Every code directory that exists and holds Python (benchmarks/ may still be empty).
TYPED := $(foreach dir,domain streams connectors storage api observability baylink tests benchmarks,\
	$(if $(shell find $(dir) -name '*.py' -print -quit 2>/dev/null),$(dir)))

.PHONY: venv install constraints lint typecheck imports test check phoenix-check up demo

venv: $(BIN)/python

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when the project's dependencies change. The versions are those of
# constraints.txt, which `make check` last passed with: a new release of a dependency cannot
# turn CI red until `make constraints` takes it in.
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# The newest versions pyproject.toml allows, installed into a scratch environment and written
# to constraints.txt; run `make check` (after `rm -rf .venv`) before committing the result.
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/python -m pip install --quiet --upgrade pip
	.venv-constraints/bin/python -m pip install --quiet -e '.[dev]'
	head -n 3 constraints.txt > constraints.txt.new
	.venv-constraints/bin/python -m pip freeze --exclude-editable >> constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .venv-constraints

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# --explicit-package-bases: tests/ has no __init__.py, so module names come from the path
# (tests.support.services, tests.unit.runtime.test_ports) and equal basenames cannot clash.
typecheck: install
	$(BIN)/mypy --strict --explicit-package-bases $(TYPED)

imports: install
	$(BIN)/lint-imports

# Any non-zero pytest status fails the target, including 5 (no tests collected).
test: install
	$(BIN)/python -m pytest -q --durations=25

check: lint typecheck imports test

# One record's trace, read back from Arize Phoenix (an OTLP receiver installed from PyPI into
# ~/.cache/baylink/phoenix on first use), over OTLP/HTTP and OTLP/gRPC.
phoenix-check: install
	$(BIN)/python tests/external/phoenix_check.py --protocol http/protobuf
	$(BIN)/python tests/external/phoenix_check.py --protocol grpc

# The whole platform on one machine: embedded broker, SQLite, local object store, API.
up: install
	$(BIN)/baylink up

# The same, fed with sample data for three regions; prints queries to try.
demo: install
	$(BIN)/baylink demo
