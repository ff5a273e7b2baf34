# Two commands for a newcomer: `make demo` and `make test`. Everything else is optional.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint format bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
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

clean:
	rm -rf $(VENV) var db.sqlite3*
