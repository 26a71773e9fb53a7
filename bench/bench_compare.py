"""gwlog vs mtail on one generated corpus, side by side, in one run.

    python bench/bench_compare.py [--lines 200000] [--no-docs]

Runs on the same compose-format corpus (bench/corpus.py, with its ground truth):
``gwlog parse --no-serve --metrics-out`` (stdin), ``gwlog backfill --jobs 1`` and ``--jobs 2``, and
``mtail -one_shot`` with bench/agentgateway.mtail. Each run is one child process measured with
``os.wait4``: wall time, CPU seconds (user + system, including reaped worker processes) and peak
RSS (``ru_maxrss``: the largest single process, not a sum over workers). Checks that gwlog, mtail
and the corpus truth agree on request counts (total and per user), prints a markdown table and
updates the "## gwlog vs mtail" and "## Backfill" sections of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MTAIL_PROG = ROOT / "bench" / "agentgateway.mtail"
DOCS = ROOT / "docs" / "benchmarks.md"
GWLOG = [sys.executable, "-m", "gwlog"]
_SAMPLE = re.compile(r"^(\w+)\{(.*)\} (\S+)$")
_USER = re.compile(r'user="((?:[^"\\]|\\.)*)"')


@dataclass(slots=True)
class Run:
    name: str
    command: str
    wall_s: float
    cpu_s: float
    rss_mib: float
    exposition: Path

    def lines_per_s(self, lines: int) -> float:
        return lines / self.wall_s


def measure(
    name: str, label: str, cmd: list[str], out: Path, stdin: Path | None = None, stdout_to_out: bool = False
) -> Run:
    """Run ``cmd`` once; wall time around it, CPU and peak RSS from the kernel's rusage."""
    err = out.with_suffix(".stderr")
    with (
        open(stdin or os.devnull, "rb") as fin,
        open(out if stdout_to_out else os.devnull, "wb") as fout,
        open(err, "wb") as ferr,
    ):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=fin, stdout=fout, stderr=ferr)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{name} failed ({proc.returncode}): {' '.join(cmd)}\n{err.read_text()[-2000:]}")
    return Run(name, label, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out)


def requests_by_user(exposition: Path, metric: str) -> Counter[str]:
    """Sum of ``metric`` per user label ("" counts as gwlog's "unknown")."""
    counts: Counter[str] = Counter()
    for line in exposition.read_text().splitlines():
        m = _SAMPLE.match(line)
        if m and m.group(1) == metric:
            user = _USER.search(m.group(2))
            counts[(user.group(1) if user else "") or "unknown"] += int(float(m.group(3)))
    return counts


def has_backfill_command() -> bool:
    probe = subprocess.run([*GWLOG, "backfill", "--help"], capture_output=True)
    return probe.returncode == 0


def backfill_cmd(jobs: int, out: Path, corpus: Path, cli: bool) -> list[str]:
    if cli:
        return [*GWLOG, "backfill", "--jobs", str(jobs), "--metrics-out", str(out), str(corpus)]
    code = (
        "import sys; from gwlog.backfill import backfill; "
        "backfill([sys.argv[3]], jobs=int(sys.argv[1]), metrics_out=sys.argv[2], progress=False)"
    )
    return [sys.executable, "-c", code, str(jobs), str(out), str(corpus)]


