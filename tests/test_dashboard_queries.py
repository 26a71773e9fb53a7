"""Every query of the Grafana dashboard runs against a real Prometheus scraping a real `gwlog parse`.

Grafana cannot run here, so the dashboard is validated at the level where it usually breaks: its
PromQL. Each panel target and each variable query is extracted from the committed JSON, Grafana's
variables are substituted ($user -> `.*`, $__rate_interval -> 1m, $__range -> 1h, ...), and the
query goes to Prometheus' HTTP API. Prometheus (loopback, free port, 1 s scrapes) scrapes
`gwlog parse --listen 127.0.0.1:PORT` fed with samples/compose.log in two halves, so rate() and
increase() see the counters move. A query passes when it is valid and returns at least one sample.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.promhelpers import PromServer, free_port, start_prometheus

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "gwlog-user-team.json"
BUILDER = ROOT / "deploy" / "grafana" / "build_dashboard.py"
# GWLOG_DASHBOARD_SAMPLE: run the live test on another compose-format log.
SAMPLE = Path(os.environ.get("GWLOG_DASHBOARD_SAMPLE") or ROOT / "samples" / "compose.log")
ARCHITECTURE = ROOT / "docs" / "architecture.md"
RULES = [
    ROOT / "deploy" / "prometheus" / "recording_rules.yml",
    ROOT / "deploy" / "prometheus" / "alert_rules.yml",
]

# What Grafana would substitute. Multi-value "All" is the allValue ".*".
SUBSTITUTIONS = {
    "user": ".*",
    "team": ".*",
    "provider": ".*",
    "model": ".*",
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
# Metrics that only `gwlog tail` sets; their panels fall back to `or on() vector(0)` under `parse`.
TAIL_ONLY = (
    "gwlog_source_lag_bytes",
    "gwlog_checkpoint_age_seconds",
    "gwlog_rotations_total",
    "gwlog_open_files",
    "gwlog_data_lost_total",
    "gwlog_archive_errors_total",
)


def substitute(expr: str) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in SUBSTITUTIONS:
            raise KeyError(f"no substitution for ${name} in {expr!r}")
        return SUBSTITUTIONS[name]

    # longest names first is implicit: the regex takes the whole identifier
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)


def label_values_to_promql(query: str) -> str:
    """Grafana's label_values(metric{sel}, label) as an equivalent PromQL query."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query)
    assert m, f"unsupported variable query {query!r}"
    return f"count by ({m.group(2)}) ({m.group(1)})"


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable, variables substituted."""
    dash = json.loads(DASHBOARD.read_text())
    out: list[tuple[str, str]] = []

    def walk(panels: list[dict]) -> None:
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                out.append((f"panel {p['title']!r} {t['refId']}", substitute(t["expr"])))

    walk(dash["panels"])
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            out.append((f"variable ${v['name']}", substitute(label_values_to_promql(q))))
    return out


# ---- static checks (no Prometheus) -----------------------------------------------------------


def test_dashboard_json_is_generated_from_the_builder() -> None:
    r = subprocess.run([sys.executable, str(BUILDER), "--check"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_dashboard_structure() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["title"] == "User & Team Analytics"
    names = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "user", "team", "provider"} <= names
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    titles = " | ".join(p["title"] for p in dash["panels"]).lower()
    for wanted in (
        "requests per second by user",
        "total requests, last 24 h, by user",
        "provider usage distribution",
        "user activity distribution",
        "user activity by provider, hourly",
        "usage by user, team, provider",
        "p95 response time by team",
        "p95 response time by model",
        "provider share over time",
        "tokens by team",
        "cost by team",
        "errors by user",
        "gwlog health",
    ):
        assert wanted in titles, f"missing panel {wanted!r}"
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        if p["type"] not in ("row", "text"):
            assert p["targets"], f"panel {p['title']!r} has no query"
            assert p["datasource"]["uid"] == "${datasource}"


def test_every_query_substitutes_cleanly() -> None:
    queries = dashboard_queries()
    assert len(queries) >= 30
    for where, expr in queries:
        assert "$" not in expr, f"{where}: unsubstituted variable in {expr!r}"


def _metric_names(text: str) -> set[str]:
    names = set(re.findall(r"\bgwlog_[a-z_]+", text))
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}


def test_dashboard_and_rules_use_only_documented_metrics() -> None:
    documented = ARCHITECTURE.read_text()
    text = DASHBOARD.read_text() + "".join(r.read_text() for r in RULES)
    for name in sorted(_metric_names(text)):
        short = name.removeprefix("gwlog_")
        assert f"`{short}" in documented or f" {short}" in documented or f"{short}{{" in documented, (
            f"{name} is not in docs/architecture.md's series list"
        )


# ---- live: real gwlog + real Prometheus ------------------------------------------------------


def _gwlog() -> list[str]:
    exe = Path(sys.executable).with_name("gwlog")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "gwlog"]


def _stable_value(prom: PromServer, expr: str, above: float, timeout: float = 30.0) -> float:
    """Wait until `expr` is > above and unchanged for 2 s (gwlog has digested what it was fed)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        rows = prom.query(expr)
        value = float(rows[0]["value"][1]) if rows else None
        if value != last:
            last, since = value, time.monotonic()
        elif value is not None and value > above and time.monotonic() - since >= 2.0:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{expr} never settled above {above}: last={last}\ntargets={prom.targets()}")


