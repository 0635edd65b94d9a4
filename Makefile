# Two commands: `make run` serves the API locally, `make test` runs the tests.
# Each sets itself up from a fresh clone (virtual environment, dependencies).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# uv installs the pinned requirements several times faster than pip (parallel downloads and
# byte-compiling); the Makefile installs it, pinned, into the virtual environment. Compiling at
# install time matters: otherwise the test processes that import the app at once (xdist workers,
# the cold-start tests) would each compile the same modules.
UV_VERSION := 0.13.8
UV := $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python
# pytest-xdist workers: one more than the cores, because a good part of the suite waits (on
# timeouts it tests, on child processes, on the Lambda build's downloads) while another worker
# can use the core. `make test TEST_WORKERS=0` runs in one process.
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print((os.cpu_count() or 1) + 1)')

.PHONY: run test package bench load migrate

# The environment gets no pip of its own (ensurepip alone takes seconds): the interpreter's pip
# puts uv into it. Where that pip is missing or older than 22.3 (no --python), ensurepip it is.
$(BIN)/uv:
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(BIN)/python install --quiet --disable-pip-version-check uv==$(UV_VERSION) \
	|| { $(BIN)/python -m ensurepip --default-pip \
	     && $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION); }

$(VENV)/.runtime: requirements.txt requirements-local.txt | $(BIN)/uv
	$(UV) -r requirements-local.txt
	touch $@

$(VENV)/.test: requirements.txt requirements-local.txt requirements-test.txt | $(BIN)/uv
	$(UV) -r requirements-test.txt
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

# Without DATABASE_URL, on an embedded PostgreSQL whose data stays in ./.data/ (scripts/run_local.py).
run: $(VENV)/.runtime
	$(BIN)/python scripts/run_local.py

# The tests run `npm ci` themselves, in the background while they start (tests/support/npm.py).
# loadgroup: the tests of one xdist_group (the Lambda zip and osls offline on it) share a worker.
# Byte code is written even where PYTHONDONTWRITEBYTECODE is set: otherwise every process of the
# run (xdist workers, the cold-start tests' children) compiles the app, and pytest rewrites its
# plugins' assertions, anew.
test: $(VENV)/.test
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

package: $(VENV)/.test node_modules/.package-lock.json
	scripts/package.sh

# The database of DATABASE_URL (or .env) brought to the schema this code needs; never downgrades.
migrate: $(VENV)/.runtime
	$(BIN)/python -m todo.migrate

# Every script runs and prints its figures; the target fails if any of them missed a target.
bench: $(VENV)/.test
	@status=0; \
	$(BIN)/python bench/round_trips.py || status=1; \
	$(BIN)/python bench/cold_start.py || status=1; \
	$(BIN)/python bench/vs_floor.py || status=1; \
	$(BIN)/python bench/auth.py || status=1; \
	$(BIN)/python bench/jwt_libraries.py || status=1; \
	$(BIN)/python bench/access_log.py || status=1; \
	exit $$status

load: $(VENV)/.test
	$(BIN)/python loadtest/run.py