def table(runs: list[Run], base: Run, lines: int) -> str:
    rows = [
        "| run | wall s | lines/s | × mtail | CPU s | lines per CPU-s | × mtail (CPU) | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        ratio = r.lines_per_s(lines) / base.lines_per_s(lines)
        per_cpu = lines / r.cpu_s
        rows.append(
            f"| `{r.command}` | {r.wall_s:.2f} | {r.lines_per_s(lines):,.0f} | {ratio:.1f}× | {r.cpu_s:.2f} "
            f"| {per_cpu:,.0f} | {per_cpu * base.cpu_s / lines:.1f}× | {r.rss_mib:.1f} |"
        )
    return "\n".join(rows)


def update_section(doc: str, heading: str, body: str) -> str:
    """Replace the text under ``heading`` up to the next ``## `` heading (or append the section)."""
    start = doc.find(f"\n{heading}\n") + 1 if f"\n{heading}\n" in doc else (0 if doc.startswith(heading) else -1)
    if start < 0:
        return doc.rstrip("\n") + f"\n\n{heading}\n\n{body}\n"
    nxt = doc.find("\n## ", start + len(heading))
    tail = "" if nxt < 0 else doc[nxt:]
    return doc[:start] + f"{heading}\n\n{body}\n" + tail


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--lines", type=int, default=200_000, help="corpus size in physical lines")
    ap.add_argument("--no-docs", action="store_true", help="print only, leave docs/benchmarks.md alone")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    mtail = shutil.which("mtail")
    if mtail is None:
        sys.exit("mtail is not installed (apt-get install mtail)")
    work = Path(tempfile.mkdtemp(prefix="gwlog-bench-"))
    try:
        corpus = work / "corpus.log"
        subprocess.run([sys.executable, str(ROOT / "bench" / "corpus.py"), "--lines", str(args.lines),
                        "--format", "compose", "--out", str(corpus)], check=True)  # fmt: skip
        truth = json.loads(Path(f"{corpus}.expected.json").read_text())
        lines = truth["physical_lines"]
        cli = has_backfill_command()
        mtail_cmd = [mtail, "-one_shot", "-one_shot_format", "prometheus", "-progs", str(MTAIL_PROG)]
        mtail_cmd += ["-logs", str(corpus), "-port", "0", "-logtostderr"]
        mtail_label = "mtail -one_shot -one_shot_format prometheus -progs bench/agentgateway.mtail -logs corpus"
        mtail_run = measure("mtail", mtail_label, mtail_cmd, work / "mtail.prom", stdout_to_out=True)
        parse_out = work / "parse.prom"
        parse_cmd = [*GWLOG, "parse", "--no-serve", "--metrics-out", str(parse_out)]
        parse_label = "gwlog parse --no-serve --metrics-out X < corpus"
        parse_run = measure("parse", parse_label, parse_cmd, parse_out, stdin=corpus)
        backfill_runs = []
        for jobs in (1, 2):
            out = work / f"backfill{jobs}.prom"
            label = f"gwlog backfill --jobs {jobs} --metrics-out X corpus"
            backfill_runs.append(measure(f"backfill-{jobs}", label, backfill_cmd(jobs, out, corpus, cli), out))
        expected = Counter({u: n for u, n in truth["per_user"].items() if n})
        counts = {"corpus truth": expected}
        counts["mtail"] = requests_by_user(mtail_run.exposition, "agentgateway_requests_total")
        for r in (parse_run, *backfill_runs):
            counts[r.name] = requests_by_user(r.exposition, "gwlog_requests_total")
        agree = all(c == expected for c in counts.values())
        verdict = (
            "agree: gwlog = mtail = corpus truth."
            if agree
            else "DISAGREE: " + ", ".join(f"{k} {sum(v.values()):,}" for k, v in counts.items())
        )
        load = os.getloadavg()[0]
        stamp = (
            f"{datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores (load average {load:.1f} after the runs), "
            f"Python {platform.python_version()}"
        )
        head = (
            f"{stamp}; `python bench/bench_compare.py --lines {args.lines}`: {lines:,} compose-format "
            f"lines ({truth['request_lines']:,} requests), one run each, same corpus. CPU includes pool "
            f"workers; peak RSS is the largest single process. Request counts (total and per user) {verdict}"
        )
        compare = f"{head}\n\n{table([parse_run, *backfill_runs, mtail_run], mtail_run, lines)}"
        p, b2 = parse_run.lines_per_s(lines), backfill_runs[1].lines_per_s(lines)
        m = mtail_run.lines_per_s(lines)
        parse_ok = p >= 4 * m and parse_run.rss_mib <= 64
        targets = (
            f"Targets: parse ≥ 4× mtail with peak RSS ≤ 64 MiB → {p / m:.1f}×, {parse_run.rss_mib:.1f} MiB "
            f"({'met' if parse_ok else 'NOT met'}); backfill --jobs 2 ≥ 8× mtail → {b2 / m:.1f}× "
            f"({'met' if b2 >= 8 * m else 'NOT met'})."
        )
        backfill_body = (
            f"{stamp}; same corpus and run as above"
            + ("" if cli else " (backfill run through the library: the CLI had no `backfill` command yet)")
            + f".\n\n{table(backfill_runs, mtail_run, lines)}\n\n"
            f"Speed-up from 1 to 2 jobs: {backfill_runs[0].wall_s / backfill_runs[1].wall_s:.2f}×. {targets}"
        )
        print(compare, "\n", backfill_body, sep="\n")
        if not args.no_docs:
            doc = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
            doc = update_section(doc, "## gwlog vs mtail", compare + "\n\n" + targets)
            DOCS.write_text(update_section(doc, "## Backfill", backfill_body))
        return 0 if agree else 1
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
