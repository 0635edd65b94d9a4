# Two commands: `make run` serves the API locally, `make test` runs the tests.
# Each sets itself up from a fresh clone (virtual environment, dependencies).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test package bench load

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt requirements-local.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements-local.txt
	touch $@

$(VENV)/.test: requirements.txt requirements-local.txt requirements-test.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

# Without DATABASE_URL, on an embedded PostgreSQL whose data stays in ./.data/ (scripts/run_local.py).
run: $(VENV)/.runtime
	$(BIN)/python scripts/run_local.py

test: $(VENV)/.test node_modules/.package-lock.json
	$(BIN)/python -m pytest $(PYTEST_ARGS)

package: $(VENV)/.test node_modules/.package-lock.json
	scripts/package.sh

bench: $(VENV)/.test
	$(BIN)/python bench/round_trips.py
	$(BIN)/python bench/cold_start.py

load: $(VENV)/.test
	$(BIN)/python loadtest/run.py
