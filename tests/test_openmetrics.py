"""OpenMetrics history: exact text, merge order, and a real promtool → Prometheus round trip."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gwlog.openmetrics import History
from tests.promhelpers import PromServer, start_prometheus

STEP_A = """# HELP gwlog_requests_total Requests.
# TYPE gwlog_requests_total counter
gwlog_requests_total{user="alice",status="200"} 2.0
gwlog_requests_total{user="b\\"ob",status="500"} 0.0
# HELP gwlog_cost_usd_total Cost.
# TYPE gwlog_cost_usd_total counter
gwlog_cost_usd_total{user="alice"} 0.1
# HELP gwlog_request_duration_seconds Latency.
# TYPE gwlog_request_duration_seconds histogram
gwlog_request_duration_seconds_bucket{model="m",le="0.5"} 1.0
gwlog_request_duration_seconds_bucket{model="m",le="+Inf"} 2.0
gwlog_request_duration_seconds_count{model="m"} 2.0
gwlog_request_duration_seconds_sum{model="m"} 1.25
# HELP gwlog_last_event_timestamp_seconds Gauge, not history.
# TYPE gwlog_last_event_timestamp_seconds gauge
gwlog_last_event_timestamp_seconds 1.0e9
"""
STEP_C = """# TYPE gwlog_requests_total counter
gwlog_requests_total{user="alice",status="200"} 1.0
gwlog_requests_total{user="b\\"ob",status="500"} 3.0
# TYPE gwlog_cost_usd_total counter
gwlog_cost_usd_total{user="alice"} 0.2
"""


def test_cumulative_points_sorted_per_family_and_series() -> None:
    history = History(60)
    history.add_exposition(100, STEP_A)
    history.add_exposition(102, STEP_C)
    out = io.StringIO()
    written = history.write(out, extra_labels={"job": "gwlog"})
    assert out.getvalue() == (
        "# HELP gwlog_cost_usd Cost.\n"
        "# TYPE gwlog_cost_usd counter\n"
        'gwlog_cost_usd_total{job="gwlog",user="alice"} 0 6000\n'
        'gwlog_cost_usd_total{job="gwlog",user="alice"} 0.1 6060\n'
        'gwlog_cost_usd_total{job="gwlog",user="alice"} 0.1 6120\n'
        'gwlog_cost_usd_total{job="gwlog",user="alice"} 0.3 6180\n'
        "# HELP gwlog_request_duration_seconds Latency.\n"
        "# TYPE gwlog_request_duration_seconds histogram\n"
        'gwlog_request_duration_seconds_bucket{job="gwlog",model="m",le="0.5"} 0 6000\n'
        'gwlog_request_duration_seconds_bucket{job="gwlog",model="m",le="+Inf"} 0 6000\n'
        'gwlog_request_duration_seconds_count{job="gwlog",model="m"} 0 6000\n'
        'gwlog_request_duration_seconds_sum{job="gwlog",model="m"} 0 6000\n'
        'gwlog_request_duration_seconds_bucket{job="gwlog",model="m",le="0.5"} 1 6060\n'
        'gwlog_request_duration_seconds_bucket{job="gwlog",model="m",le="+Inf"} 2 6060\n'
        'gwlog_request_duration_seconds_count{job="gwlog",model="m"} 2 6060\n'
        'gwlog_request_duration_seconds_sum{job="gwlog",model="m"} 1.25 6060\n'
        'gwlog_request_duration_seconds_bucket{job="gwlog",model="m",le="0.5"} 1 6120\n'
        'gwlog_request_duration_seconds_bucket{job="gwlog",model="m",le="+Inf"} 2 6120\n'
        'gwlog_request_duration_seconds_count{job="gwlog",model="m"} 2 6120\n'
        'gwlog_request_duration_seconds_sum{job="gwlog",model="m"} 1.25 6120\n'
        'gwlog_request_duration_seconds_bucket{job="gwlog",model="m",le="0.5"} 1 6180\n'
        'gwlog_request_duration_seconds_bucket{job="gwlog",model="m",le="+Inf"} 2 6180\n'
        'gwlog_request_duration_seconds_count{job="gwlog",model="m"} 2 6180\n'
        'gwlog_request_duration_seconds_sum{job="gwlog",model="m"} 1.25 6180\n'
        "# HELP gwlog_requests Requests.\n"
        "# TYPE gwlog_requests counter\n"
        'gwlog_requests_total{job="gwlog",user="alice",status="200"} 0 6000\n'
        'gwlog_requests_total{job="gwlog",user="alice",status="200"} 2 6060\n'
        'gwlog_requests_total{job="gwlog",user="alice",status="200"} 2 6120\n'
        'gwlog_requests_total{job="gwlog",user="alice",status="200"} 3 6180\n'
        'gwlog_requests_total{job="gwlog",user="b\\"ob",status="500"} 0 6120\n'
        'gwlog_requests_total{job="gwlog",user="b\\"ob",status="500"} 3 6180\n'
        "# EOF\n"
    )
    assert written == 26


def test_merge_is_order_independent() -> None:
    one, two, both_ab, both_ba = History(60), History(60), History(60), History(60)
    one.add_exposition(100, STEP_A)
    two.add_exposition(102, STEP_C)
    two.add_exposition(100, STEP_C)
    both_ab.merge(one)
    both_ab.merge(two)
    both_ba.merge(two)
    both_ba.merge(one)
    a, b = io.StringIO(), io.StringIO()
    both_ab.write(a)
    both_ba.write(b)
    assert a.getvalue() == b.getvalue()
    assert 'gwlog_requests_total{user="alice",status="200"} 3 6060\n' in a.getvalue()


# -- the real thing: backfill → promtool tsdb create-blocks-from openmetrics → Prometheus -------

USERS = ("alice@example.com", "bob@example.com", "carol@example.com")


def line(ts: float, n: int) -> str:
    when = datetime.fromtimestamp(ts, UTC)
    provider = "openai" if n % 3 else "anthropic"
    status = 503 if n % 11 == 5 else 200
    return (
        f"agentgateway-1  | {when:%Y-%m-%dT%H:%M:%S}.{when.microsecond}Z\tinfo\trequest "
        f"gateway=default/default listener=llm route=default/{provider} endpoint=api.{provider}.com:443 "
        f"src.addr=172.18.0.7:38810 "
        f"http.method=POST http.host=agentgateway:4000 http.path=/v1/chat/completions http.version=HTTP/1.1 "
        f"http.status={status} protocol=llm gen_ai.operation.name=chat gen_ai.provider.name={provider} "
        f"gen_ai.request.model=gpt-4o gen_ai.usage.input_tokens={100 + n} gen_ai.usage.output_tokens=7 "
        f'duration={50 + n % 400}ms user.email="{USERS[n % 3]}"'
    )


def start_prometheus_on(data_dir: Path, tmp_path: Path) -> PromServer:
    """Prometheus over an existing TSDB directory, 10y retention so backfilled blocks stay."""
    return start_prometheus(tmp_path, [], scrape_interval="1m", data_dir=data_dir, retention="10y")


def test_promtool_blocks_answer_prometheus_queries_exactly(tmp_path: Path) -> None:
    from gwlog.backfill import backfill

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not installed: run .ci/install-system-packages (make test does)")
    # 600 requests 15 s apart (2.5 h), ending ≥ 5 h ago: entirely outside promtool's head window.
    start = (int(time.time()) // 3600 - 8) * 3600 + 7.25
    stamps = [start + 15 * n for n in range(600)]
    log = tmp_path / "old.log"
    log.write_text("".join(line(ts, n) + "\n" for n, ts in enumerate(stamps)))
    om = tmp_path / "history.om"
    result = backfill([log], openmetrics=om, resolution_s=60, jobs=1, progress=False)
    assert result.events == 600 and not result.problems
    data = tmp_path / "tsdb"
    run = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(om), str(data)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    prom = start_prometheus_on(data, tmp_path)
    try:
        for t in (int(start // 60 + 90) * 60, int(start // 60 + 150) * 60):  # step ends, 1.5 h / 2.5 h in
            before = [n for n, ts in enumerate(stamps) if ts < t]
            window = [n for n, ts in enumerate(stamps) if t - 3600 <= ts < t]

            def value(expr: str, at: int = t) -> float:
                rows = prom.api("/api/v1/query", query=expr, time=str(at))["result"]
                assert len(rows) == 1, (expr, rows)
                return float(rows[0]["value"][1])

            assert value("sum(gwlog_requests_total)") == len(before)
            assert value("sum(gwlog_request_duration_seconds_count)") == len(before)
            assert value('sum(gwlog_tokens_total{type="input"})') == sum(100 + n for n in before)
            assert value("sum(increase(gwlog_requests_total[1h]))") == len(window)
            assert value('sum(increase(gwlog_requests_total{status="503"}[1h]))') == sum(
                1 for n in window if n % 11 == 5
            )
            by_user = prom.api("/api/v1/query", query="sum by (user) (gwlog_requests_total)", time=str(t))
            assert {r["metric"]["user"]: float(r["value"][1]) for r in by_user["result"]} == Counter(
                USERS[n % 3] for n in before
            )
        # a range query: the cumulative count at every step end equals the events before it
        lo, hi = int(start // 60 + 1) * 60, int(stamps[-1] // 60 + 1) * 60
        matrix = prom.api("/api/v1/query_range", query="sum(gwlog_requests_total)",
                          start=str(lo), end=str(hi), step="600")["result"]  # fmt: skip
        points = {int(ts): float(v) for ts, v in matrix[0]["values"]}
        assert points == {t: sum(1 for s in stamps if s < t) for t in range(lo, hi + 1, 600)}
    finally:
        prom.stop()
