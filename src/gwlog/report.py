"""``gwlog report``: usage, errors, cost and latency per user/team/provider/model/day.

Reads the JSONL archive (orjson, ``.gz`` fine) or raw gateway logs (through the same reader as
backfill), so a report never needs Prometheus. Definitions, so numbers can be checked by hand:

* **error**: ``status >= 400`` or an ``error`` field present; error rate = errors / requests.
* **tokens**: summed per type as archived (``input`` includes cache tokens, as the gateway logs it).
* **cost**: exact decimal sum of ``cost_usd`` (or the repriced cost); requests without a cost are
  counted in ``unpriced`` and add nothing.
* **latency**: ``duration_ms`` of requests that have one; average = arithmetic mean; p95 by the
  *nearest-rank* method: the ``ceil(0.95 × n)``-th smallest value (always an observed value).

Memory: one small accumulator per group plus the durations of each group (for p95).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from gwlog import archive

if TYPE_CHECKING:
    from gwlog.config import Config
    from gwlog.pricing import PricingConfig

GROUPS = ("user", "team", "provider", "model", "day")
FORMATS = ("table", "json", "csv")
TOKEN_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
# Label values never empty, as in the metrics.
_MISSING = {"team": "unassigned"}

Repricer = Callable[[dict[str, Any]], Decimal | None]


@dataclass(slots=True)
class Row:
    """One group's numbers."""

    group: str
    requests: int = 0
    errors: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_COLUMNS, 0))
    cost_usd: Decimal = Decimal(0)
    unpriced: int = 0
    durations_ms: list[int] = field(default_factory=list)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def avg_latency_ms(self) -> float | None:
        return sum(self.durations_ms) / len(self.durations_ms) if self.durations_ms else None

    @property
    def p95_latency_ms(self) -> int | None:
        return percentile(self.durations_ms, 95)

    def as_dict(self, by: str) -> dict[str, Any]:
        avg = self.avg_latency_ms
        return {
            by: self.group,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 6),
            **self.tokens,
            "cost_usd": str(self.cost_usd),
            "unpriced": self.unpriced,
            "avg_latency_ms": None if avg is None else round(avg, 3),
            "p95_latency_ms": self.p95_latency_ms,
        }


@dataclass(slots=True)
class Report:
    """Rows for the chosen grouping plus the three questions people ask first."""

    by: str
    rows: list[Row]
    top_users: list[Row]
    errors_by_user: list[tuple[str, int, dict[str, int]]]  # user, errors, errors by status
    provider_share: dict[str, dict[str, float]]  # team → provider → share of the team's requests
    records: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "records": self.records,
            "rows": [r.as_dict(self.by) for r in self.rows],
            "top_users": [r.as_dict("user") for r in self.top_users],
            "errors_by_user": [
                {"user": u, "errors": n, "by_status": by_status} for u, n, by_status in self.errors_by_user
            ],
            "provider_share": self.provider_share,
        }