def test_every_dashboard_query_returns_data(tmp_path: Path) -> None:
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 4, "sample too small to split in two halves"
    half = len(lines) // 2

    port = free_port()
    log = (tmp_path / "gwlog.log").open("wb")
    gw = subprocess.Popen(
        [*_gwlog(), "parse", "--listen", f"127.0.0.1:{port}"],
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    prom = start_prometheus(tmp_path / "prom", targets=[f"127.0.0.1:{port}"], scrape_interval="1s")
    try:
        assert gw.stdin is not None
        # First half, at least two scrapes with it, then the second half: counters move between
        # scrapes, so rate()/increase()/histogram_quantile() have something to compute.
        gw.stdin.write(b"".join(lines[:half]))
        gw.stdin.flush()
        first = _stable_value(prom, "sum(gwlog_lines_total)", above=0)
        gw.stdin.write(b"".join(lines[half:]))
        gw.stdin.flush()
        _stable_value(prom, "sum(gwlog_lines_total)", above=first)
        prom.wait_for_scrapes(2, timeout=30)

        empty, errors, fallback_only = [], [], []
        queries = dashboard_queries()
        for where, expr in queries:
            try:
                rows = prom.query(expr)
            except AssertionError as e:  # HTTP 400: invalid PromQL
                errors.append(f"{where}: {e}")
                continue
            if not rows:
                empty.append(f"{where}: {expr}")
            elif "or on() vector(0)" in expr and any(m in expr for m in TAIL_ONLY):
                primary = expr.split(" or on() vector(0)")[0]
                if not prom.query(primary):
                    fallback_only.append(where)
        if fallback_only:
            print(
                f"\n{len(fallback_only)} tail-only panels showed their 0 fallback under `gwlog parse`:",
                *fallback_only,
                sep="\n  ",
            )
        assert not errors, "invalid queries:\n" + "\n".join(errors)
        assert not empty, f"{len(empty)} of {len(queries)} dashboard queries returned no data:\n" + "\n".join(empty)
    finally:
        prom.stop()
        if gw.stdin is not None:
            gw.stdin.close()
        gw.terminate()
        try:
            gw.wait(10)
        except subprocess.TimeoutExpired:
            gw.kill()
        log.close()
        if gw.returncode not in (0, -15, 143):
            print((tmp_path / "gwlog.log").read_text(errors="replace")[-3000:])
