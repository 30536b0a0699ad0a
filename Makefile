# Every target runs from a fresh clone: `make dev` builds .venv, the rest use it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PG_BINDIR ?= $(shell pg_config --bindir 2>/dev/null)
# The oldest databricks-sdk pyproject.toml allows (its `>=` bound); .venv has the newest it allows.
SDK_OLDEST ?= $(shell sed -n 's/^ *"databricks-sdk>=\([0-9.]*\),.*/\1/p' pyproject.toml)
VENV_OLDEST := .venv-sdk-oldest
PY_OLDEST := $(VENV_OLDEST)/bin/python
# pgAdmin's own password exec module, for tests/integration/test_pgadmin_passexec.py: a 126 MB wheel with fifty pinned
# dependencies, so a virtual environment of its own rather than a dev dependency.
PGADMIN_VERSION ?= 9.18
VENV_PGADMIN := .venv-pgadmin
PY_PGADMIN := $(VENV_PGADMIN)/bin/python
SDK_VERSION = -c "from databricks.sdk.version import __version__; print('databricks-sdk', __version__)"

.PHONY: dev lint kubernetes-validate fmt test unit integration integration-sdk-oldest demo bench soak reliability-report clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=25.1"

# Naming databricks-sdk with --upgrade moves an existing .venv to the newest SDK allowed, as a fresh one gets.
dev: $(PY)
	$(PY) -m pip install --quiet --upgrade --editable . --group dev databricks-sdk
	@$(PY) $(SDK_VERSION)

$(PY_PGADMIN):
	$(PYTHON) -m venv $(VENV_PGADMIN)
	$(PY_PGADMIN) -m pip install --quiet "pgadmin4==$(PGADMIN_VERSION)"

$(PY_OLDEST):
	$(PYTHON) -m venv $(VENV_OLDEST)
	$(PY_OLDEST) -m pip install --quiet --upgrade "pip>=25.1"

lint:
	$(VENV)/bin/ruff format --check --diff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pylint --output-format=colorized src install.py
	PYTHONPATH=src $(VENV)/bin/lint-imports
	$(MAKE) kubernetes-validate

# deploy/kubernetes/ against the Kubernetes schemas kubernetes-validate bundles (offline), unknown fields refused.
# 1.33: native sidecars (restartPolicy on an init container) are GA there; tests/integration/test_kubernetes.py too.
kubernetes-validate:
	$(VENV)/bin/kubernetes-validate --quiet --strict --kubernetes-version 1.33.0 deploy/kubernetes/*.yaml

fmt:
	$(VENV)/bin/ruff format
	$(VENV)/bin/ruff check . --fix
	$(VENV)/bin/mypy
	$(VENV)/bin/pylint src install.py

unit:
	$(PY) -m pytest -n 2 --dist worksteal --durations 10 tests/unit

integration:
	$(PY) -m pytest --durations 20 tests/integration

# The integration tests (and the SDK signature checks) in a second venv with the same editable install and the
# oldest supported SDK. What an older SDK can change is the login (every auth type), the Lakebase calls, retries and
# timeouts: the modules below test something else (the pgbouncer front, the HTTP endpoints, manifests, the sandbox
# patch, the wheel, pgAdmin, the .pgpass file, other local users, target picking) and reach the SDK only the way the
# rotation tests do, so they run once, on the newest SDK.
SDK_AGNOSTIC := kubernetes sandbox pgbouncer front_hostile lifecycle_front http_abuse sidecar pgadmin_passexec \
	platform_semantics pgpass_concurrency pgpass_psql wheel hostile_neighbour password_neighbour password_pick
integration-sdk-oldest: $(PY_OLDEST)
	$(PY_OLDEST) -m pip install --quiet --editable . --group test "databricks-sdk==$(SDK_OLDEST)"
	@$(PY_OLDEST) $(SDK_VERSION)
	$(PY_OLDEST) -m pytest -n 2 --dist worksteal --durations 10 tests/integration tests/unit/lakebase/test_sdk_compat.py \
		$(foreach module,$(SDK_AGNOSTIC),--ignore=tests/integration/test_$(module).py)

# The README's test command: lint, types, every test on the newest supported SDK (real PostgreSQL, fake
# workspace), then the integration tests again on the oldest.
test: lint $(PY_PGADMIN)
	@$(PY) $(SDK_VERSION)
	PGADMIN4_PYTHON=$(abspath $(PY_PGADMIN)) $(PY) -m pytest -n 2 --dist worksteal --durations 25 tests
	$(MAKE) integration-sdk-oldest

# A rotation against an embedded fake workspace and a throwaway PostgreSQL, then a psql login with it.
demo:
	$(PY) -m tests.rigs.demo

bench:
	$(PY) -m pip install --quiet --editable '.[bench]'
	$(PY) -m bench.run

# The reliability suite, writing its figures to tests/reliability/figures.json and docs/reliability.md (other
# runs leave both alone). The soak writes its own row.
reliability-report:
	$(PY) -m pytest -n 2 --durations 10 tests/reliability --reliability-report

soak:
	$(PY) -m pytest tests/reliability/test_soak.py --soak -s --reliability-report

clean:
	rm -rf $(VENV) $(VENV_OLDEST) $(VENV_PGADMIN) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist
