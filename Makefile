# Every target runs from a fresh clone: `make dev` builds .venv, the rest use it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PG_BINDIR ?= $(shell pg_config --bindir 2>/dev/null)

.PHONY: dev lint fmt test unit integration demo bench soak clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=25.1"

dev: $(PY)
	$(PY) -m pip install --quiet --editable . --group dev

lint:
	$(VENV)/bin/ruff format --check --diff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pylint --output-format=colorized src install.py

fmt:
	$(VENV)/bin/ruff format
	$(VENV)/bin/ruff check . --fix
	$(VENV)/bin/mypy
	$(VENV)/bin/pylint src install.py

unit:
	$(PY) -m pytest -n 2 --durations 10 tests/unit

integration:
	$(PY) -m pytest --durations 20 tests/integration

# The README's test command: lint, types, unit and integration tests (real PostgreSQL, fake workspace).
test: lint
	$(PY) -m pytest -n 2 --durations 25 tests

# A rotation against an embedded fake workspace and a throwaway PostgreSQL, then a psql login with it.
demo:
	$(PY) -m databricks.labs.oauth_rotator.testing.demo

bench:
	$(PY) -m pip install --quiet --editable '.[bench]'
	$(PY) bench/run.py

soak:
	$(PY) -m pytest tests/reliability/test_soak.py --soak -s

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist
