"""Cardinality limits: caps fold into __other__ with exact totals, idle expiry, config errors, floods."""

from __future__ import annotations

import gc
import os
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from gwlog.errors import ConfigError
from gwlog.metrics import OTHER, CardinalityLimits, MetricsStore
from tests.test_metrics import T0, ev, promtool_check, random_events, samples


def totals(store: MetricsStore) -> dict[str, Any]:
    """Sums over every label: what a cap or expiry must never change."""
    snap = store.snapshot()
    return {
        "requests": sum(sum(row[4].values()) for row in snap["usage"]),
        "tokens": sum(sum(row[5].values()) for row in snap["usage"]),
        "cost": sum((Decimal(row[6]) for row in snap["usage"] if row[6]), Decimal(0)),
        "unpriced": sum(row[2] for row in snap["unpriced"]),
        "duration": [sum(c) for c in zip(*(row[3] for row in snap["duration"]), strict=True)],
        "duration_sum": sum(row[4] for row in snap["duration"]),
        "ttft": [sum(c) for c in zip(*(row[2] for row in snap["ttft"]), strict=True)],
    }


def label_values(store: MetricsStore, family: str, label: str) -> set[str]:
    return {dict(lab)[label] for name, lab in samples(store) if name == family}


def test_user_cap_folds_into_other_with_exact_totals() -> None:
    capped = MetricsStore(limits=CardinalityLimits(max_values={"user": 3}))
    free = MetricsStore()
    for i in range(20):
        for store in (capped, free):
            store.observe(ev(user=f"user{i}@example.com", cost_usd=Decimal("0.001") * i))
    users = label_values(capped, "gwlog_requests_total", "user")
    assert users == {"user0@example.com", "user1@example.com", "user2@example.com", OTHER}
    assert label_values(capped, "gwlog_tokens_total", "user") == users  # one admission for all families
    assert label_values(capped, "gwlog_user_info", "user") == users - {OTHER}
    assert totals(capped) == totals(free)
    assert samples(capped)[("gwlog_series_overflow_total", (("label", "user"),))] == 17
    capped.observe(ev(user="user1@example.com"))  # admitted users keep their own series
    assert samples(capped)[("gwlog_series_overflow_total", (("label", "user"),))] == 17
    assert promtool_check(capped.exposition()).stdout == b""


def test_model_cap_covers_every_family_with_a_model() -> None:
    capped = MetricsStore(limits=CardinalityLimits(max_values={"model": 2}))
    free = MetricsStore()
    for i in range(10):
        for store in (capped, free):
            store.observe(ev(response_model=f"forged-model-{i}", cost_usd=None if i % 2 else Decimal("0.5")))
    for family in (
        "gwlog_requests_total",
        "gwlog_unpriced_requests_total",
        "gwlog_request_duration_seconds_count",
        "gwlog_time_to_first_token_seconds_count",
    ):
        assert label_values(capped, family, "model") <= {"forged-model-0", "forged-model-1", OTHER}
    assert totals(capped) == totals(free)


def test_default_max_applies_to_every_limitable_label() -> None:
    store = MetricsStore(limits=CardinalityLimits(default_max=2))
    for code in (200, 401, 404, 429, 500):
        store.observe(ev(status=code, team=f"t{code}"))
    assert label_values(store, "gwlog_requests_total", "status") == {"200", "401", OTHER}
    assert label_values(store, "gwlog_requests_total", "team") == {"t200", "t401", OTHER}


def test_idle_expiry_folds_old_values_and_frees_slots() -> None:
    limits = CardinalityLimits(max_values={"user": 2}, idle_expiry_s=3600)
    store = MetricsStore(limits=limits)
    free = MetricsStore()
    plan = [
        (0, "old@example.com"),
        (10, "active@example.com"),
        (1800, "active@example.com"),
        (3000, "active@example.com"),
        (3590, "newcomer@example.com"),
    ]
    for seconds, user in plan:
        for s in (store, free):
            s.observe(ev(ts=T0 + timedelta(seconds=seconds), user=user))
    # Slots full (old, active): the newcomer at 3590 s overflowed, "old" not yet idle for an hour.
    assert label_values(store, "gwlog_requests_total", "user") == {
        "old@example.com",
        "active@example.com",
        OTHER,
    }
    for s in (store, free):
        s.observe(ev(ts=T0 + timedelta(seconds=4000), user="active@example.com"))
        s.observe(ev(ts=T0 + timedelta(seconds=4001), user="newcomer@example.com"))
    # "old" (last seen at 0 s) expired into __other__ and freed its slot for the newcomer.
    users = label_values(store, "gwlog_requests_total", "user")
    assert users == {"active@example.com", "newcomer@example.com", OTHER}
    assert "old@example.com" not in label_values(store, "gwlog_user_info", "user")
    assert totals(store) == totals(free)


def test_expiry_sweeps_are_not_per_event() -> None:
    store = MetricsStore(limits=CardinalityLimits(max_values={"user": 10}, idle_expiry_s=600))
    sweeps = 0
    original = store._sweep

    def counting(now: float) -> None:
        nonlocal sweeps
        sweeps += 1
        original(now)

    store._sweep = counting  # type: ignore[method-assign]
    for i in range(3000):  # 3000 events over 300 s of event time; sweep interval max(5 s, 600/10) = 60 s
        store.observe(ev(ts=T0 + timedelta(seconds=i / 10)))
    assert 1 <= sweeps <= 6


