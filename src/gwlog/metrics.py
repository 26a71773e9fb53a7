"""The metrics store: per-user/team/model aggregation of request events, exposed to Prometheus.

Why not prometheus_client metric objects: ``labels().inc()`` costs ~10 µs per call and an event
touches up to ten series, which caps backfill at ~20k lines/s. ``observe()`` instead does plain
dict aggregation keyed by label tuples, and a custom collector turns the dicts into metric
families only when someone scrapes. The same dicts give exact, JSON-able snapshots, so metric
values survive restarts inside the checkpoint (counters stay monotone) and parallel backfill jobs
can be merged into one result.

Cardinality: client-controlled headers (user e-mail, model name) can carry any value. With
``CardinalityLimits`` each limited label admits at most N distinct values; later values fold into
``__other__`` so every total (sum over the label) stays exact, and optionally values unseen for a
while are folded too, freeing their slot.
"""

from __future__ import annotations

import math
import re
import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.utils import floatToGoString

from gwlog import __version__
from gwlog.errors import ConfigError, check_keys
from gwlog.events import TOKEN_TYPES, Event

OTHER = "__other__"
UNKNOWN = "unknown"
UNASSIGNED = "unassigned"

# Labels a cardinality limit may apply to, in the order ``observe`` builds them.
LIMITABLE_LABELS = ("user", "team", "provider", "model", "status")
# The reader's Outcome values (gwlog_lines_total{outcome}); seeded at 0 so rate() works from start.
LINE_OUTCOMES = ("parsed", "skipped", "malformed", "held", "invalid_utf8")
# LLM latency spans 100 ms (cached, short answers) to minutes (long reasoning / streaming).
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 45, 60, 90, 120)
_BUCKETS_MS = tuple(round(b * 1000) for b in LATENCY_BUCKETS)
_BUCKET_LE = (*(floatToGoString(b) for b in LATENCY_BUCKETS), "+Inf")
_NBUCKETS = len(LATENCY_BUCKETS) + 1
_TTFT_MAX = 1e9  # seconds; rejects NaN/inf/absurd values a float field could carry

# Cost sums stay exact: 120 significant digits cover any realistic sum of gateway decimals.
_DEC = Context(prec=120)
_STATUS_STR = {code: str(code) for code in range(100, 600)}
_PREFIX_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_SNAPSHOT_FORMAT = 1

# Self-metrics the pipeline feeds: name → (kind, label names, merge rule for gauges, help).
_SELF_METRICS: dict[str, tuple[str, tuple[str, ...], str, str]] = {
    "source_lag_bytes": ("gauge", ("source",), "sum", "Bytes written to a source but not yet read."),
    "checkpoint_age_seconds": ("gauge", (), "max", "Seconds since the last checkpoint was saved."),
    "open_files": ("gauge", (), "sum", "Log files gwlog holds open."),
    "rotations_total": ("counter", ("source",), "", "Rotations and truncations followed, by source."),
    "data_lost_total": ("counter", ("reason",), "", "Log data lost before it could be read, by reason."),
    "archive_errors_total": ("counter", (), "", "Errors writing the JSONL archive."),
    "identity_rejected_total": ("counter", ("reason",), "", "Signed identity tokens (JWT) rejected, by reason."),
}


