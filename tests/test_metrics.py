"""MetricsStore: values, Prometheus text validity (real promtool), escaping, exact snapshots and merges."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gwlog.events import Event
from gwlog.metrics import MetricsStore

T0 = datetime(2026, 8, 20, 9, 14, 3, tzinfo=UTC)


def ev(**kw: Any) -> Event:
    """A request event with sensible LLM defaults; keyword arguments override."""
    base: dict[str, Any] = {
        "ts": T0,
        "fields": {},
        "user": "alice@example.com",
        "team": "research",
        "provider": "openai",
        "request_model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18",
        "status": 200,
        "input_tokens": 1834,
        "output_tokens": 212,
        "cache_read_tokens": 1536,
        "reasoning_tokens": 64,
        "duration_ms": 2874,
        "ttft_s": 0.412871293,
        "cost_usd": Decimal("0.00045942"),
        "user_name": "Alice",
        "user_role": "user",
    }
    base.update(kw)
    return Event(**base)


def samples(store: MetricsStore) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse the exposition back with prometheus_client's parser: (name, sorted labels) → value."""
    out = {}
    for family in text_string_to_metric_families(store.exposition().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(store: MetricsStore, name: str, **labels: str) -> float:
    return samples(store)[(name, tuple(sorted(labels.items())))]


def promtool_check(text: bytes) -> subprocess.CompletedProcess[bytes]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not installed: run .ci/install-system-packages (make test does)")
    return subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30)


def busy_store() -> MetricsStore:
    store = MetricsStore()
    store.observe(ev())
    store.observe(ev(user=None, team=None, status=None, cost_usd=None, ttft_s=None))
    store.observe(ev(user="bob", provider="anthropic", request_model="claude", response_model=None))
    store.observe(
        ev(
            status=404,
            input_tokens=None,
            output_tokens=None,
            cache_read_tokens=None,
            reasoning_tokens=None,
            cost_usd=None,
            ttft_s=None,
            duration_ms=12,
        )
    )
    store.count_lines("parsed", 4)
    store.count_lines("skipped", 2)
    store.set_gauge("source_lag_bytes", {"source": "/var/log/gw.log"}, 1024)
    store.set_gauge("open_files", None, 3)
    store.set_gauge("checkpoint_age_seconds", {}, 1.5)
    store.inc_counter("rotations_total", {"source": "/var/log/gw.log"})
    store.inc_counter("data_lost_total", {"reason": "truncated"}, 512)
    store.inc_counter("archive_errors_total")
    return store


def test_values_of_one_llm_request() -> None:
    store = MetricsStore()
    store.observe(ev())
    labels = {
        "user": "alice@example.com",
        "team": "research",
        "provider": "openai",
        "model": "gpt-4o-mini-2024-07-18",
    }
    assert value(store, "gwlog_requests_total", **labels, status="200") == 1
    for kind, n in (("input", 1834), ("output", 212), ("cache_read", 1536), ("reasoning", 64)):
        assert value(store, "gwlog_tokens_total", **labels, type=kind) == n
    assert ("gwlog_tokens_total", tuple(sorted({**labels, "type": "cache_write"}.items()))) not in samples(store)
    assert value(store, "gwlog_cost_usd_total", **labels) == 0.00045942
    hist = {"team": "research", "provider": "openai", "model": "gpt-4o-mini-2024-07-18"}
    assert value(store, "gwlog_request_duration_seconds_bucket", **hist, le="2.0") == 0
    assert value(store, "gwlog_request_duration_seconds_bucket", **hist, le="3.0") == 1
    assert value(store, "gwlog_request_duration_seconds_sum", **hist) == 2.874
    assert value(store, "gwlog_request_duration_seconds_count", **hist) == 1
    pm = {"provider": "openai", "model": "gpt-4o-mini-2024-07-18"}
    assert value(store, "gwlog_time_to_first_token_seconds_bucket", **pm, le="0.25") == 0
    assert value(store, "gwlog_time_to_first_token_seconds_bucket", **pm, le="0.5") == 1
    assert (
        value(
            store,
            "gwlog_user_info",
            user="alice@example.com",
            team="research",
            user_name="Alice",
            user_role="user",
        )
        == 1
    )
    assert value(store, "gwlog_last_event_timestamp_seconds") == T0.timestamp()
    assert value(store, "gwlog_build_info", version="0.1.0") == 1


