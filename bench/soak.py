"""Soak test: `gwlog tail` under a steady write load with rename rotation, scraped by a real Prometheus.

    .venv/bin/python bench/soak.py --minutes 10 --rate 20000      # the documented soak
    .venv/bin/python bench/soak.py --minutes 0.5                  # quick mode (~1 min wall)

A writer appends gateway request lines at ``--rate`` lines/s and rotates logrotate-style by rename
(``log`` → ``log.1`` → ``log.2``, oldest deleted) every ``--rotate-seconds``. ``gwlog tail`` follows
the file with ``--state-dir`` and ``--archive`` and serves /metrics on loopback; Prometheus scrapes
it every second. Every ``--sample-seconds`` the script records gwlog's RSS (/proc/PID/status
VmRSS), the scrape duration (``scrape_duration_seconds``), the lag (``gwlog_source_lag_bytes``) and
the throughput (from ``gwlog_lines_total``). At the end it waits for gwlog to catch up, stops it
with SIGTERM and checks: requests counted == lines written, archive ids unique, archive ``seq``
complete (0..N-1). Prints a table and writes a JSON result; exits 1 when counts differ or RSS grew
by more than ``--max-rss-growth-mib`` between the end of warm-up and the end of the run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.promhelpers import JOB, PromServer, free_port, start_prometheus  # noqa: E402

USERS = [f"user{i}@example.com" for i in range(40)]
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "llama-3.1-70b"]

WRITER = r"""
import os, sys, time
log, rate, seconds, rotate_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
users, models = USERS, MODELS
fh = open(log, "ab", buffering=0)
start = last_rot = time.monotonic()
n = 0
step = 0.05
while True:
    now = time.monotonic()
    if now - start >= seconds:
        break
    due = int((now - start) * rate) - n
    if due > 0:
        buf = []
        for k in range(n, n + due):
            buf.append(
                f"2026-08-20T09:{(k // 60) % 60:02d}:{k % 60:02d}.{k % 999999}Z\tinfo\trequest "
                f"gateway=default/default listener=llm route=default/openai endpoint=api.openai.com:443 "
                f"src.addr=10.0.0.{k % 250}:4000 "
                f"http.method=POST http.host=gw http.path=/v1/chat/completions http.version=HTTP/1.1 "
                f"http.status={200 if k % 50 else 429} protocol=llm gen_ai.operation.name=chat "
                f"gen_ai.provider.name=openai gen_ai.request.model={models[k % 4]} "
                f"gen_ai.usage.input_tokens={k % 97 + 1} gen_ai.usage.output_tokens={k % 13} "
                f'duration={k % 3000}ms user.email="{users[k % len(users)]}" seq={k}\n'
            )
        fh.write("".join(buf).encode())
        n += due
    if now - last_rot >= rotate_s:
        fh.close()
        if os.path.exists(log + ".1"):
            os.replace(log + ".1", log + ".2")
        os.rename(log, log + ".1")
        fh = open(log, "ab", buffering=0)
        last_rot = now
    time.sleep(step)
