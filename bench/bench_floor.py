"""Lower bound of a pure-Python line loop: the scanner plan's ``re`` match and the cheapest aggregation.

    .venv/bin/python bench/corpus.py --lines 200000 --format compose --out /tmp/c.log
    .venv/bin/python bench/bench_floor.py /tmp/c.log

Why: the issues ask for ratios to mtail that need ~8–11 µs per line. This loop keeps only what any
reading must do (decode, cut the compose prefix, one ``fullmatch`` of the plan, group extraction)
plus sums of requests, five token counts, cost and a duration histogram keyed by raw provider,
models, status and e-mail: no typing, identity, teams, TTFT, timestamps or limits. Its lines/s is
the ceiling for gwlog's design in CPython (docs/benchmarks.md, "Hot path").
"""

from __future__ import annotations

import argparse
import time
from bisect import bisect_left
from decimal import Decimal
from pathlib import Path

from gwlog.events import CACHE_READ_KEY, CACHE_WRITE_KEY, COST_KEY, REASONING_KEY
from gwlog.scanner import Scanner

_KEY = ("gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model", "http.status", "user.email")
_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", CACHE_READ_KEY, CACHE_WRITE_KEY, REASONING_KEY)
_BUCKETS_MS = (100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000)


def floor_rate(raw: bytes) -> tuple[int, float]:
    """(lines, seconds) of the minimal loop over ``raw`` (compose-format lines)."""
    scanner = Scanner()
    for line in raw[: 8 << 20].decode("utf-8", "replace").split("\n")[:-1]:  # learn the plan
        text = line.partition(" | ")[2]
        if text:
            scanner.scan(text)
    plan = scanner._plan
    assert plan is not None, "no request line in the corpus"
    index = {k: i + 1 for i, k in enumerate(plan.keys)}
    key_at = [index[k] for k in _KEY]
    token_at = [index[k] for k in _TOKENS if k in index]
    cost_at, duration_at = index[COST_KEY], index["duration"]
    groups, fullmatch = plan.groups, plan.regex.fullmatch
    totals: dict[tuple[str | None, ...], list] = {}
    lines = 0
    start = time.perf_counter()
    for line in raw.split(b"\n"):
        lines += 1
        text = line.decode("utf-8", "replace")
        m = fullmatch(text[text.find(" | ") + 3 :])
        if m is None:
            continue
        v = m.group(*groups)
        key = tuple(v[i] for i in key_at)
        rec = totals.get(key)
        if rec is None:
            rec = totals[key] = [0, [0] * len(token_at), Decimal(0), [0] * (len(_BUCKETS_MS) + 1)]
        rec[0] += 1
        counts = rec[1]
        for j, i in enumerate(token_at):
            if v[i] is not None:
                counts[j] += int(v[i])
        if v[cost_at] is not None:
            rec[2] += Decimal(v[cost_at])
        rec[3][bisect_left(_BUCKETS_MS, int(v[duration_at][:-2]))] += 1
    return lines, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path, help="compose-format corpus from bench/corpus.py")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    raw = args.corpus.read_bytes()
    best = min(floor_rate(raw)[1] for _ in range(args.repeat))
    lines = raw.count(b"\n") + 1
    print(f"{lines:,} lines, best of {args.repeat}: {lines / best:,.0f} lines/s ({best / lines * 1e6:.2f} µs/line)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