def test_defaults_unknown_unassigned_and_unpriced() -> None:
    store = MetricsStore()
    store.observe(
        ev(
            user=None,
            team="",
            provider=None,
            request_model=None,
            response_model=None,
            status=None,
            cost_usd=None,
            user_name=None,
        )
    )
    store.observe(
        ev(
            status=502,
            input_tokens=None,
            output_tokens=None,
            cache_read_tokens=None,
            reasoning_tokens=None,
            cost_usd=None,
        )
    )
    got = samples(store)
    key = (
        ("model", "unknown"),
        ("provider", "unknown"),
        ("status", "unknown"),
        ("team", "unassigned"),
        ("user", "unknown"),
    )
    assert got[("gwlog_requests_total", key)] == 1
    # Only the request with tokens and no price is unpriced; the 502 without tokens is not.
    assert got[("gwlog_unpriced_requests_total", (("model", "unknown"), ("provider", "unknown")))] == 1
    assert not any(
        name == "gwlog_unpriced_requests_total" and ("model", "gpt-4o-mini-2024-07-18") in lab for name, lab in got
    )
    assert not any(name == "gwlog_user_info" and ("user", "unknown") in lab for name, lab in got)


def test_cost_is_summed_exactly_as_decimal() -> None:
    store = MetricsStore()
    for _ in range(10):
        store.observe(ev(cost_usd=Decimal("0.1")))
    store.observe(ev(cost_usd=Decimal("0.00000000000000000001")))
    (row,) = store.snapshot()["usage"]
    assert row[-1] == "1.00000000000000000001"  # float arithmetic would give 0.9999999999999999
    store.observe(ev(cost_usd=Decimal("NaN")))  # a non-finite cost never poisons the sum
    assert store.snapshot()["usage"][0][-1] == "1.00000000000000000001"


def test_bad_latencies_are_ignored_not_crashing() -> None:
    store = MetricsStore()
    store.observe(ev(ttft_s=float("nan"), duration_ms=-5))
    store.observe(ev(ttft_s=float("inf")))
    snap = store.snapshot()
    assert snap["ttft"] == []
    assert sum(snap["duration"][0][3]) == 1


def test_exposition_passes_promtool_with_no_output() -> None:
    store = busy_store()
    store.observe(ev(user='ev"il\\\nuser', response_model="m", user_name="Zoë 🚀"))
    result = promtool_check(store.exposition())
    assert result.returncode == 0 and result.stdout == b"" and result.stderr == b"", result


def test_registry_with_process_metrics_passes_promtool() -> None:
    registry = CollectorRegistry(auto_describe=False)
    busy_store().register(registry)
    text = generate_latest(registry)
    assert b"process_cpu_seconds_total" in text
    result = promtool_check(text)
    assert result.returncode == 0 and result.stdout == b"" and result.stderr == b"", result


def test_empty_store_exposition_is_valid() -> None:
    text = MetricsStore().exposition()
    assert b'gwlog_lines_total{outcome="parsed"} 0.0' in text
    assert b"gwlog_archive_errors_total 0.0" in text
    assert promtool_check(text).stdout == b""


