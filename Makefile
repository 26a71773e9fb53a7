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

# The main job on the bundled samples: a compose stream through `gwlog parse`, then all samples
# through `gwlog backfill`, then the reports people read.
demo: setup
	@mkdir -p out
	@rm -f out/events.jsonl out/all.jsonl
	$(BIN)/gwlog parse --config samples/gwlog.toml --no-serve --archive out/events.jsonl \
		--metrics-out out/metrics.prom < samples/compose.log
	@echo "--- per-user requests (out/metrics.prom):"
	@grep -E '^gwlog_requests_total' out/metrics.prom | head -n 12
	$(BIN)/gwlog backfill --config samples/gwlog.toml samples/*.log --archive out/all.jsonl \
		--metrics-out out/all.prom
	$(BIN)/gwlog report out/all.jsonl --by team
	$(BIN)/gwlog report out/all.jsonl --by user --top 5

# Installs Prometheus/mtail from Debian when missing (root), then lint, types and tests.
test: setup
	@command -v promtool >/dev/null && command -v mtail >/dev/null || bash .ci/install-system-packages
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
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
	$(BIN)/python bench/corpus.py --lines 200000 --format compose --out /tmp/gwlog-floor.log
	$(BIN)/python bench/bench_floor.py /tmp/gwlog-floor.log

clean:
	rm -rf $(VENV) out build dist *.egg-info