def percentile(values: list[int], pct: float) -> int | None:
    """Nearest-rank percentile: the ``ceil(pct/100 × n)``-th smallest value."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def is_error(record: dict[str, Any]) -> bool:
    status = record.get("status")
    return (isinstance(status, int) and status >= 400) or record.get("error") is not None


def _key(record: dict[str, Any], by: str) -> str:
    if by == "day":
        return str(record["ts"])[:10]
    value = record.get(by)
    return str(value) if value not in (None, "") else _MISSING.get(by, "unknown")


def _add(row: Row, record: dict[str, Any], cost: Decimal | None) -> None:
    row.requests += 1
    if is_error(record):
        row.errors += 1
    for col in TOKEN_COLUMNS:
        value = record.get(col)
        if value:
            row.tokens[col] += value
    if cost is None:
        row.unpriced += 1
    else:
        row.cost_usd += cost
    duration = record.get("duration_ms")
    if isinstance(duration, int):
        row.durations_ms.append(duration)


def _ranked(rows: Iterable[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (-r.cost_usd, -r.requests, r.group))


def build_report(
    records: Iterable[dict[str, Any]],
    *,
    by: str = "user",
    top: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    reprice: Repricer | None = None,
) -> Report:
    """Aggregate archive records (``Event.to_record`` shape) in one pass."""
    if by not in GROUPS:
        raise ValueError(f"--by must be one of {', '.join(GROUPS)}, got {by!r}")
    groups: dict[str, Row] = {}
    users: dict[str, Row] = {}
    user_errors: dict[str, dict[str, int]] = {}
    team_providers: dict[str, dict[str, int]] = {}
    count = 0
    for record in records:
        if since is not None or until is not None:
            ts = datetime.fromisoformat(record["ts"])
            if (since is not None and ts < since) or (until is not None and ts >= until):
                continue
        count += 1
        if reprice is not None:
            cost = reprice(record)
        else:
            raw = record.get("cost_usd")
            cost = None if raw is None else Decimal(str(raw))
        key = _key(record, by)
        _add(groups.setdefault(key, Row(key)), record, cost)
        user = _key(record, "user")
        if by != "user":
            _add(users.setdefault(user, Row(user)), record, cost)
        if is_error(record):
            status = str(record.get("status"))
            per_status = user_errors.setdefault(user, {})
            per_status[status] = per_status.get(status, 0) + 1
        providers = team_providers.setdefault(_key(record, "team"), {})
        provider = _key(record, "provider")
        providers[provider] = providers.get(provider, 0) + 1
    rows = sorted(groups.values(), key=lambda r: r.group) if by == "day" else _ranked(groups.values())
    user_rows = _ranked((groups if by == "user" else users).values())
    return Report(
        by=by,
        rows=rows[:top] if top else rows,
        top_users=user_rows[: top or 10],
        errors_by_user=sorted(
            ((u, sum(s.values()), dict(sorted(s.items()))) for u, s in user_errors.items()),
            key=lambda x: (-x[1], x[0]),
        ),
        provider_share={
            team: {p: round(n / sum(provs.values()), 6) for p, n in sorted(provs.items(), key=lambda x: -x[1])}
            for team, provs in sorted(team_providers.items())
        },
        records=count,
    )


# -- input ------------------------------------------------------------------------------------


def is_archive(path: str | Path) -> bool:
    """An archive's lines are JSON objects with gwlog's ``id``/``ts``/``fields`` keys.

    ``.gz`` by name, as ``gwlog.archive`` writes and reads them.
    """
    opener: Any = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        for line in f:
            if line.strip():
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    return False
                return isinstance(obj, dict) and {"id", "ts", "fields"} <= obj.keys()
    return False


def iter_records(paths: Iterable[str | Path], config: Config | None = None) -> Iterator[dict[str, Any]]:
    """Records from archives and raw logs alike; raw logs go through backfill's reader."""
    for path in paths:
        if is_archive(path):
            yield from archive.iter_records([path])
        else:
            from gwlog.backfill import iter_events  # the whole parsing stack, only when needed

            for event in iter_events(path, config):
                yield event.to_record()


def repricer(pricing: PricingConfig) -> Repricer:
    """``--reprice``: today's price tables (and overrides) over the archived tokens."""
    from gwlog.pricing import Pricer

    pricer = Pricer(pricing)
    return lambda record: pricer.reprice(record)[0]


# -- output -----------------------------------------------------------------------------------


def to_json(report: Report) -> bytes:
    return orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def to_csv(report: Report) -> str:
    """The main rows only (CSV is one table); JSON carries the other sections."""
    out = io.StringIO()
    rows = [r.as_dict(report.by) for r in report.rows]
    fields = list(rows[0]) if rows else list(Row("").as_dict(report.by))
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def print_report(report: Report, fmt: str, file: TextIO | None = None) -> None:
    """``--format``: a rich table for people, JSON or CSV for machines."""
    out = file or sys.stdout
    if fmt == "json":
        out.write(to_json(report).decode())
    elif fmt == "csv":
        out.write(to_csv(report))
    elif fmt == "table":
        from rich.console import Console

        render_table(report, Console(file=out, width=None if out.isatty() else 160))
    else:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def render_table(report: Report, console: Any) -> None:
    """Rich tables for people: the grouping, top users, errors by user, provider share per team."""
    from rich.table import Table

    def numbers(title: str, by: str, rows: list[Row]) -> Table:
        table = Table(title=title)
        for col in (by, "requests", "errors", "err %", "input", "output", "cache r", "cache w", "reason",
                    "cost $", "unpriced", "avg ms", "p95 ms"):  # fmt: skip
            table.add_column(col, justify="left" if col == by else "right")
        for r in rows:
            avg, p95 = r.avg_latency_ms, r.p95_latency_ms
            table.add_row(
                r.group, f"{r.requests:,}", f"{r.errors:,}", f"{100 * r.error_rate:.1f}",
                *(f"{r.tokens[c]:,}" for c in TOKEN_COLUMNS), f"{r.cost_usd:.4f}", f"{r.unpriced:,}",
                "-" if avg is None else f"{avg:.0f}", "-" if p95 is None else str(p95),
            )  # fmt: skip
        return table

    console.print(numbers(f"by {report.by} ({report.records:,} requests)", report.by, report.rows))
    if report.by != "user":
        console.print(numbers("top users", "user", report.top_users))
    if report.errors_by_user:
        table = Table(title="errors by user")
        table.add_column("user")
        table.add_column("errors", justify="right")
        table.add_column("by status")
        for user, n, by_status in report.errors_by_user:
            table.add_row(user, f"{n:,}", ", ".join(f"{s}: {c}" for s, c in by_status.items()))
        console.print(table)
    table = Table(title="provider share per team (requests)")
    table.add_column("team")
    table.add_column("providers")
    for team, shares in report.provider_share.items():
        table.add_row(team, ", ".join(f"{p} {100 * s:.1f}%" for p, s in shares.items()))
    console.print(table)