HOSTILE = [
    'quote"in',
    "back\\slash",
    "new\nline",
    'forged",user="admin',
    "tab\tand\rcr",
    "ünïcødé ✓ 中文",
    "\\n literal",
    "trailing\\",
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_label_values_round_trip_through_the_text_format(hostile: str) -> None:
    store = MetricsStore()
    store.observe(ev(user=hostile, team=hostile, request_model=hostile, response_model=None, user_name=hostile))
    got = samples(store)
    key = (
        ("model", hostile),
        ("provider", "openai"),
        ("status", "200"),
        ("team", hostile),
        ("user", hostile),
    )
    assert got[("gwlog_requests_total", key)] == 1
    assert len([k for k in got if k[0] == "gwlog_requests_total"]) == 1
    assert promtool_check(store.exposition()).stdout == b""


def test_invalid_utf8_surrogates_become_replacement() -> None:
    store = MetricsStore()
    store.observe(ev(user="bad\udcffbyte", user_name="x\ud800"))
    text = store.exposition()
    text.decode("utf-8")  # strictly valid
    assert b'user="bad?byte"' in text and b'user_name="x?"' in text


def test_prefix_is_configurable_and_validated() -> None:
    store = MetricsStore(prefix="llm")
    store.observe(ev())
    text = store.exposition()
    assert b"llm_requests_total{" in text and b"gwlog_" not in text
    with pytest.raises(ValueError):
        MetricsStore(prefix="bad-prefix")


def test_self_metrics_api() -> None:
    store = busy_store()
    assert value(store, "gwlog_source_lag_bytes", source="/var/log/gw.log") == 1024
    assert value(store, "gwlog_open_files") == 3
    assert value(store, "gwlog_checkpoint_age_seconds") == 1.5
    assert value(store, "gwlog_rotations_total", source="/var/log/gw.log") == 1
    assert value(store, "gwlog_data_lost_total", reason="truncated") == 512
    assert value(store, "gwlog_archive_errors_total") == 1
    store.remove_gauge("source_lag_bytes", {"source": "/var/log/gw.log"})
    assert b"gwlog_source_lag_bytes{" not in store.exposition()
    with pytest.raises(ValueError, match="unknown gauge"):
        store.set_gauge("rotations_total", {"source": "x"}, 1)
    with pytest.raises(ValueError, match="takes labels"):
        store.set_gauge("source_lag_bytes", {}, 1)
    with pytest.raises(ValueError, match="only go up"):
        store.inc_counter("archive_errors_total", None, -1)


def test_lines_by_outcome() -> None:
    store = MetricsStore()
    store.count_lines("parsed")
    store.count_lines("malformed", 3)
    assert value(store, "gwlog_lines_total", outcome="parsed") == 1
    assert value(store, "gwlog_lines_total", outcome="malformed") == 3
    assert value(store, "gwlog_lines_total", outcome="held") == 0


def random_events(n: int, seed: int) -> list[Event]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        out.append(
            ev(
                ts=T0 + timedelta(seconds=i),
                user=rnd.choice(["alice", "bob", "carol", None, 'q"uote']),
                team=rnd.choice(["research", "sales", None]),
                provider=rnd.choice(["openai", "anthropic"]),
                response_model=rnd.choice(["gpt-4o", "claude-sonnet-4", None]),
                status=rnd.choice([200, 200, 429, 500, None]),
                input_tokens=rnd.choice([None, rnd.randrange(1, 9000)]),
                cache_write_tokens=rnd.choice([None, 0, 100]),
                duration_ms=rnd.choice([None, rnd.randrange(0, 200_000)]),
                ttft_s=rnd.choice([None, rnd.random() * 5]),
                cost_usd=rnd.choice([None, Decimal(rnd.randrange(1, 10**6)) / Decimal(10**9)]),
            )
        )
    return out


def test_snapshot_restore_is_exact_and_json_able() -> None:
    store = busy_store()
    for e in random_events(500, 1):
        store.observe(e)
    snap = json.loads(json.dumps(store.snapshot()))
    restored = MetricsStore()
    restored.restore(snap)
    assert restored.exposition() == store.exposition()
    assert restored.snapshot() == store.snapshot()
    restored.restore(MetricsStore().snapshot())  # restore replaces, never adds
    assert restored.exposition() == MetricsStore().exposition()


def test_merge_equals_one_process() -> None:
    events = random_events(900, 2)
    whole = MetricsStore()
    for e in events:
        whole.observe(e)
    whole.count_lines("parsed", 900)
    parts = [MetricsStore() for _ in range(3)]
    for i, e in enumerate(events):
        parts[i % 3].observe(e)
    for part in parts:
        part.count_lines("parsed", 300)
    merged = MetricsStore()
    for part in parts:
        merged.merge(json.loads(json.dumps(part.snapshot())))
    assert merged.exposition() == whole.exposition()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.update(format=99),
        lambda s: s.update(buckets=[1, 2, 3]),
        lambda s: s["usage"][0].__setitem__(4, {"200": -1}),
        lambda s: s["usage"][0].__setitem__(6, "not-a-number"),
        lambda s: s["duration"][0].__setitem__(3, [1, 2]),
        lambda s: s.pop("lines"),
        lambda s: s["self"].update(bogus=[]),
    ],
)
def test_restore_rejects_corrupt_snapshots_and_keeps_values(mutate: Any) -> None:
    store = busy_store()
    snap = store.snapshot()
    before = store.exposition()
    mutate(snap)
    with pytest.raises(ValueError, match="metrics snapshot"):
        store.restore(snap)
    assert store.exposition() == before


def test_scrapes_while_observing_are_consistent() -> None:
    store = MetricsStore()
    registry = CollectorRegistry(auto_describe=False)
    store.register(registry, process=False)
    stop = threading.Event()
    errors: list[BaseException] = []

    def scrape() -> None:
        try:
            while not stop.is_set():
                for family in text_string_to_metric_families(generate_latest(registry).decode()):
                    if family.name == "gwlog_request_duration_seconds":
                        by_series: dict[tuple, dict[str, float]] = {}
                        for s in family.samples:
                            lab = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                            by_series.setdefault(lab, {})[s.name + s.labels.get("le", "")] = s.value
                        for values in by_series.values():
                            inf = values["gwlog_request_duration_seconds_bucket+Inf"]
                            assert inf == values["gwlog_request_duration_seconds_count"]
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    thread = threading.Thread(target=scrape)
    thread.start()
    events = random_events(200, 3)
    for _ in range(50):
        for e in events:
            store.observe(e)
    stop.set()
    thread.join()
    assert not errors, errors
    assert sum(r[4].get("200", 0) for r in store.snapshot()["usage"]) > 0


def test_observe_rate() -> None:
    """Smoke-level speed check (the benchmark number lives in docs/benchmarks.md)."""
    events = random_events(5000, 4)
    store = MetricsStore()
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for e in events:
            store.observe(e)
        best = max(best, len(events) / (time.perf_counter() - start))
    print(f"observe(): {best:,.0f}/s")
    assert best > 50_000  # generous floor for 2 shared cores; typical is ~350k/s
