"""Metric history as OpenMetrics text for ``promtool tsdb create-blocks-from openmetrics``.

Backfill counts events into one ``MetricsStore`` per time step (``resolution_s``); each step's
exposition is parsed into sparse *deltas* (only the series that changed in that step). The writer
turns the deltas into cumulative counter/histogram values at every step end, one metric family at a
time, one series at a time, times increasing — the order promtool needs (it silently drops
out-of-order samples), timestamps in seconds, ending in ``# EOF``.

Memory bound: the deltas hold one entry per (series, step) pair that saw at least one event, so at
most ``events × samples touched per event`` and in practice far less; the output itself is streamed
(``series × steps`` lines are never held). Gauges (``user_info``, ``last_event_timestamp_seconds``,
…) are not history and are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TextIO

Value = int | Decimal
# A sample inside one series: (sample name, le bound or "" when not a bucket).
SampleKey = tuple[str, str]
# One series ("Metric" in OpenMetrics terms): its label pairs without ``le``, already escaped.
Labels = tuple[tuple[str, str], ...]

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?[ \t]+(\S+)(?:[ \t]+\S+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_KINDS = ("counter", "histogram")


def _value(text: str) -> Value:
    """Exact value: integers stay int, anything else becomes a Decimal (no float rounding in sums)."""
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


def _fmt(value: Value) -> str:
    if isinstance(value, int):
        return str(value)
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def _le_order(le: str) -> float:
    return float("inf") if le in ("+Inf", "Inf") else float(le)


@dataclass(slots=True)
class Family:
    """One metric family: OpenMetrics name (counters without ``_total``), type, help text."""

    name: str
    kind: str
    help: str = ""
    # series labels → step → sample → delta in that step
    series: dict[Labels, dict[int, dict[SampleKey, Value]]] = field(default_factory=dict)


class History:
    """Per-step deltas of every counter and histogram series, mergeable across backfill workers."""

    def __init__(self, resolution_s: int = 60) -> None:
        if resolution_s <= 0:
            raise ValueError("resolution_s must be positive")
        self.resolution_s = resolution_s
        self.families: dict[str, Family] = {}
        # HELP precedes TYPE in the text format; kept until the TYPE line names the kind.
        self._help: dict[str, str] = {}

    def step_of(self, ts: float) -> int:
        """The step an event at ``ts`` (Unix seconds) belongs to; its values appear at the step end."""
        return int(ts // self.resolution_s)

    @property
    def last_step(self) -> int | None:
        steps = [s for fam in self.families.values() for points in fam.series.values() for s in points]
        return max(steps) if steps else None

    def add_exposition(self, step: int, text: bytes | str) -> None:
        """Add one step's Prometheus text exposition (counters and histograms only) as deltas.

        A series whose samples are all zero in this step (e.g. ``lines_total`` of a store that
        only observed events) is not recorded for it.
        """
        if isinstance(text, bytes):
            text = text.decode()
        family: Family | None = None
        found: dict[tuple[str, Labels], dict[SampleKey, Value]] = {}
        for line in text.splitlines():
            if not line:
                continue
            if line.startswith("#"):
                family = self._header(line, family)
                continue
            if family is None:
                continue
            m = _SAMPLE.match(line)
            if m is None:
                raise ValueError(f"not a Prometheus sample line: {line!r}")
            name, labels_text, value_text = m.groups()
            if name.endswith("_created"):
                continue
            pairs = _LABEL.findall(labels_text or "")
            le = next((v for k, v in pairs if k == "le"), "")
            labels = tuple((k, v) for k, v in pairs if k != "le")
            if family.kind == "counter" and not name.endswith("_total"):
                name += "_total"
            found.setdefault((family.name, labels), {})[(name, le)] = _value(value_text)
        for (fname, labels), samples in found.items():
            if any(samples.values()):
                fam = self.families[fname]
                for key, value in samples.items():
                    self._add(fam, labels, step, key, value)

    def _header(self, line: str, current: Family | None) -> Family | None:
        parts = line.split(None, 3)
        if len(parts) < 3 or parts[1] not in ("TYPE", "HELP"):
            return current
        name = parts[2]
        if parts[1] == "TYPE":
            kind = parts[3].strip() if len(parts) > 3 else "untyped"
            if kind not in _KINDS:
                return None
            om_name = name[: -len("_total")] if kind == "counter" and name.endswith("_total") else name
            fam = self.families.get(om_name)
            if fam is None:
                fam = self.families[om_name] = Family(om_name, kind, self._help.pop(name, ""))
            return fam
        self._help[name] = parts[3] if len(parts) > 3 else ""
        return current

    @staticmethod
    def _add(family: Family, labels: Labels, step: int, key: SampleKey, value: Value) -> None:
        points = family.series.setdefault(labels, {}).setdefault(step, {})
        points[key] = points.get(key, 0) + value

    def merge(self, other: History) -> None:
        """Add another worker's deltas (the order of merges does not change the result)."""
        if other.resolution_s != self.resolution_s:
            raise ValueError("cannot merge histories of different resolutions")
        for name, ofam in other.families.items():
            fam = self.families.get(name)
            if fam is None:
                fam = self.families[name] = Family(name, ofam.kind, ofam.help)
            fam.help = fam.help or ofam.help
            for labels, points in ofam.series.items():
                for step, samples in points.items():
                    for key, value in samples.items():
                        self._add(fam, labels, step, key, value)

    def write(self, out: TextIO, *, end_step: int | None = None, extra_labels: dict[str, str] | None = None) -> int:
        """Stream the history as OpenMetrics text; return the number of samples written.

        Each series starts with zeros at the start of its first step (so ``increase()`` and
        ``rate()`` see the first events), then one cumulative point at the end of every step up to
        ``end_step`` (default: the last step with data). ``extra_labels`` (e.g. ``job``,
        ``instance``) are added to every series.
        """
        extra = tuple((k, _escape(v)) for k, v in sorted((extra_labels or {}).items()))
        last = self.last_step if end_step is None else end_step
        written = 0
        res = self.resolution_s
        for fname in sorted(self.families):
            fam = self.families[fname]
            if not fam.series:
                continue
            if fam.help:
                out.write(f"# HELP {fname} {fam.help}\n")
            out.write(f"# TYPE {fname} {fam.kind}\n")
            for labels in sorted(fam.series):
                points = fam.series[labels]
                first = min(points)
                assert last is not None
                if first > last:
                    continue
                keys = _ordered_keys({k for samples in points.values() for k in samples})
                totals: dict[SampleKey, Value] = dict.fromkeys(keys, 0)
                for step in range(first - 1, last + 1):
                    for key, delta in points.get(step, {}).items():
                        totals[key] += delta
                    written += _write_point(out, extra + labels, totals, (step + 1) * res)
        out.write("# EOF\n")
        return written


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _ordered_keys(keys: Iterable[SampleKey]) -> list[SampleKey]:
    """Buckets by increasing bound, then ``_count``, ``_sum`` (and counters' single sample)."""
    return sorted(keys, key=lambda k: (not k[0].endswith("_bucket"), k[0], _le_order(k[1]) if k[1] else 0.0))


def _write_point(out: TextIO, labels: Labels, totals: dict[SampleKey, Value], ts: int) -> int:
    pairs = [f'{k}="{v}"' for k, v in labels]
    for (name, le), value in totals.items():
        lab = ",".join([*pairs, f'le="{le}"'] if le else pairs)
        out.write(f"{name}{{{lab}}} {_fmt(value)} {ts}\n" if lab else f"{name} {_fmt(value)} {ts}\n")
    return len(totals)
