# casemgr developer commands. `make run` and `make test` work on a fresh Debian machine.
PY ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test test-faults lint bench clean

# --no-compile: byte-compiling all ~14,000 installed modules cost ~30 s of CPU in every clean install (CI); an import
# compiles what it needs, and the suite imports a part of them.
$(BIN)/casemgr: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --no-compile -e '.[dev]'
	touch $(BIN)/casemgr

install: $(BIN)/casemgr

# Install, migrate, seed demo data (SQLite, offline AI) and serve on http://127.0.0.1:8000
run: install
	$(BIN)/casemgr db upgrade
	$(BIN)/casemgr demo
	$(BIN)/casemgr serve --host $(HOST) --port $(PORT)

# Install everything (Python and Debian packages), start PostgreSQL, run the whole suite on SQLite and PostgreSQL,
# the slow suite (`test-faults`) included.
test:
	bash scripts/test.sh

# Long fault, soak and load runs alone (`make test` runs them too; bounded versions run in the normal suite).
test-faults: install
	$(BIN)/pytest -q -m "slow" tests

lint: install
	$(BIN)/ruff check casemgr tests

bench: install
	$(BIN)/casemgr bench all --json

clean:
	rm -rf $(VENV) data .pytest_cache
