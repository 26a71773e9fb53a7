"""gwlog report: numbers checked against values computed by hand from a six-request archive."""

from __future__ import annotations

import csv
import gzip
import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from gwlog.events import ARCHIVE_FIELDS
from gwlog.report import build_report, is_archive, iter_records, percentile, to_csv, to_json


def rec(ts: str, user: str | None, team: str | None, provider: str, model: str, status: int, **kw: Any) -> dict:
    r: dict[str, Any] = dict.fromkeys(ARCHIVE_FIELDS)
    r.update(id=f"{ts}{user}", ts=ts, user=user, team=team, provider=provider, model=model, status=status)
    r["fields"] = {}
    r.update(kw)
    return r


RECORDS = [
    rec("2026-08-01T10:00:00.000000Z", "alice", "a", "openai", "gpt-4o", 200,
        input_tokens=100, output_tokens=50, cost_usd="0.010", duration_ms=100),
    rec("2026-08-01T11:00:00.000000Z", "alice", "a", "openai", "gpt-4o", 200,
        input_tokens=200, output_tokens=20, cache_read_tokens=50, cost_usd="0.020", duration_ms=300),
    rec("2026-08-01T12:00:00.000000Z", "alice", "a", "anthropic", "claude", 500,
        input_tokens=10, output_tokens=0, error="upstream reset", duration_ms=1000),
    rec("2026-08-01T13:00:00.000000Z", "bob", "b", "openai", "gpt-4o-mini", 429, duration_ms=50),
    rec("2026-08-02T09:00:00.000000Z", "bob", "b", "openai", "gpt-4o-mini", 200,
        input_tokens=30, output_tokens=30, cost_usd="0.001", duration_ms=200),
    rec("2026-08-02T10:00:00.000000Z", None, None, "openai", "gpt-4o-mini", 200,
        input_tokens=5, output_tokens=5, cost_usd="0.0005"),
]  # fmt: skip


def test_percentile_nearest_rank() -> None:
    assert percentile(list(range(1, 21)), 95) == 19  # ceil(0.95 × 20) = 19th smallest
    assert percentile([50, 200], 95) == 200  # ceil(1.9) = 2
    assert percentile([7], 95) == 7
    assert percentile([], 95) is None


def test_by_user_hand_computed() -> None:
    report = build_report(RECORDS, by="user")
    rows = {r.group: r for r in report.rows}
    assert [r.group for r in report.rows] == ["alice", "bob", "unknown"]  # by cost, descending
    alice, bob, unknown = rows["alice"], rows["bob"], rows["unknown"]
    assert (alice.requests, alice.errors, alice.unpriced) == (3, 1, 1)
    assert alice.error_rate == pytest.approx(1 / 3)
    assert alice.tokens["input_tokens"] == 310 and alice.tokens["output_tokens"] == 70
    assert alice.tokens["cache_read_tokens"] == 50 and alice.tokens["reasoning_tokens"] == 0
    assert alice.cost_usd == Decimal("0.030")
    assert alice.avg_latency_ms == pytest.approx(1400 / 3)
    assert alice.p95_latency_ms == 1000
    assert (bob.requests, bob.errors, bob.error_rate, bob.cost_usd) == (2, 1, 0.5, Decimal("0.001"))
    assert (bob.avg_latency_ms, bob.p95_latency_ms) == (125, 200)
    assert (unknown.requests, unknown.errors, unknown.cost_usd) == (1, 0, Decimal("0.0005"))
    assert unknown.avg_latency_ms is None and unknown.p95_latency_ms is None
    assert report.records == 6
    assert report.errors_by_user == [("alice", 1, {"500": 1}), ("bob", 1, {"429": 1})]
    assert report.provider_share == {
        "a": {"openai": round(2 / 3, 6), "anthropic": round(1 / 3, 6)},
        "b": {"openai": 1.0},
        "unassigned": {"openai": 1.0},
    }