def _utf8(value: str) -> str:
    """Label values must be valid UTF-8; lone surrogates (from surrogateescape decoding) become '?'."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like ``"90s"``, ``"30m"``, ``"24h"``, ``"7d"``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*", value)
        if not m:
            raise ValueError(f"expected a duration like 90s, 30m, 24h or 7d, got {value!r}")
        unit = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
        seconds = float(m.group(1)) * unit
    else:
        raise ValueError(f"expected a duration like 90s, 30m, 24h or 7d, got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected a non-negative duration, got {value!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class CardinalityLimits:
    """How many distinct values each label may take before new ones fold into ``__other__``.

    ``max_values`` caps named labels, ``default_max`` caps every other limitable label
    (user, team, provider, model, status). The cap is shared by all families (a user admitted
    to requests_total is admitted to tokens_total too), so per-user series agree across families.
    ``idle_expiry_s`` folds values unseen (in event time) for that long, freeing their slot.
    """

    max_values: dict[str, int] = field(default_factory=dict)
    default_max: int | None = None
    idle_expiry_s: float | None = None

    def __post_init__(self) -> None:
        for label, cap in self.max_values.items():
            if label not in LIMITABLE_LABELS:
                raise ValueError(f"cannot limit label {label!r}; limitable: {', '.join(LIMITABLE_LABELS)}")
            if type(cap) is not int or cap < 1:
                raise ValueError(f"limit for {label!r} must be a positive integer, got {cap!r}")
        if self.default_max is not None and (type(self.default_max) is not int or self.default_max < 1):
            raise ValueError(f"default_max must be a positive integer, got {self.default_max!r}")
        if self.idle_expiry_s is not None:
            if not (isinstance(self.idle_expiry_s, int | float) and self.idle_expiry_s > 0):
                raise ValueError(f"idle_expiry_s must be positive seconds, got {self.idle_expiry_s!r}")
            if not self.caps():
                raise ValueError("idle_expiry_s needs max_values or default_max (expiry frees capped slots)")

    def caps(self) -> dict[str, int]:
        """The effective cap of every limited label."""
        out = {}
        for label in LIMITABLE_LABELS:
            cap = self.max_values.get(label, self.default_max)
            if cap is not None:
                out[label] = cap
        return out

    @classmethod
    def from_section(cls, section: Mapping[str, Any], file: str) -> CardinalityLimits:
        """Build limits from the ``[cardinality]`` config table.

        Accepted keys (all optional):

        * ``max_users = 1000`` — shortcut for ``max_values.user``.
        * ``max_values = {model = 200, team = 100}`` — caps per label; labels: user, team,
          provider, model, status.
        * ``default_max = 10000`` — cap for every limitable label not in ``max_values``;
          ``0`` means unlimited. Default 10000, so a header flood cannot grow memory unbounded.
        * ``idle_expiry = "24h"`` — fold values unseen for this long (number of seconds or a
          string with unit ms/s/m/h/d/w); ``"off"`` or ``0`` disables (default).
        """
        key_prefix = "[cardinality]"
        check_keys(section, ("max_users", "max_values", "default_max", "idle_expiry"), file, key_prefix)

        def positive(key: str, value: object, allow_zero: bool = False) -> int:
            if type(value) is not int or value < (0 if allow_zero else 1):
                need = "a non-negative integer (0 = unlimited)" if allow_zero else "a positive integer"
                raise ConfigError(file, key, f"expected {need}, got {value!r}", f"write {key.split()[-1]} = 1000")
            return value

        max_values: dict[str, int] = {}
        raw = section.get("max_values", {})
        if not isinstance(raw, Mapping):
            raise ConfigError(
                file,
                f"{key_prefix} max_values",
                f"expected a table, got {raw!r}",
                "write max_values = {model = 200}",
            )
        for label, cap in raw.items():
            if label not in LIMITABLE_LABELS:
                raise ConfigError(
                    file,
                    f"{key_prefix} max_values.{label}",
                    "not a limitable label",
                    f"use one of {', '.join(LIMITABLE_LABELS)}",
                )
            max_values[label] = positive(f"{key_prefix} max_values.{label}", cap)
        if "max_users" in section:
            max_values["user"] = positive(f"{key_prefix} max_users", section["max_users"])
        default_max: int | None = positive(
            f"{key_prefix} default_max", section.get("default_max", 10000), allow_zero=True
        )
        idle: float | None = None
        raw_idle = section.get("idle_expiry", "off")
        if raw_idle not in ("off", 0):
            try:
                idle = parse_duration(raw_idle) or None
            except ValueError as exc:
                raise ConfigError(file, f"{key_prefix} idle_expiry", str(exc), 'write idle_expiry = "24h"') from None
        limits_default = default_max or None
        if idle is not None and not max_values and limits_default is None:
            raise ConfigError(
                file,
                f"{key_prefix} idle_expiry",
                "expiry needs a cap to free slots in",
                "set max_users or default_max, or remove idle_expiry",
            )
        return cls(max_values=max_values, default_max=limits_default, idle_expiry_s=idle)


class _Usage:
    """Counters of one (user, team, provider, model): requests by status, tokens by type, cost."""

    __slots__ = ("cost", "requests", "tokens")

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.tokens: dict[str, int] = {}
        self.cost: Decimal | None = None  # None until a priced request: no fake "0 USD" series

    def add(self, other: _Usage) -> _Usage:
        for status, n in other.requests.items():
            self.requests[status] = self.requests.get(status, 0) + n
        for kind, n in other.tokens.items():
            self.tokens[kind] = self.tokens.get(kind, 0) + n
        if other.cost is not None:
            self.cost = other.cost if self.cost is None else _DEC.add(self.cost, other.cost)
        return self

    def copy(self) -> _Usage:
        return _Usage().add(self)


class _Hist:
    """Histogram counts per bucket (non-cumulative, last = +Inf) and an integer sum (exact merges)."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * _NBUCKETS
        self.total = 0  # milliseconds (duration) or microseconds (TTFT)

    def add(self, other: _Hist) -> _Hist:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.total += other.total
        return self

    def copy(self) -> _Hist:
        return _Hist().add(self)