fh.close()
print(n)
""".replace("USERS", repr(USERS)).replace("MODELS", repr(MODELS))


def rss_kib(pid: int) -> int | None:
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1])
    except OSError:
        return None
    return None


def scalar(prom: PromServer, expr: str) -> float | None:
    try:
        rows = prom.query(expr)
    except (AssertionError, OSError):
        return None
    if not rows:
        return None
    sample = rows[0]
    value = sample["value"][1] if isinstance(sample, dict) else sample[1]
    return float(value)


def scrape_local(url: str) -> dict[str, float]:
    """Sum gwlog_lines_total / gwlog_requests_total straight from /metrics (no Prometheus delay)."""
    out: dict[str, float] = {}
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
    except OSError:
        return out
    for row in text.splitlines():
        for name in ("gwlog_lines_total", "gwlog_requests_total", "gwlog_source_lag_bytes"):
            if row.startswith(name + "{") or row.startswith(name + " "):
                out[name] = out.get(name, 0.0) + float(row.rsplit(" ", 1)[1])
    return out


def read_archive(prefix: Path) -> tuple[int, int, list[int]]:
    """(rows, unique ids, seq values) of every archive file; byte scans, as 5M rows must read fast."""
    ids: set[bytes] = set()
    seqs: list[int] = []
    rows = 0
    for path in sorted(prefix.parent.glob(prefix.name + "*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            for line in fh:
                rows += 1
                i = line.find(b'"id":"') + 6
                ids.add(line[i : line.find(b'"', i)])
                j = line.rfind(b'"seq":') + 6
                k = j
                while k < len(line) and 48 <= line[k] <= 57:
                    k += 1
                seqs.append(int(line[j:k]))
    return rows, len(ids), seqs


def gaps(seqs: list[int], written: int) -> list[tuple[int, int]]:
    """Missing seq ranges (inclusive) in 0..written-1."""
    present = bytearray(written)
    for s in seqs:
        if 0 <= s < written:
            present[s] = 1
    out: list[tuple[int, int]] = []
    start = None
    for i, p in enumerate(present):
        if not p and start is None:
            start = i
        elif p and start is not None:
            out.append((start, i - 1))
            start = None
    if start is not None:
        out.append((start, written - 1))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=int, default=20_000, help="lines/s written")
    ap.add_argument("--rotate-seconds", type=float, default=5.0)
    ap.add_argument("--sample-seconds", type=float, default=5.0)
    ap.add_argument("--warmup-fraction", type=float, default=0.25, help="RSS baseline taken after this")
    ap.add_argument("--max-rss-growth-mib", type=float, default=64.0)
    ap.add_argument("--catch-up-seconds", type=float, default=600.0)
    ap.add_argument("--workdir", type=Path, default=None, help="default: a fresh temp dir (kept)")
    ap.add_argument("--out", type=Path, default=None, help="JSON result [default: WORKDIR/soak.json]")
    args = ap.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="gwlog-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    log, archive, state = work / "gw.log", work / "events.jsonl", work / "state"
    log.touch()
    port = free_port()
    seconds = args.minutes * 60
    gw_err = (work / "gwlog.stderr").open("wb")
    gw = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gwlog",
            "tail",
            str(log),
            "--state-dir",
            str(state),
            "--archive",
            str(archive),
            "--metrics-out",
            str(work / "final.prom"),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stderr=gw_err,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )
    prom: PromServer | None = None
    writer: subprocess.Popen | None = None
    samples: list[dict] = []
    try:
        prom = start_prometheus(work / "prom", [f"127.0.0.1:{port}"], scrape_interval="1s")
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(log), str(args.rate), str(seconds), str(args.rotate_seconds)],
            stdout=subprocess.PIPE,
        )
        t0 = time.monotonic()
        last_lines, last_t = 0.0, t0
        while writer.poll() is None:
            time.sleep(args.sample_seconds)
            now = time.monotonic()
            local = scrape_local(f"http://127.0.0.1:{port}/metrics")
            lines = local.get("gwlog_lines_total", last_lines)
            samples.append(
                {
                    "t": round(now - t0, 1),
                    "rss_mib": round((rss_kib(gw.pid) or 0) / 1024, 1),
                    "scrape_s": scalar(prom, f'max(scrape_duration_seconds{{job="{JOB}"}})'),
                    "scrape_max_s": scalar(prom, f'max(max_over_time(scrape_duration_seconds{{job="{JOB}"}}[30s]))'),
                    "lag_bytes": local.get("gwlog_source_lag_bytes"),
                    "lines_per_s": round((lines - last_lines) / (now - last_t)),
                    "lines_total": lines,
                }
            )
            last_lines, last_t = lines, now
            s = samples[-1]
            print(
                f"t={s['t']:>6}s rss={s['rss_mib']:>7} MiB scrape={s['scrape_s']} lag={s['lag_bytes']} "
                f"lines/s={s['lines_per_s']} total={int(lines)}",
                flush=True,
            )
            if gw.poll() is not None:
                raise RuntimeError(f"gwlog exited with {gw.returncode}")
        out, _ = writer.communicate()
        written = int(out.strip())
        t_end_write = time.monotonic()
        caught_up = None
        last_seen, last_change = -1.0, time.monotonic()
        while time.monotonic() - t_end_write < args.catch_up_seconds:
            local = scrape_local(f"http://127.0.0.1:{port}/metrics")
            seen = local.get("gwlog_requests_total", 0)
            if seen >= written:
                caught_up = round(time.monotonic() - t_end_write, 1)
                break
            if seen != last_seen:
                last_seen, last_change = seen, time.monotonic()
            elif time.monotonic() - last_change > 30 and not local.get("gwlog_source_lag_bytes"):
                print(f"gwlog stalled at {int(seen)} of {written} with no lag: lines are missing", flush=True)
                break
            time.sleep(1)
        time.sleep(2)  # one more checkpoint interval
        prom_requests = scalar(prom, "sum(gwlog_requests_total)")
    finally:
        if writer is not None and writer.poll() is None:
            writer.kill()
        if gw.poll() is None:
            gw.send_signal(signal.SIGTERM)
            try:
                gw.wait(60)
            except subprocess.TimeoutExpired:
                gw.kill()
        gw_err.close()
        if prom is not None:
            prom.stop()

    final = (work / "final.prom").read_text() if (work / "final.prom").exists() else ""
    counted = sum(float(r.rsplit(" ", 1)[1]) for r in final.splitlines() if r.startswith("gwlog_requests_total{"))
    lost_metric = sum(float(r.rsplit(" ", 1)[1]) for r in final.splitlines() if r.startswith("gwlog_data_lost_total{"))
    rows, unique_ids, seqs = read_archive(archive)
    missing = gaps(seqs, written)
    warm = [s for s in samples if s["t"] >= seconds * args.warmup_fraction] or samples
    rss_base = warm[0]["rss_mib"] if warm else 0.0
    rss_end = statistics.median(s["rss_mib"] for s in samples[-3:]) if samples else 0.0
    rates = [s["lines_per_s"] for s in samples[1:]] or [0]
    scrapes = [s["scrape_s"] for s in samples if s["scrape_s"] is not None] or [0.0]
    scrape_max = [s["scrape_max_s"] for s in samples if s["scrape_max_s"] is not None] or [0.0]
    lags = [s["lag_bytes"] for s in samples if s["lag_bytes"] is not None] or [0.0]
    result = {
        "minutes": args.minutes,
        "rate": args.rate,
        "rotate_seconds": args.rotate_seconds,
        "written": written,
        "counted": counted,
        "prometheus_sum_requests": prom_requests,
        "archive_rows": rows,
        "archive_unique_ids": unique_ids,
        "archive_missing_seq": sum(b - a + 1 for a, b in missing),
        "archive_missing_ranges": missing[:50],
        "archive_duplicates": rows - unique_ids,
        "data_lost_total": lost_metric,
        "catch_up_seconds": caught_up,
        "rss_mib_start": samples[0]["rss_mib"] if samples else None,
        "rss_mib_after_warmup": rss_base,
        "rss_mib_end": rss_end,
        "rss_mib_max": max((s["rss_mib"] for s in samples), default=None),
        "lines_per_s_median": statistics.median(rates),
        "lines_per_s_max": max(rates),
        "scrape_s_median": statistics.median(scrapes),
        "scrape_s_max": max(scrape_max),
        "lag_bytes_median": statistics.median(lags),
        "lag_bytes_max": max(lags),
        "samples": samples,
        "workdir": str(work),
    }
    failures = []
    if counted != written:
        failures.append(f"counted {counted} != written {written}")
    if rows != unique_ids or result["archive_missing_seq"] or rows != written:
        failures.append(f"archive rows={rows} unique={unique_ids} missing={result['archive_missing_seq']}")
    if rss_end - rss_base > args.max_rss_growth_mib:
        failures.append(f"RSS grew {rss_end - rss_base:.1f} MiB after warm-up (> {args.max_rss_growth_mib})")
    result["failures"] = failures
    (args.out or work / "soak.json").write_text(json.dumps(result, indent=2))

    print("\n| metric | value |\n|---|---|")
    for key in (
        "minutes",
        "rate",
        "written",
        "counted",
        "prometheus_sum_requests",
        "archive_rows",
        "archive_unique_ids",
        "archive_missing_seq",
        "data_lost_total",
        "catch_up_seconds",
        "rss_mib_start",
        "rss_mib_after_warmup",
        "rss_mib_end",
        "rss_mib_max",
        "lines_per_s_median",
        "lines_per_s_max",
        "scrape_s_median",
        "scrape_s_max",
        "lag_bytes_median",
        "lag_bytes_max",
    ):
        print(f"| {key} | {result[key]} |")
    print(f"\nresult: {args.out or work / 'soak.json'}")
    print("FAIL: " + "; ".join(failures) if failures else "PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