def test_by_team_day_top_and_window() -> None:
    teams = build_report(RECORDS, by="team")
    assert {r.group: r.requests for r in teams.rows} == {"a": 3, "b": 2, "unassigned": 1}
    assert [r.group for r in teams.top_users] == ["alice", "bob", "unknown"]
    days = build_report(RECORDS, by="day")
    assert [(r.group, r.requests, r.cost_usd) for r in days.rows] == [
        ("2026-08-01", 4, Decimal("0.030")),
        ("2026-08-02", 2, Decimal("0.0015")),
    ]
    assert [r.group for r in build_report(RECORDS, by="model", top=1).rows] == ["gpt-4o"]
    late = build_report(RECORDS, since=datetime(2026, 8, 2, tzinfo=UTC))
    assert late.records == 2
    early = build_report(RECORDS, until=datetime(2026, 8, 1, 12, tzinfo=UTC))
    assert early.records == 2 and early.rows[0].cost_usd == Decimal("0.030")


def test_reprice_hook_replaces_archived_cost() -> None:
    report = build_report(RECORDS, by="provider", reprice=lambda r: Decimal("0.5") if r["input_tokens"] else None)
    rows = {r.group: r for r in report.rows}
    assert rows["openai"].cost_usd == Decimal("2.0") and rows["openai"].unpriced == 1
    assert rows["anthropic"].cost_usd == Decimal("0.5")


def test_json_and_csv_outputs() -> None:
    report = build_report(RECORDS, by="user")
    data = orjson.loads(to_json(report))
    assert data["rows"][0] == {
        "user": "alice", "requests": 3, "errors": 1, "error_rate": 0.333333, "input_tokens": 310,
        "output_tokens": 70, "cache_read_tokens": 50, "cache_write_tokens": 0, "reasoning_tokens": 0,
        "cost_usd": "0.030", "unpriced": 1, "avg_latency_ms": 466.667, "p95_latency_ms": 1000,
    }  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert [(r["user"], r["requests"], r["cost_usd"]) for r in rows] == [
        ("alice", "3", "0.030"), ("bob", "2", "0.001"), ("unknown", "1", "0.0005"),
    ]  # fmt: skip


def test_archive_files_plain_and_gzip(tmp_path: Path) -> None:
    body = b"".join(orjson.dumps(r) + b"\n" for r in RECORDS)
    plain, packed = tmp_path / "events.jsonl", tmp_path / "events.jsonl.gz"
    plain.write_bytes(body[: len(body) // 2 + body[len(body) // 2 :].index(b"\n") + 1])
    packed.write_bytes(gzip.compress(body[len(plain.read_bytes()) :]))
    assert is_archive(plain) and is_archive(packed)
    report = build_report(iter_records([plain, packed]), by="user")
    assert report.records == 6
    assert {r.group: r.cost_usd for r in report.rows} == {
        "alice": Decimal("0.030"), "bob": Decimal("0.001"), "unknown": Decimal("0.0005"),
    }  # fmt: skip


def test_rich_table_renders(tmp_path: Path) -> None:
    from rich.console import Console

    from gwlog.report import render_table

    console = Console(file=io.StringIO(), width=200)
    render_table(build_report(RECORDS, by="team"), console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "top users" in text and "errors by user" in text and "anthropic 33.3%" in text


def test_raw_logs_and_backfill_archive_give_the_same_report(tmp_path: Path) -> None:
    from gwlog.backfill import backfill
    from tests.test_openmetrics import USERS, line

    log = tmp_path / "agw.log"
    log.write_text("".join(line(1.7e9 + 60 * n, n) + "\n" for n in range(66)))
    archive = tmp_path / "events.jsonl.gz"
    backfill([log], archive=archive, jobs=1, progress=False)
    from_logs = build_report(iter_records([log]), by="user")
    from_archive = build_report(iter_records([archive]), by="user")
    assert from_logs.as_dict() == from_archive.as_dict()
    assert {r.group: r.requests for r in from_logs.rows} == dict.fromkeys(USERS, 22)
    assert sum(r.errors for r in from_logs.rows) == 6  # status 503 for n % 11 == 5


def test_reprice_uses_gwlog_pricing(tmp_path: Path) -> None:
    from gwlog.config import Config
    from gwlog.pricing import Pricer
    from gwlog.report import print_report, repricer

    pricing = Config().pricing
    report = build_report(RECORDS, by="provider", reprice=repricer(pricing))
    pricer = Pricer(pricing)
    costs = [pricer.reprice(r)[0] for r in RECORDS]
    assert sum(r.cost_usd for r in report.rows) == sum(c for c in costs if c is not None)
    assert sum(r.unpriced for r in report.rows) == sum(c is None for c in costs)
    out = io.StringIO()
    print_report(report, "csv", out)
    assert out.getvalue().startswith("provider,requests,errors,error_rate,")