def _add_int(a: int, b: int) -> int:
    return a + b


def _add_record(a: Any, b: Any) -> Any:
    return a.add(b)


def _refold(data: dict, index: int, gone: set[str], add: Any) -> dict:
    """Rewrite keys whose ``index``-th label is in ``gone`` to ``__other__``, adding values."""
    out: dict = {}
    for key, value in data.items():
        if key[index] in gone:
            key = (*key[:index], OTHER, *key[index + 1 :])
        out[key] = add(out[key], value) if key in out else value
    return out


class MetricsStore:
    """Aggregates events into per-label dicts; exposes them as Prometheus families on demand.

    Thread-safe: the pipeline thread calls ``observe`` while the HTTP thread scrapes; a lock
    guards the dicts and scrapes copy them under it, formatting outside it.
    """

    def __init__(self, prefix: str = "gwlog", limits: CardinalityLimits | None = None) -> None:
        if not _PREFIX_RE.match(prefix):
            raise ValueError(f"metric prefix {prefix!r} is not a valid Prometheus metric name")
        self.prefix = prefix
        self.limits = limits or CardinalityLimits()
        self._lock = threading.Lock()
        self._caps = self.limits.caps()
        self._idle = self.limits.idle_expiry_s
        self._sweep_every = max(5.0, self._idle / 10) if self._idle else math.inf
        self._reset()

    def _reset(self) -> None:
        self._usage: dict[tuple[str, str, str, str], _Usage] = {}
        self._unpriced: dict[tuple[str, str], int] = {}
        self._duration: dict[tuple[str, str, str], _Hist] = {}
        self._ttft: dict[tuple[str, str], _Hist] = {}
        # user → (event time, team, name, role): the newest identity wins, ties broken by value,
        # so the result does not depend on event order (merged backfill jobs equal one process).
        self._user_info: dict[str, tuple[float, str, str, str]] = {}
        self._lines: dict[str, int] = dict.fromkeys(LINE_OUTCOMES, 0)
        self._last_ts = -math.inf
        self._overflow: dict[str, int] = dict.fromkeys(self._caps, 0)
        # Admitted values of each capped label → last time seen (max event time so far).
        self._admitted: dict[str, dict[str, float]] = {label: {} for label in self._caps}
        self._admit_plan = [
            (LIMITABLE_LABELS.index(label), label, self._admitted[label], cap) for label, cap in self._caps.items()
        ]
        self._next_sweep = -math.inf
        self._self: dict[str, dict[tuple[str, ...], float]] = {name: {} for name in _SELF_METRICS}
        for name, (kind, labels, _, _) in _SELF_METRICS.items():
            if kind == "counter" and not labels:
                self._self[name][()] = 0.0

    # -- hot path ---------------------------------------------------------------------------

    def observe(self, event: Event) -> None:
        """Count one request event (requests, tokens, cost, latency, identity)."""
        user = event.user or UNKNOWN
        team = event.team or UNASSIGNED
        provider = event.provider or UNKNOWN
        model = event.response_model or event.request_model or UNKNOWN
        code = event.status
        status = _STATUS_STR.get(code) or (UNKNOWN if code is None else str(code))  # type: ignore[arg-type]
        if not (user.isascii() and team.isascii() and provider.isascii() and model.isascii()):
            user, team, provider, model = _utf8(user), _utf8(team), _utf8(provider), _utf8(model)
        ts = event.ts.timestamp()
        # event.tokens() inlined (hot path): the same types, order and truthiness
        inp, out, cr, cw, rs = (event.input_tokens, event.output_tokens, event.cache_read_tokens,
                                event.cache_write_tokens, event.reasoning_tokens)  # fmt: skip
        cost = event.cost_usd
        if cost is not None and not cost.is_finite():
            cost = None
        with self._lock:
            if ts > self._last_ts:
                self._last_ts = ts
            if self._admit_plan:
                now = self._last_ts
                if now >= self._next_sweep:
                    self._sweep(now)
                vals = [user, team, provider, model, status]
                for i, label, admitted, cap in self._admit_plan:
                    value = vals[i]
                    if value in admitted:
                        admitted[value] = now
                    elif value != OTHER:
                        if len(admitted) < cap:
                            admitted[value] = now
                        else:
                            vals[i] = OTHER
                            self._overflow[label] += 1
                user, team, provider, model, status = vals
            key = (user, team, provider, model)
            rec = self._usage.get(key)
            if rec is None:
                rec = self._usage[key] = _Usage()
            reqs = rec.requests
            reqs[status] = reqs.get(status, 0) + 1
            if inp or out or cr or cw or rs:
                counted = rec.tokens
                get = counted.get
                if inp:
                    counted["input"] = get("input", 0) + inp
                if out:
                    counted["output"] = get("output", 0) + out
                if cr:
                    counted["cache_read"] = get("cache_read", 0) + cr
                if cw:
                    counted["cache_write"] = get("cache_write", 0) + cw
                if rs:
                    counted["reasoning"] = get("reasoning", 0) + rs
                if cost is None:
                    pm = (provider, model)
                    self._unpriced[pm] = self._unpriced.get(pm, 0) + 1
            if cost is not None:
                rec.cost = cost if rec.cost is None else _DEC.add(rec.cost, cost)
            ms = event.duration_ms
            if ms is not None and ms >= 0:
                tpm = (team, provider, model)
                hist = self._duration.get(tpm)
                if hist is None:
                    hist = self._duration[tpm] = _Hist()
                hist.counts[bisect_left(_BUCKETS_MS, ms)] += 1
                hist.total += ms
            ttft = event.ttft_s
            if ttft is not None and 0.0 <= ttft <= _TTFT_MAX:
                pm = (provider, model)
                hist = self._ttft.get(pm)
                if hist is None:
                    hist = self._ttft[pm] = _Hist()
                hist.counts[bisect_left(LATENCY_BUCKETS, ttft)] += 1
                hist.total += round(ttft * 1_000_000)
            if event.user is not None and user != OTHER:
                name = event.user_name or UNKNOWN
                role = event.user_role or UNKNOWN
                if not (name.isascii() and role.isascii()):
                    name, role = _utf8(name), _utf8(role)
                info = (ts, team, name, role)
                current = self._user_info.get(user)
                if current is None or info > current:
                    self._user_info[user] = info

    def count_lines(self, outcome: str, n: int = 1) -> None:
        """Count input lines by reader outcome (parsed, skipped, malformed, held, invalid_utf8)."""
        with self._lock:
            self._lines[outcome] = self._lines.get(outcome, 0) + n

    # -- self-metrics -----------------------------------------------------------------------

    def _self_key(self, name: str, labels: Mapping[str, str] | None, kind: str) -> tuple[str, ...]:
        spec = _SELF_METRICS.get(name)
        if spec is None or spec[0] != kind:
            names = sorted(n for n, s in _SELF_METRICS.items() if s[0] == kind)
            raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(names)}")
        labels = labels or {}
        if set(labels) != set(spec[1]):
            raise ValueError(f"{name} takes labels {list(spec[1])}, got {sorted(labels)}")
        return tuple(_utf8(str(labels[label])) for label in spec[1])

    def set_gauge(self, name: str, labels: Mapping[str, str] | None, value: float) -> None:
        """Set a pipeline gauge: source_lag_bytes{source}, checkpoint_age_seconds, open_files."""
        key = self._self_key(name, labels, "gauge")
        with self._lock:
            self._self[name][key] = float(value)

    def remove_gauge(self, name: str, labels: Mapping[str, str] | None) -> None:
        """Drop a gauge series, e.g. the lag of a source that is gone (no stale series)."""
        key = self._self_key(name, labels, "gauge")
        with self._lock:
            self._self[name].pop(key, None)

    def inc_counter(self, name: str, labels: Mapping[str, str] | None = None, value: float = 1) -> None:
        """Add to a pipeline counter: rotations_total{source}, data_lost_total{reason}, archive_errors."""
        if value < 0:
            raise ValueError(f"{name}: counters only go up, got {value}")
        key = self._self_key(name, labels, "counter")
        with self._lock:
            series = self._self[name]
            series[key] = series.get(key, 0.0) + value

    # -- cardinality ------------------------------------------------------------------------

    def _sweep(self, now: float) -> None:
        """Fold values unseen for idle_expiry_s into __other__ (called at most every few seconds)."""
        self._next_sweep = now + self._sweep_every
        if self._idle is None:
            return
        cutoff = now - self._idle
        for label, admitted in self._admitted.items():
            gone = {value for value, seen in admitted.items() if seen < cutoff}
            if gone:
                for value in gone:
                    del admitted[value]
                self._fold(label, gone)

    def _fold(self, label: str, gone: set[str]) -> None:
        """Move every series whose ``label`` value is in ``gone`` into ``__other__``; totals unchanged."""
        if label == "status":
            for rec in self._usage.values():
                if not gone.isdisjoint(rec.requests):
                    folded: dict[str, int] = {}
                    for status, n in rec.requests.items():
                        status = OTHER if status in gone else status
                        folded[status] = folded.get(status, 0) + n
                    rec.requests = folded
            return
        i = ("user", "team", "provider", "model").index(label)
        self._usage = _refold(self._usage, i, gone, _add_record)
        if label == "user":
            for value in gone:
                self._user_info.pop(value, None)
            return
        if label == "team":
            self._user_info = {u: (ts, OTHER if t in gone else t, n, r) for u, (ts, t, n, r) in self._user_info.items()}
            self._duration = _refold(self._duration, 0, gone, _add_record)
            return
        self._unpriced = _refold(self._unpriced, i - 2, gone, _add_int)
        self._duration = _refold(self._duration, i - 1, gone, _add_record)
        self._ttft = _refold(self._ttft, i - 2, gone, _add_record)

    def _label_values(self, label: str) -> set[str]:
        """Every value ``label`` currently has in any family (for re-admission after restore)."""
        if label == "status":
            return {s for rec in self._usage.values() for s in rec.requests}
        i = ("user", "team", "provider", "model").index(label)
        values = {key[i] for key in self._usage}
        if label == "team":
            values.update(key[0] for key in self._duration)
        elif label != "user":
            values.update(key[i - 1] for key in self._duration)
            values.update(key[i - 2] for key in self._ttft)
            values.update(key[i - 2] for key in self._unpriced)
        values.discard(OTHER)
        return values

    def _enforce_caps(self, seen: Mapping[str, Mapping[str, float]]) -> None:
        """After restore/merge: admit present values (last seen from ``seen``), fold beyond the cap.

        Keeps the most recently seen values, so a lowered cap keeps the active users.
        """
        default_seen = self._last_ts if self._last_ts > -math.inf else 0.0
        for label, cap in self._caps.items():
            admitted = self._admitted[label]
            incoming = seen.get(label, {})
            for value in self._label_values(label):
                last = max(admitted.get(value, -math.inf), incoming.get(value, default_seen))
                admitted[value] = last
            if len(admitted) > cap:
                ranked = sorted(admitted.items(), key=lambda kv: (-kv[1], kv[0]))
                gone = {value for value, _ in ranked[cap:]}
                for value in gone:
                    del admitted[value]
                self._fold(label, gone)

    # -- snapshots --------------------------------------------------------------------------

    def snapshot(self) -> dict:
        """Every value, exactly, as JSON-able data (Decimals as strings) for the checkpoint."""
        with self._lock:
            return {
                "format": _SNAPSHOT_FORMAT,
                "buckets": list(LATENCY_BUCKETS),
                "usage": [
                    [*key, dict(rec.requests), dict(rec.tokens), None if rec.cost is None else str(rec.cost)]
                    for key, rec in self._usage.items()
                ],
                "unpriced": [[*key, n] for key, n in self._unpriced.items()],
                "duration": [[*key, list(h.counts), h.total] for key, h in self._duration.items()],
                "ttft": [[*key, list(h.counts), h.total] for key, h in self._ttft.items()],
                "user_info": [[user, *info] for user, info in self._user_info.items()],
                "lines": dict(self._lines),
                "last_event_ts": None if self._last_ts == -math.inf else self._last_ts,
                "overflow": dict(self._overflow),
                "admitted": {label: dict(values) for label, values in self._admitted.items()},
                "self": {name: [[list(k), v] for k, v in series.items()] for name, series in self._self.items()},
            }

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Replace all values with a snapshot's (exposition afterwards is byte-identical)."""
        other = _parse_snapshot(snapshot, self.prefix)
        with self._lock:
            self._reset()
            self._add(other, seen=snapshot.get("admitted") or {})
            self._next_sweep = -math.inf

    def merge(self, snapshot: Mapping[str, Any]) -> None:
        """Add another store's snapshot (parallel backfill jobs); equals one process when no cap binds."""
        other = _parse_snapshot(snapshot, self.prefix)
        with self._lock:
            self._add(other, seen=snapshot.get("admitted") or {})

    def _add(self, other: MetricsStore, seen: Mapping[str, Mapping[str, float]]) -> None:
        for ukey, rec in other._usage.items():
            mine = self._usage.get(ukey)
            self._usage[ukey] = rec if mine is None else mine.add(rec)
        for pm, n in other._unpriced.items():
            self._unpriced[pm] = self._unpriced.get(pm, 0) + n
        for tpm, hist in other._duration.items():
            mine_h = self._duration.get(tpm)
            self._duration[tpm] = hist if mine_h is None else mine_h.add(hist)
        for pm, hist in other._ttft.items():
            mine_h = self._ttft.get(pm)
            self._ttft[pm] = hist if mine_h is None else mine_h.add(hist)
        for user, info in other._user_info.items():
            current = self._user_info.get(user)
            if current is None or info > current:
                self._user_info[user] = info
        for outcome, n in other._lines.items():
            self._lines[outcome] = self._lines.get(outcome, 0) + n
        self._last_ts = max(self._last_ts, other._last_ts)
        for label, n in other._overflow.items():
            self._overflow[label] = self._overflow.get(label, 0) + n
        for name, series in other._self.items():
            kind, _, rule, _ = _SELF_METRICS[name]
            mine_s = self._self[name]
            for key, value in series.items():
                if key in mine_s and kind == "gauge" and rule == "max":
                    mine_s[key] = max(mine_s[key], value)
                else:
                    mine_s[key] = mine_s.get(key, 0.0) + value
        if self._caps:
            self._enforce_caps(seen)

    # -- exposition -------------------------------------------------------------------------

    def _copy(self) -> MetricsStore:
        """A consistent copy for formatting outside the lock (records copied, strings shared)."""
        with self._lock:
            out = MetricsStore.__new__(MetricsStore)
            out.prefix = self.prefix
            out._usage = {k: v.copy() for k, v in self._usage.items()}
            out._unpriced = dict(self._unpriced)
            out._duration = {k: v.copy() for k, v in self._duration.items()}
            out._ttft = {k: v.copy() for k, v in self._ttft.items()}
            out._user_info = dict(self._user_info)
            out._lines = dict(self._lines)
            out._last_ts = self._last_ts
            out._overflow = dict(self._overflow)
            out._self = {name: dict(series) for name, series in self._self.items()}
            return out

    def describe(self) -> Iterable[Metric]:
        """Family names without values, so registering does not trigger a full collect."""
        return self._families(empty=True)

    def collect(self) -> Iterator[Metric]:
        """Build the metric families from a copy of the dicts (custom prometheus_client collector)."""
        return self._copy()._families()

    def _families(self, empty: bool = False) -> Iterator[Metric]:
        p = self.prefix
        lab = ["user", "team", "provider", "model"]
        requests = CounterMetricFamily(
            f"{p}_requests",
            "Gateway requests by user, team, provider, model and HTTP status.",
            labels=[*lab, "status"],
        )
        tokens = CounterMetricFamily(
            f"{p}_tokens",
            "LLM tokens by type (input includes cache_read and cache_write, as the gateway logs it).",
            labels=[*lab, "type"],
        )
        cost = CounterMetricFamily(f"{p}_cost_usd", "Cost of priced requests in US dollars.", labels=lab)
        unpriced = CounterMetricFamily(
            f"{p}_unpriced_requests",
            "LLM requests with tokens but no known price.",
            labels=["provider", "model"],
        )
        duration = HistogramMetricFamily(
            f"{p}_request_duration_seconds", "Request duration as the gateway logged it.", labels=lab[1:]
        )
        ttft = HistogramMetricFamily(
            f"{p}_time_to_first_token_seconds", "Time to the first streamed token.", labels=lab[2:]
        )
        user_info = GaugeMetricFamily(
            f"{p}_user_info",
            "Identity of each user seen (always 1; join on user).",
            labels=["user", "team", "user_name", "user_role"],
        )
        lines = CounterMetricFamily(f"{p}_lines", "Input lines by reader outcome.", labels=["outcome"])
        last_ts = GaugeMetricFamily(
            f"{p}_last_event_timestamp_seconds", "Timestamp of the newest request event counted."
        )
        overflow = CounterMetricFamily(
            f"{p}_series_overflow",
            "Observations whose label value was folded into __other__ by a cap.",
            labels=["label"],
        )
        build = GaugeMetricFamily(f"{p}_build_info", "gwlog build (always 1).", labels=["version"])
        selfs = {
            name: (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(
                f"{p}_{name}", help_text, labels=list(labels)
            )
            for name, (kind, labels, _, help_text) in _SELF_METRICS.items()
        }
        families: list[Metric] = [
            requests,
            tokens,
            cost,
            unpriced,
            duration,
            ttft,
            user_info,
            lines,
            last_ts,
            overflow,
            *selfs.values(),
            build,
        ]
        if empty:
            return iter(families)

        for key in sorted(self._usage):
            rec = self._usage[key]
            labels = list(key)
            for status in sorted(rec.requests):
                requests.add_metric([*labels, status], rec.requests[status])
            for kind in TOKEN_TYPES:
                if kind in rec.tokens:
                    tokens.add_metric([*labels, kind], rec.tokens[kind])
            if rec.cost is not None:
                cost.add_metric(labels, float(rec.cost))
        for pm in sorted(self._unpriced):
            unpriced.add_metric(list(pm), self._unpriced[pm])
        hists: tuple[tuple[HistogramMetricFamily, Mapping[Any, _Hist], float], ...] = (
            (duration, self._duration, 1e3),
            (ttft, self._ttft, 1e6),
        )
        for hfamily, data, scale in hists:
            for hkey in sorted(data):
                hist = data[hkey]
                cumulative, running = [], 0
                for le, n in zip(_BUCKET_LE, hist.counts, strict=True):
                    running += n
                    cumulative.append((le, running))
                hfamily.add_metric(list(hkey), cumulative, hist.total / scale)
        for user in sorted(self._user_info):
            user_info.add_metric([user, *self._user_info[user][1:]], 1)
        for outcome in sorted(self._lines):
            lines.add_metric([outcome], self._lines[outcome])
        if self._last_ts > -math.inf:
            last_ts.add_metric([], self._last_ts)
        for label in sorted(self._overflow):
            overflow.add_metric([label], self._overflow[label])
        for name, family in selfs.items():
            for skey in sorted(self._self[name]):
                family.add_metric(list(skey), self._self[name][skey])
        build.add_metric([__version__], 1)
        return iter([family for family in families if family.samples])

    def exposition(self) -> bytes:
        """The store in Prometheus text format (final values, like mtail ``-one_shot``), sorted."""
        registry = CollectorRegistry(auto_describe=False)
        self.register(registry, process=False)
        return generate_latest(registry)

    def register(self, registry: CollectorRegistry, *, process: bool = True) -> None:
        """Add the store (and, by default, the process_* metrics) to a registry for /metrics."""
        registry.register(self)  # type: ignore[arg-type]
        if process:
            ProcessCollector(registry=registry)


def _parse_snapshot(snap: Mapping[str, Any], prefix: str) -> MetricsStore:
    """Validate a snapshot into a limit-free store; ValueError names what is wrong."""
    try:
        if snap.get("format") != _SNAPSHOT_FORMAT:
            raise ValueError(f"unsupported format {snap.get('format')!r} (expected {_SNAPSHOT_FORMAT})")
        if [float(b) for b in snap["buckets"]] != [float(b) for b in LATENCY_BUCKETS]:
            raise ValueError("histogram buckets differ from this gwlog version's")
        out = MetricsStore(prefix)

        def text(values: Iterable[Any]) -> tuple[str, ...]:
            values = tuple(values)
            if not all(isinstance(v, str) for v in values):
                raise ValueError(f"label values must be strings: {values!r}")
            return values

        def count(value: Any) -> int:
            if type(value) is not int or value < 0:
                raise ValueError(f"expected a non-negative integer, got {value!r}")
            return value

        def hist(counts: Any, total: Any) -> _Hist:
            h = _Hist()
            if not isinstance(counts, list) or len(counts) != _NBUCKETS:
                raise ValueError(f"expected {_NBUCKETS} bucket counts, got {counts!r}")
            h.counts = [count(c) for c in counts]
            h.total = count(total)
            return h

        for user, team, provider, model, reqs, toks, cost in snap["usage"]:
            rec = _Usage()
            rec.requests = {text([s])[0]: count(n) for s, n in reqs.items()}
            rec.tokens = {k: count(n) for k, n in toks.items() if k in TOKEN_TYPES}
            if cost is not None:
                rec.cost = Decimal(cost) if isinstance(cost, str) else None
                if rec.cost is None or not rec.cost.is_finite():
                    raise ValueError(f"cost must be a finite decimal string, got {cost!r}")
            out._usage[text([user, team, provider, model])] = rec  # type: ignore[index]
        for provider, model, n in snap["unpriced"]:
            out._unpriced[text([provider, model])] = count(n)  # type: ignore[index]
        for team, provider, model, counts, total in snap["duration"]:
            out._duration[text([team, provider, model])] = hist(counts, total)  # type: ignore[index]
        for provider, model, counts, total in snap["ttft"]:
            out._ttft[text([provider, model])] = hist(counts, total)  # type: ignore[index]
        for user, seen, team, name, role in snap["user_info"]:
            out._user_info[text([user])[0]] = (float(seen), *text([team, name, role]))  # type: ignore[assignment]
        out._lines = {text([k])[0]: count(n) for k, n in snap["lines"].items()}
        ts = snap["last_event_ts"]
        out._last_ts = -math.inf if ts is None else float(ts)
        out._overflow = {label: count(n) for label, n in snap["overflow"].items() if label in LIMITABLE_LABELS}
        for name, series in snap["self"].items():
            if name not in _SELF_METRICS:
                raise ValueError(f"unknown self-metric {name!r}")
            out._self[name] = {text(k): float(v) for k, v in series}
        for label, values in (snap.get("admitted") or {}).items():
            if label not in LIMITABLE_LABELS or not all(isinstance(v, int | float) for v in values.values()):
                raise ValueError(f"bad admitted values for {label!r}")
        return out
    except (KeyError, TypeError, ValueError, AttributeError, InvalidOperation) as exc:
        raise ValueError(f"metrics snapshot: {type(exc).__name__}: {exc}") from None
