# One entry point for people and CI. Everything installs into .venv from requirements.lock
# (exact pins, resolved from setup.cfg by `make lock`); nothing needs a constraints download.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
DEMO_START ?= 2024-01-01
DEMO_END   ?= 2024-01-04
DEMO_STATUS_AT ?= 2024-01-05T03:00
LINTED     := plugins dags tests bench

.PHONY: install demo test lint lock bench bench-smoke clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.9

$(VENV)/.installed: $(BIN)/python requirements.lock setup.cfg pyproject.toml
	$(UV) pip install --quiet --python $(BIN)/python -r requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

install: $(VENV)/.installed

# The first command of the README: set up, initialise Airflow (SQLite under .airflow/) and run the
# e2e_test cookbook for several consecutive days, then the refund_model cookbook (ingest -> features
# -> train, each run's line with its metrics), then show what each layer holds and the status of
# each table (as of the morning after the last day, so that freshness reads as it did then).
demo: install
	$(BIN)/pipelines init
	$(BIN)/pipelines validate
	$(BIN)/pipelines backfill e2e_test --start $(DEMO_START) --end $(DEMO_END)
	$(BIN)/pipelines backfill refund_model --start $(DEMO_START) --end $(DEMO_END)
	$(BIN)/pipelines show
	$(BIN)/pipelines status --now $(DEMO_STATUS_AT)
	$(BIN)/pipelines read orders --layer cleaned --limit 10
	$(BIN)/pipelines read daily_revenue --layer aggregated --limit 10
	$(BIN)/pipelines read train_refund_model --layer workflows --as-of $(DEMO_END)

lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

# The second command of the README, and what .ci/run runs: lint, the bench smoke run, the suite
# (last, so that its summary closes the output), on TEST_WORKERS processes (pytest-xdist; a test
# module stays on one worker, so its module fixtures, such as an e2e module's Airflow stack, are
# made once): while one worker's Airflow stack waits on its scheduler, the other runs tests. The
# modules go out in testpaths' order (pyproject.toml: the slow ones first), not xdist's default of
# the modules with the most tests first, which left the slow few-test modules (e2e) for the end.
TEST_WORKERS ?= 2
test: install lint bench-smoke
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

$(VENV)/.bench: $(VENV)/.installed bench/requirements.txt bench/peers.txt
	$(UV) pip install --quiet --python $(BIN)/python -r bench/requirements.txt
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --target bench/out/peers -r bench/peers.txt
	@touch $@

# Benchmarks side by side with the floor and dag-factory (< 15 min): table, RESULTS.md, curves.png
bench: $(VENV)/.bench
	$(BIN)/python -m bench

bench-smoke: $(VENV)/.bench
	$(BIN)/python -m bench --smoke

lock:
	uv pip compile setup.cfg --extra test --python-version 3.11 -o requirements.lock

clean:
	rm -rf .lake .airflow
