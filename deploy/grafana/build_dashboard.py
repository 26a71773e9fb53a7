#!/usr/bin/env python3
"""Generate deploy/grafana/dashboards/gwlog-user-team.json ("User & Team Analytics").

The JSON is committed; this script is its source. Edit here, then run
    python deploy/grafana/build_dashboard.py          # rewrite the JSON
    python deploy/grafana/build_dashboard.py --check  # exit 1 if the JSON is out of date
tests/test_dashboard_queries.py runs every query of the JSON against a real Prometheus scraping gwlog.

Variables: $datasource, $team, $user, $provider, $model (multi-value, "All" = regex ".*").
What the metrics cannot answer: gwlog_request_duration_seconds has no `user` label (per-user latency
histograms would multiply series by users x buckets), so latency is shown per team, provider and model;
per-user latency comes from the JSONL archive (`gwlog report`), not from Prometheus.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dashboards" / "gwlog-user-team.json"
DS = {"type": "prometheus", "uid": "${datasource}"}

# Label filters. The duration histogram has no user label, TTFT has only provider/model.
F = 'user=~"$user",team=~"$team",provider=~"$provider",model=~"$model"'
F_DUR = 'team=~"$team",provider=~"$provider",model=~"$model"'
F_TTFT = 'provider=~"$provider",model=~"$model"'
ERR = 'status=~"4..|5.."'

_next_id = 0


def _id() -> int:
    global _next_id
    _next_id += 1
    return _next_id


def target(
    expr: str, legend: str = "", ref: str = "A", instant: bool = False, fmt: str = "time_series"
) -> dict:
    t = {"datasource": DS, "expr": expr, "refId": ref, "legendFormat": legend or "__auto", "format": fmt}
    if instant:
        t.update(instant=True, range=False)
    else:
        t.update(instant=False, range=True)
    return t


def panel(
    kind: str, title: str, x: int, y: int, w: int, h: int, targets: list[dict], **extra: object
) -> dict:
    p: dict = {
        "id": _id(),
        "type": kind,
        "title": title,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "options": {},
        "fieldConfig": {"defaults": {}, "overrides": []},
    }
    unit = extra.pop("unit", None)
    if unit:
        p["fieldConfig"]["defaults"]["unit"] = unit
    p.update(extra)
    return p


def row(title: str, y: int) -> dict:
    return {
        "id": _id(),
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def stacked(p: dict, bars: bool = False, percent: bool = False) -> dict:
    custom = {
        "stacking": {"mode": "percent" if percent else "normal", "group": "A"},
        "fillOpacity": 60 if bars else 25,
    }
    if bars:
        custom["drawStyle"] = "bars"
    p["fieldConfig"]["defaults"]["custom"] = custom
    return p


def share_pie(title: str, by: str, y: int, pie_type: str) -> dict:
    """A pie of each ``by`` value's share of requests over the dashboard's time range."""
    return panel(
        "piechart",
        title,
        0,
        y,
        8,
        9,
        [target(f"sum by ({by}) (increase(gwlog_requests_total{{{F}}}[$__range]))", f"{{{{{by}}}}}", instant=True)],
        options={
            "pieType": pie_type,
            "legend": {"displayMode": "table", "placement": "right", "values": ["percent"]},
            "reduceOptions": {"calcs": ["lastNotNull"]},
        },
    )


def variable(name: str, label: str, metric: str, label_name: str) -> dict:
    q = f"label_values({metric}, {label_name})"
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": q, "refId": f"var-{name}"},
        "definition": q,
        "refresh": 2,  # on time range change
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def build() -> dict:
    global _next_id
    _next_id = 0
    panels: list[dict] = []
    y = 0

    # ---- overview ---------------------------------------------------------------------------
    panels.append(row("Overview (selected time range)", y))
    y += 1
    stats = [
        ("Requests", f"sum(increase(gwlog_requests_total{{{F}}}[$__range]))", "short"),
        ("Tokens", f"sum(increase(gwlog_tokens_total{{{F}}}[$__range]))", "short"),
        ("Cost", f"sum(increase(gwlog_cost_usd_total{{{F}}}[$__range]))", "currencyUSD"),
        (
            "Active users",
            f"count(sum by (user) (increase(gwlog_requests_total{{{F}}}[$__range])) > 0)",
            "short",
        ),
        ("Spend, last 24 h", f"sum(increase(gwlog_cost_usd_total{{{F}}}[24h]))", "currencyUSD"),
        ("Spend, last 30 days", f"sum(increase(gwlog_cost_usd_total{{{F}}}[30d]))", "currencyUSD"),
    ]
    for i, (title, expr, unit) in enumerate(stats):
        panels.append(
            panel(
                "stat",
                title,
                4 * i,
                y,
                4,
                4,
                [target(expr, instant=True)],
                unit=unit,
                options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"},
            )
        )
    y += 4

    # ---- users ------------------------------------------------------------------------------
    panels.append(row("Users", y))
    y += 1
    panels.append(
        panel(
            "timeseries",
            "Requests per second by user",
            0,
            y,
            12,
            8,
            [target(f"sum by (user) (rate(gwlog_requests_total{{{F}}}[$__rate_interval]))", "{{user}}")],
            unit="reqps",
        )
    )
    panels.append(
        panel(
            "bargauge",
            "Total requests, last 24 h, by user",
            12,
            y,
            12,
            8,
            [
                target(
                    f"sort_desc(round(sum by (user) (increase(gwlog_requests_total{{{F}}}[24h]))))",
                    "{{user}}",
                    instant=True,
                )
            ],
            unit="short",
            options={
                "orientation": "horizontal",
                "displayMode": "gradient",
                "reduceOptions": {"calcs": ["lastNotNull"]},
            },
        )
    )
    y += 8
    panels.append(share_pie("User activity distribution (share of requests)", "user", y, "donut"))
    panels.append(
        stacked(
            panel(
                "timeseries",
                "User activity by provider, hourly (requests per hour)",
                8,
                y,
                16,
                9,
                [
                    target(
                        f"sum by (provider) (increase(gwlog_requests_total{{{F}}}[$__interval]))",
                        "{{provider}}",
                    )
                ],
                interval="1h",
                unit="short",
            ),
            bars=True,
        )
    )
    y += 9
    panels.append(
        panel(
            "timeseries",
            "Errors by user (4xx/5xx per second)",
            0,
            y,
            12,
            8,
            [
                target(
                    f"sum by (user) (rate(gwlog_requests_total{{{F},{ERR}}}[$__rate_interval]))"
                    f" or 0 * sum by (user) (rate(gwlog_requests_total{{{F}}}[$__rate_interval]))",
                    "{{user}}",
                )
            ],
            unit="reqps",
        )
    )
    panels.append(
        panel(
            "bargauge",
            "Error % by user (selected range)",
            12,
            y,
            6,
            8,
            [
                target(
                    f"100 * (sum by (user) (increase(gwlog_requests_total{{{F},{ERR}}}[$__range]))"
                    f" or 0 * sum by (user) (increase(gwlog_requests_total{{{F}}}[$__range])))"
                    f" / sum by (user) (increase(gwlog_requests_total{{{F}}}[$__range]))",
                    "{{user}}",
                    instant=True,
                )
            ],
            unit="percent",
            options={"orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}},
        )
    )
    panels.append(
        panel(
            "text",
            "Response time per user?",
            18,
            y,
            6,
            8,
            [],
            options={
                "mode": "markdown",
                "content": (
                    "**p95 response time by user is not available from these metrics.** "
                    "`gwlog_request_duration_seconds` is labelled by team, provider and model only: "
                    "a per-user histogram would cost users × buckets series. The panels below show "
                    "p95 **by team** and **by model** (a user's latency is mostly the model's). "
                    "Per-user latency: "
                    "`gwlog report <archive.jsonl> --by user` over the JSONL archive."
                ),
            },
        )
    )
    y += 8

    # ---- providers and models ----------------------------------------------------------------
    panels.append(row("Providers, models and latency", y))
    y += 1
    panels.append(share_pie("Provider usage distribution", "provider", y, "pie"))
    panels.append(
        stacked(
            panel(
                "timeseries",
                "Provider share over time",
                8,
                y,
                16,
                9,
                [
                    target(
                        f"sum by (provider) (rate(gwlog_requests_total{{{F}}}[$__rate_interval]))"
                        f" / on() group_left() sum(rate(gwlog_requests_total{{{F}}}[$__rate_interval]))",
                        "{{provider}}",
                    )
                ],
                unit="percentunit",
            )
        )
    )
    y += 9
    panels.append(
        panel(
            "timeseries",
            "p95 response time by team",
            0,
            y,
            8,
            8,
            [
                target(
                    "histogram_quantile(0.95, sum by (le, team) "
                    f"(rate(gwlog_request_duration_seconds_bucket{{{F_DUR}}}[$__rate_interval])))",
                    "{{team}}",
                )
            ],
            unit="s",
        )
    )
    panels.append(
        panel(
            "timeseries",
            "p95 response time by model",
            8,
            y,
            8,
            8,
            [
                target(
                    "histogram_quantile(0.95, sum by (le, provider, model) "
                    f"(rate(gwlog_request_duration_seconds_bucket{{{F_DUR}}}[$__rate_interval])))",
                    "{{provider}}/{{model}}",
                )
            ],
            unit="s",
        )
    )
    panels.append(
        panel(
            "timeseries",
            "p95 time to first token by model",
            16,
            y,
            8,
            8,
            [
                target(
                    "histogram_quantile(0.95, sum by (le, provider, model) "
                    f"(rate(gwlog_time_to_first_token_seconds_bucket{{{F_TTFT}}}[$__rate_interval])))",
                    "{{provider}}/{{model}}",
                )
            ],
            unit="s",
        )
    )
    y += 8
    panels.append(
        panel(
            "bargauge",
            "Average response time by team (selected range)",
            0,
            y,
            12,
            7,
            [
                target(
                    f"sum by (team) (increase(gwlog_request_duration_seconds_sum{{{F_DUR}}}[$__range]))"
                    f" / sum by (team) (increase(gwlog_request_duration_seconds_count{{{F_DUR}}}[$__range]))",
                    "{{team}}",
                    instant=True,
                )
            ],
            unit="s",
            options={"orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}},
        )
    )
    panels.append(
        panel(
            "bargauge",
            "Requests by model (selected range)",
            12,
            y,
            12,
            7,
            [
                target(
                    f"sort_desc(sum by (provider, model) (increase(gwlog_requests_total{{{F}}}[$__range])))",
                    "{{provider}}/{{model}}",
                    instant=True,
                )
            ],
            unit="short",
            options={"orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}},
        )
    )
    y += 7

    # ---- teams, tokens, cost -------------------------------------------------------------------
    panels.append(row("Teams, tokens and cost", y))
    y += 1
    panels.append(
        stacked(
            panel(
                "timeseries",
                "Tokens by team (tokens per second)",
                0,
                y,
                12,
                8,
                [target(f"sum by (team) (rate(gwlog_tokens_total{{{F}}}[$__rate_interval]))", "{{team}}")],
                unit="short",
            )
        )
    )
    panels.append(
        stacked(
            panel(
                "timeseries",
                "Cost by team (USD per hour)",
                12,
                y,
                12,
                8,
                [
                    target(
                        f"3600 * sum by (team) (rate(gwlog_cost_usd_total{{{F}}}[$__rate_interval]))",
                        "{{team}}",
                    )
                ],
                unit="currencyUSD",
            )
        )
    )
    y += 8
    panels.append(
        panel(
            "bargauge",
            "Tokens by type (selected range)",
            0,
            y,
            8,
            7,
            [
                target(
                    f"sum by (type) (increase(gwlog_tokens_total{{{F}}}[$__range]))", "{{type}}", instant=True
                )
            ],
            unit="short",
            options={"orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}},
        )
    )
    panels.append(
        panel(
            "bargauge",
            "Cost by team (selected range)",
            8,
            y,
            8,
            7,
            [
                target(
                    f"sort_desc(sum by (team) (increase(gwlog_cost_usd_total{{{F}}}[$__range])))",
                    "{{team}}",
                    instant=True,
                )
            ],
            unit="currencyUSD",
            options={"orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}},
        )
    )
    panels.append(
        panel(
            "bargauge",
            "Cost by user (selected range)",
            16,
            y,
            8,
            7,
            [
                target(
                    f"sort_desc(sum by (user) (increase(gwlog_cost_usd_total{{{F}}}[$__range])))",
                    "{{user}}",
                    instant=True,
                )
            ],
            unit="currencyUSD",
            options={"orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}},
        )
    )
    y += 7

    # ---- detail table -------------------------------------------------------------------------
    panels.append(row("Detail", y))
    y += 1
    by = "user, team, provider, model"
    req = f"sum by ({by}) (increase(gwlog_requests_total{{{F}}}[$__range]))"
    panels.append(
        panel(
            "table",
            "Usage by user, team, provider and model (selected range)",
            0,
            y,
            24,
            12,
            [
                target(req, ref="A", instant=True, fmt="table"),
                target(
                    f"sum by ({by}) (increase(gwlog_tokens_total{{{F}}}[$__range]))",
                    ref="B",
                    instant=True,
                    fmt="table",
                ),
                target(
                    f"sum by ({by}) (increase(gwlog_cost_usd_total{{{F}}}[$__range]))",
                    ref="C",
                    instant=True,
                    fmt="table",
                ),
                target(
                    f"100 * (sum by ({by}) (increase(gwlog_requests_total{{{F},{ERR}}}[$__range]))"
                    f" or 0 * {req}) / {req}",
                    ref="D",
                    instant=True,
                    fmt="table",
                ),
            ],
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "indexByName": {
                            "user": 0,
                            "team": 1,
                            "provider": 2,
                            "model": 3,
                            "Value #A": 4,
                            "Value #B": 5,
                            "Value #C": 6,
                            "Value #D": 7,
                        },
                        "renameByName": {
                            "Value #A": "Requests",
                            "Value #B": "Tokens",
                            "Value #C": "Cost (USD)",
                            "Value #D": "Error %",
                        },
                    },
                },
                {"id": "sortBy", "options": {"sort": [{"field": "Cost (USD)", "desc": True}]}},
            ],
            options={"showHeader": True, "footer": {"show": True, "reducer": ["sum"], "fields": ""}},
        )
    )
    y += 12

    # ---- gwlog health -------------------------------------------------------------------------
    # The tail-only gauges/counters (lag, checkpoint age, rotations, data lost, open files) do not
    # exist under `gwlog parse`; `or on() vector(0)` shows 0 instead of "No data" there.
    panels.append(row("gwlog health", y))
    y += 1
    health_stats = [
        ("gwlog targets up", 'sum(up{job="gwlog"})', "short"),
        ("Seconds since last request", "time() - max(gwlog_last_event_timestamp_seconds)", "s"),
        ("Checkpoint age", "max(gwlog_checkpoint_age_seconds) or on() vector(0)", "s"),
        ("Data lost (range)", "sum(increase(gwlog_data_lost_total[$__range])) or on() vector(0)", "short"),
        (
            "Archive errors (range)",
            "sum(increase(gwlog_archive_errors_total[$__range])) or on() vector(0)",
            "short",
        ),
        (
            "Unpriced requests (range)",
            "sum(increase(gwlog_unpriced_requests_total[$__range])) or on() vector(0)",
            "short",
        ),
    ]
    for i, (title, expr, unit) in enumerate(health_stats):
        panels.append(
            panel(
                "stat",
                title,
                4 * i,
                y,
                4,
                4,
                [target(expr, instant=True)],
                unit=unit,
                options={"reduceOptions": {"calcs": ["lastNotNull"]}},
            )
        )
    y += 4
    panels.append(
        panel(
            "timeseries",
            "Lines per second by outcome",
            0,
            y,
            8,
            8,
            [target("sum by (outcome) (rate(gwlog_lines_total[$__rate_interval]))", "{{outcome}}")],
            unit="short",
        )
    )
    panels.append(
        panel(
            "timeseries",
            "Source lag (bytes not yet read)",
            8,
            y,
            8,
            8,
            [
                target(
                    "sum by (instance, source) (gwlog_source_lag_bytes) or on() vector(0)",
                    "{{instance}} {{source}}",
                )
            ],
            unit="bytes",
        )
    )
    panels.append(
        panel(
            "timeseries",
            "Rotations, series overflow, open files",
            16,
            y,
            8,
            8,
            [
                target(
                    "sum(rate(gwlog_rotations_total[$__rate_interval])) or on() vector(0)", "rotations/s", "A"
                ),
                target(
                    "sum by (label) (rate(gwlog_series_overflow_total[$__rate_interval])) or on() vector(0)",
                    "overflow {{label}}/s",
                    "B",
                ),
                target("sum(gwlog_open_files) or on() vector(0)", "open files", "C"),
            ],
        )
    )
    y += 8
    panels.append(
        panel(
            "timeseries",
            "gwlog process: CPU and memory",
            0,
            y,
            12,
            7,
            [
                target(
                    'rate(process_cpu_seconds_total{job="gwlog"}[$__rate_interval])', "{{instance}} CPU", "A"
                ),
                target('process_resident_memory_bytes{job="gwlog"} / 2^20', "{{instance}} RSS MiB", "B"),
            ],
        )
    )
    panels.append(
        panel(
            "table",
            "gwlog versions",
            12,
            y,
            12,
            7,
            [target("gwlog_build_info", instant=True, fmt="table")],
            transformations=[
                {
                    "id": "organize",
                    "options": {"excludeByName": {"Time": True, "Value": True, "__name__": True}},
                }
            ],
        )
    )

    return {
        "uid": "gwlog-user-team",
        "title": "User & Team Analytics",
        "description": "LLM usage per user, team, provider and model from AgentGateway access logs (gwlog).",
        "tags": ["gwlog", "agentgateway", "llm"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-24h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                variable("team", "Team", "gwlog_requests_total", "team"),
                variable("user", "User", 'gwlog_requests_total{team=~"$team"}', "user"),
                variable("provider", "Provider", "gwlog_requests_total", "provider"),
                variable("model", "Model", 'gwlog_requests_total{provider=~"$provider"}', "model"),
            ]
        },
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
