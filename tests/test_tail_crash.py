"""`gwlog tail` killed with SIGKILL at random moments while a writer appends and rotates.

At the end the archive must hold every written line exactly once and the counters (restored from
checkpoints across all the kills) must equal the true totals. Bounded in CI; longer with --slow.
"""

from __future__ import annotations

import gzip
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

GWLOG = [sys.executable, "-m", "gwlog"]
USERS = ["alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"]

WRITER = r"""
import gzip, os, shutil, sys, time
log, total, rate, rotate_every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
users = USERS
fh = open(log, "ab", buffering=0)
start = time.monotonic()
for n in range(total):
    user = users[n % len(users)]
    line = (f"2026-08-20T09:{(n // 60) % 60:02d}:{n % 60:02d}.{n % 999999}Z\tinfo\trequest gateway=default/default "
            f"listener=llm route=default/openai src.addr=10.0.0.1:4000 http.method=POST http.host=gw "
            f"http.path=/v1/chat/completions http.version=HTTP/1.1 http.status=200 protocol=llm "
            f"gen_ai.provider.name=openai gen_ai.request.model=gpt-4o gen_ai.usage.input_tokens={n % 97 + 1} "
            f"gen_ai.usage.output_tokens=3 duration=12ms user.email=\"{user}\" seq={n}\n")
    fh.write(line.encode())
    if n and n % rotate_every == 0:
        fh.close()
        # logrotate-style: shift .1 -> .2.gz (compressed), live -> .1, new live file
        if os.path.exists(log + ".1"):
            with open(log + ".1", "rb") as src, gzip.open(log + ".2.gz.tmp", "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(log + ".2.gz.tmp", log + ".2.gz")
            os.unlink(log + ".1")
        os.rename(log, log + ".1")
        fh = open(log, "ab", buffering=0)
    ahead = n / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)
fh.close()
""".replace("USERS", repr(USERS))


def start_tail(tmp_path: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*GWLOG, "tail", str(log), "--state-dir", str(tmp_path / "state"), "--no-serve",
         "--archive", str(tmp_path / "events.jsonl"), "--metrics-out", str(tmp_path / "final.prom")],
        stderr=open(tmp_path / "gwlog.stderr", "ab"),
    )  # fmt: skip


def run_crash_test(tmp_path: Path, total: int, rate: int, rotate_every: int, seed: int) -> dict:
    log = tmp_path / "gw.log"
    log.touch()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(log), str(total), str(rate), str(rotate_every)])
    rng = random.Random(seed)
    kills = 0
    proc = start_tail(tmp_path, log)
    # Only the very first start is spared until it committed: a first start ignores rotated files
    # it finds (no backfill), so dying before any checkpoint would turn the next start into one too.
    state = tmp_path / "state" / "state.json"
    while not state.exists():
        time.sleep(0.05)
    while writer.poll() is None:
        time.sleep(rng.uniform(1.5, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        time.sleep(rng.uniform(0.0, 0.3))  # sometimes the writer rotates while gwlog is down
        proc = start_tail(tmp_path, log)
    assert writer.returncode == 0
    time.sleep(3.0)  # let it catch up
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, (tmp_path / "gwlog.stderr").read_text()[-2000:]

    seqs: list[int] = []
    for path in sorted(tmp_path.glob("events*.jsonl*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            seqs += [orjson.loads(line)["fields"]["seq"] for line in fh]
    final = (tmp_path / "final.prom").read_text()
    requests = sum(
        float(line.rsplit(" ", 1)[1]) for line in final.splitlines() if line.startswith("gwlog_requests_total{")
    )
    tokens = sum(
        float(line.rsplit(" ", 1)[1])
        for line in final.splitlines()
        if line.startswith("gwlog_tokens_total{") and 'type="input"' in line
    )
    lost_metric = sum(
        float(line.rsplit(" ", 1)[1]) for line in final.splitlines() if line.startswith("gwlog_data_lost_total{")
    )
    return {
        "kills": kills,
        "data_lost_reported": lost_metric,
        "lines": total,
        "archived": len(seqs),
        "lost": total - len(set(seqs)),
        "duplicated": len(seqs) - len(set(seqs)),
        "requests": requests,
        "input_tokens": tokens,
        "true_input_tokens": sum(n % 97 + 1 for n in range(total)),
    }


def check(result: dict) -> None:
    print("crash test:", result)
    assert result["kills"] >= 3
    assert result["data_lost_reported"] == 0, "the writer outran gwlog: make the test gentler"
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["requests"] == result["lines"]
    assert result["input_tokens"] == result["true_input_tokens"]


def test_sigkill_during_rotation_loses_and_repeats_nothing(tmp_path: Path) -> None:
    check(run_crash_test(tmp_path, total=15_000, rate=1500, rotate_every=3000, seed=7))


@pytest.mark.slow
def test_sigkill_long_run(tmp_path: Path) -> None:
    check(run_crash_test(tmp_path, total=200_000, rate=4000, rotate_every=20_000, seed=int(os.environ.get("SEED", 11))))
