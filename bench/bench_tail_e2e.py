"""End-to-end `gwlog tail` throughput: a static corpus read from the start, with and without archive.

    .venv/bin/python bench/corpus.py --lines 200000 --format text --out /tmp/t200k.log
    .venv/bin/python bench/bench_tail_e2e.py /tmp/t200k.log

Timed from process start until the checkpoint says every byte was acked by every sink, so the
figure includes startup, parsing, metrics, the archive and the checkpoints.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(log: Path, work: Path, archive: bool) -> str:
    size = log.stat().st_size
    lines = sum(1 for _ in log.open("rb"))
    state = work / ("state-archive" if archive else "state")
    args = [sys.executable, "-m", "gwlog", "tail", str(log), "--state-dir", str(state), "--no-serve"]
    if archive:
        args += ["--archive", str(work / "events.jsonl")]
    start = time.monotonic()
    proc = subprocess.Popen(args)
    while True:
        time.sleep(0.05)
        try:
            files = json.loads((state / "state.json").read_text())["tailer"]["files"]
        except (OSError, ValueError, KeyError):
            continue
        if sum(f["acked_end"] for f in files.values()) >= size:
            break
    elapsed = time.monotonic() - start
    proc.terminate()
    _, _, usage = os.wait4(proc.pid, 0)
    label = "gwlog tail --archive" if archive else "gwlog tail"
    return f"| `{label}` | {lines:,} | {elapsed:.2f} | {lines / elapsed:,.0f} | {usage.ru_maxrss / 1024:.0f} |"


def main() -> None:
    log = Path(sys.argv[1])
    work = Path(tempfile.mkdtemp(prefix="gwlog-tail-bench-"))
    try:
        print("| run | lines | wall s (incl. startup) | lines/s | peak RSS MiB |\n|---|---:|---:|---:|---:|")
        for archive in (False, True):
            print(run(log, work, archive))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
