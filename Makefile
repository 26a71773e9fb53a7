# gwlog — the two commands the README starts with: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-slow lint bench clean

$(BIN)/gwlog: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/gwlog

# Parse every bundled sample, print the metrics and a per-user report.
demo: setup
	@mkdir -p out
	cat samples/compose.log | $(BIN)/gwlog parse --no-serve --archive out/events.jsonl --metrics-out out/metrics.prom
	@grep -E '^gwlog_(requests|cost_usd)_total' out/metrics.prom | head -n 20
	$(BIN)/gwlog report out/events.jsonl --by user
	$(BIN)/gwlog report out/events.jsonl --by team

# Installs Prometheus/mtail from Debian when missing (root), then lint, types and tests.
test: setup
	@command -v promtool >/dev/null && command -v mtail >/dev/null || bash .ci/install-system-packages
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q; rc=$$?; [ $$rc -ne 5 ] || echo 'pytest collected no tests' >&2; exit $$rc

test-slow: setup
	$(BIN)/pytest -q --slow

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/bench_parse.py
	$(BIN)/python bench/bench_compare.py

clean:
	rm -rf $(VENV) out build dist *.egg-info