def test_snapshot_keeps_admissions_and_lower_cap_keeps_recent_users() -> None:
    limits = CardinalityLimits(max_values={"user": 3})
    store = MetricsStore(limits=limits)
    for i in range(5):
        store.observe(ev(ts=T0 + timedelta(seconds=i), user=f"u{i}"))
    snap = store.snapshot()
    restored = MetricsStore(limits=limits)
    restored.restore(snap)
    assert restored.exposition() == store.exposition()
    restored.observe(ev(ts=T0 + timedelta(seconds=9), user="u9"))  # still over the cap after restart
    assert "u9" not in label_values(restored, "gwlog_requests_total", "user")

    lower = MetricsStore(limits=CardinalityLimits(max_values={"user": 2}))
    lower.restore(snap)
    assert label_values(lower, "gwlog_requests_total", "user") == {"u1", "u2", OTHER}  # u1, u2 seen last
    assert totals(lower) == totals(store)


def test_merge_with_caps_keeps_totals_and_the_cap() -> None:
    limits = CardinalityLimits(max_values={"user": 4})
    events = random_events(400, 7)
    for i, e in enumerate(events):
        e.user = f"user{i % 9}"
    parts = [MetricsStore(limits=limits) for _ in range(2)]
    for i, e in enumerate(events):
        parts[i % 2].observe(e)
    free = MetricsStore()
    for e in events:
        free.observe(e)
    merged = MetricsStore(limits=limits)
    for part in parts:
        merged.merge(part.snapshot())
    assert len(label_values(merged, "gwlog_requests_total", "user") - {OTHER}) <= 4
    assert totals(merged) == totals(free)


def test_from_section_accepts_documented_keys() -> None:
    limits = CardinalityLimits.from_section(
        {"max_users": 1000, "max_values": {"model": 200}, "idle_expiry": "24h", "default_max": 0},
        "gwlog.toml",
    )
    assert limits.caps() == {"user": 1000, "model": 200}
    assert limits.idle_expiry_s == 86400
    defaults = CardinalityLimits.from_section({}, "gwlog.toml")
    assert defaults.caps() == dict.fromkeys(("user", "team", "provider", "model", "status"), 10000)
    assert defaults.idle_expiry_s is None
    assert CardinalityLimits.from_section({"idle_expiry": 90}, "f").idle_expiry_s == 90


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"max_users": 0}, "[cardinality] max_users"),
        ({"max_users": "1000"}, "[cardinality] max_users"),
        ({"max_users": True}, "[cardinality] max_users"),
        ({"max_values": {"email": 5}}, "[cardinality] max_values.email"),
        ({"max_values": {"model": -1}}, "[cardinality] max_values.model"),
        ({"max_values": 5}, "[cardinality] max_values"),
        ({"idle_expiry": "24x"}, "[cardinality] idle_expiry"),
        ({"idle_expiry": "1h", "default_max": 0}, "[cardinality] idle_expiry"),
        ({"default_max": -3}, "[cardinality] default_max"),
        ({"max_user": 10}, "[cardinality] max_user"),
    ],
)
def test_from_section_errors_name_file_key_and_fix(section: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        CardinalityLimits.from_section(section, "gwlog.toml")
    assert info.value.file == "gwlog.toml" and info.value.key == key
    assert "\n" not in str(info.value) and " — " in str(info.value)


def test_constructor_rejects_bad_limits() -> None:
    with pytest.raises(ValueError):
        CardinalityLimits(max_values={"type": 3})
    with pytest.raises(ValueError):
        CardinalityLimits(idle_expiry_s=60)  # nothing capped: nothing to free


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_million_forged_emails_keep_memory_and_metrics_bounded() -> None:
    store = MetricsStore(limits=CardinalityLimits(max_values={"user": 1000}))
    event = ev(cost_usd=Decimal("0.0001"))
    gc.collect()
    before = rss_bytes()
    start = time.perf_counter()
    for i in range(1_000_000):
        event.user = f"attacker+{i}@forged.example"
        event.user_name = f"Forged {i}"
        store.observe(event)
    elapsed = time.perf_counter() - start
    gc.collect()
    grown = rss_bytes() - before
    text = store.exposition()
    print(f"flood: 1M events {elapsed:.1f} s, RSS +{grown / 2**20:.1f} MiB, /metrics {len(text) // 1024} KiB")
    assert grown < 40 * 2**20  # 1000 admitted users; uncapped this would be hundreds of MiB
    assert len(text) < 1_500_000  # ~7 series per admitted user, not per forged address
    assert samples(store)[("gwlog_series_overflow_total", (("label", "user"),))] == 999_000
    assert totals(store)["requests"] == 1_000_000


def test_restore_under_tighter_limits_folds_every_label_exactly() -> None:
    free = MetricsStore()
    for e in random_events(600, 11):
        free.observe(e)
    tight = MetricsStore(limits=CardinalityLimits(default_max=1))
    tight.restore(free.snapshot())
    assert totals(tight) == totals(free)
    for label in ("user", "team", "provider", "model", "status"):
        assert len(label_values(tight, "gwlog_requests_total", label) - {OTHER}) <= 1
    assert len(label_values(tight, "gwlog_request_duration_seconds_count", "team") - {OTHER}) <= 1
    assert promtool_check(tight.exposition()).stdout == b""
