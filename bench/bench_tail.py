"""Tailer throughput: 1M × 600-byte lines, byte offsets + event id per line, acked (tailing.md §1.2).

    .venv/bin/python bench/bench_tail.py [--lines 1000000] [--runs 3] [--dir /tmp]

Writes the corpus once (page cache warm), then per run: a fresh Tailer, poll until every line came,
``event_id`` for each line, ``ack`` each batch. Prints lines/s and MB/s per run and the best.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from gwlog.tailer import Tailer, event_id


def corpus(path: str, n: int) -> int:
    body = b"x" * 592
    with open(path, "wb") as f:
        for start in range(0, n, 10_000):
            f.write(b"".join(b"%07d%s\n" % (i, body) for i in range(start, min(n, start + 10_000))))
    return os.path.getsize(path)


def run(path: str, n: int) -> float:
    t = Tailer([path], drain_grace=5.0)
    seen = 0
    t0 = time.perf_counter()
    while seen < n:
        lines = t.poll(max_lines=20_000)
        for x in lines:
            event_id(x.source_key, x.fp, x.start)
        t.ack(lines)
        seen += len(lines)
    dt = time.perf_counter() - t0
    t.close()
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=a.dir) as d:
        path = os.path.join(d, "corpus.log")
        size = corpus(path, a.lines)
        best = 0.0
        for i in range(a.runs):
            dt = run(path, a.lines)
            best = max(best, a.lines / dt)
            print(f"run {i + 1}: {a.lines / dt:,.0f} lines/s ({size / dt / 1e6:,.0f} MB/s) in {dt:.2f}s")
        print(f"best: {best:,.0f} lines/s over {a.lines:,} lines of {size // a.lines} bytes")


if __name__ == "__main__":
    main()
