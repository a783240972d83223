# The two commands: `make run` and `make test`. Both set everything up from a fresh clone.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
# Playwright's own Chromium downloaded for this install (only when there is no system Chromium).
BROWSER_STAMP := $(VENV)/.playwright-chromium

# Development defaults; a real environment variable wins.
export DEBUG ?= true
export TASKDECK_DEMO_JOBS ?= true

# Compiled bytecode, and pytest's assertion-rewritten test modules, are cached under the venv
# rather than beside the sources. PYTHONDONTWRITEBYTECODE (set on some machines, this one
# included) would otherwise make every test process, worker and `manage.py` recompile the
# project and re-rewrite ~480 test modules: collecting the suite took 12 s here, 7-8 s with the
# cache. Its aim, no files in the source tree, still holds.
export PYTHONPYCACHEPREFIX ?= $(abspath $(VENV))/pycache
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test test-fast setup install browser migrate admin lint format typecheck layers check clean

run: setup admin
	$(PY) manage.py devstack

# The suite runs in TEST_PROCESSES processes (pytest-xdist; 0: one, for debugging), each with its
# own test database, broker database and worker (tests/conftest.py). Work stealing: a process
# that runs out takes tests from a busy one, so the long tests (started first) never end alone.
TEST_PROCESSES ?= 4

test: install browser
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist worksteal $(PYTEST_ARGS)

# The edit loop: every test that needs no worker, browser or other process of its own, the
# fuzzers with a fifth of their examples and the API conformance test without its coverage
# phase (`make test` runs them all: tests/support/fuzzing.py). These compute rather than
# wait: two processes, one per core here (four spend their time starting up).
FAST_PROCESSES ?= 2

test-fast: install
	TASKDECK_FUZZ_SCALE=0.2 $(BIN)/pytest -n $(FAST_PROCESSES) --dist worksteal \
	  -m "not worker and not browser and not processes" $(PYTEST_ARGS)

setup: install migrate

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed: $(PYTHON) not found (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Chromium for the browser tests (tests/support/chromium.py chooses, here and in the tests): the
# system's (/usr/bin/chromium, or CHROMIUM_EXECUTABLE) when there is one, else Playwright's own,
# downloaded once per install (again only when the install is newer than the stamp). The check
# exits 1 for "no system Chromium" and 2 for a CHROMIUM_EXECUTABLE that names no executable.
browser: install
	@$(PY) -m tests.support.chromium --system; status=$$?; \
	if [ $$status -eq 1 ] && { [ ! -f $(BROWSER_STAMP) ] || [ $(STAMP) -nt $(BROWSER_STAMP) ]; }; then \
	  $(BIN)/playwright install chromium && touch $(BROWSER_STAMP); \
	elif [ $$status -gt 1 ]; then exit $$status; fi

migrate: install
	$(PY) manage.py migrate --no-input

admin: migrate
	$(PY) manage.py ensure_admin

# Quality gates (CI runs them after `make test`).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/mypy .

# The layering contracts ([tool.importlinter] in pyproject.toml).
layers: install
	$(BIN)/lint-imports --no-cache


check: lint typecheck layers
	$(PY) manage.py check --fail-level WARNING
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
