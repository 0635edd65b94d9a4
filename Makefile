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

run: $(VENV)/.runtime
	$(BIN)/uvicorn handler:app --no-server-header --port $${PORT:-8000}

test: $(VENV)/.test node_modules/.package-lock.json
	$(BIN)/python -m pytest $(PYTEST_ARGS)

package: $(VENV)/.test node_modules/.package-lock.json
	scripts/package.sh

# Every script runs and prints its figures; the target fails if any of them missed a target.
bench: $(VENV)/.test
	@status=0; \
	$(BIN)/python bench/round_trips.py || status=1; \
	$(BIN)/python bench/cold_start.py || status=1; \
	$(BIN)/python bench/vs_floor.py || status=1; \
	exit $$status

load: $(VENV)/.test
	$(BIN)/python loadtest/run.py
