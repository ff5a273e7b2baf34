# Two commands for a newcomer: `make demo` and `make test`. Everything else is optional.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint format bench lock clean

# Installs exactly the versions pinned in requirements.lock (dev tools included), then the
# project itself without resolving again. `make lock` re-pins after a change to pyproject.toml.
$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

setup: $(BIN)/.installed

demo: setup  ## development mode (DEBUG=1): demo data, admin, Celery worker and beat
	DEBUG=1 bash scripts/demo.sh

test: setup  ## run the tests (SQLite, or PostgreSQL when DATABASE_URL is set); no other env needed
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup  ## needs DATABASE_URL=postgres://...
	$(BIN)/python bench/bench_foundation.py

lock: setup  ## re-pin every dependency (after editing pyproject.toml); commit requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --universal -o requirements.lock

clean:
	rm -rf $(VENV) var db.sqlite3*
