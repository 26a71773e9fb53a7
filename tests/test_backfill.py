"""Backfill: any job count equals one reader over the same lines; inputs of every kind; handoff to tail."""

from __future__ import annotations

import gzip
import json
import random
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from gwlog.backfill import backfill, inspect_file, parse_when, source_key
from gwlog.config import Config
from gwlog.pipeline import Pipeline
from gwlog.tailer import Tailer, event_id
from tests.test_openmetrics import USERS, line

ROOT = Path(__file__).resolve().parent.parent


def corpus(tmp_path: Path, fmt: str, lines: int, seed: int = 1) -> tuple[Path, dict]:
    out = tmp_path / f"{fmt}-{seed}.log"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "corpus.py"), "--lines", str(lines), "--format", fmt,
         "--out", str(out), "--seed", str(seed)],
        check=True, capture_output=True,
    )  # fmt: skip
    return out, json.loads(Path(f"{out}.expected.json").read_text())


def one_reader(paths: list[Path]) -> bytes:
    """The reference: every line of every file through one pipeline, the way `gwlog parse` reads."""
    pipe = Pipeline(Config())
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            reader = pipe.reader_for(str(path))
            for raw in f:
                pipe.handle(reader, raw.rstrip(b"\n").decode("utf-8", "replace"), str(path), 0, "")
        pipe.flush_readers(str(path))
    return pipe.store.exposition()


def requests_total(exposition: bytes) -> int:
    lines = exposition.splitlines()
    return sum(int(float(ln.rsplit(b" ", 1)[1])) for ln in lines if ln.startswith(b"gwlog_requests_total{"))


def test_jobs_and_cuts_do_not_change_the_result(tmp_path: Path) -> None:
    log, truth = corpus(tmp_path, "compose", 6000)
    reference = one_reader([log])
    assert requests_total(reference) == truth["request_lines"]
    results = []
    for jobs, chunk in ((1, 1 << 30), (1, 64 << 10), (2, 64 << 10)):
        om = tmp_path / f"h{jobs}-{chunk}.om"
        res = backfill([log], jobs=jobs, chunk_bytes=chunk, openmetrics=om, progress=False)
        assert res.store.exposition() == reference, (jobs, chunk)
        assert res.events == truth["request_lines"] and not res.problems
        results.append((res, om.read_bytes()))
    assert results[1][0].tasks > 1 and results[2][0].tasks == results[1][0].tasks
    assert results[0][1] == results[1][1] == results[2][1]  # identical history too


def test_gzip_and_mixed_wrappers_in_any_order(tmp_path: Path) -> None:
    compose, t1 = corpus(tmp_path, "compose", 1500, seed=2)
    docker, t2 = corpus(tmp_path, "docker-json", 1500, seed=3)
    cri, t3 = corpus(tmp_path, "cri", 1500, seed=4)
    packed = tmp_path / "docker.log.1.gz"
    packed.write_bytes(gzip.compress(docker.read_bytes()))
    docker.unlink()
    files = [cri, packed, compose]
    res = backfill(files, jobs=2, chunk_bytes=32 << 10, progress=False)
    assert not res.problems
    assert res.events == t1["request_lines"] + t2["request_lines"] + t3["request_lines"]
    assert res.store.exposition() == one_reader(files)
    assert {info.joins_lines for info in res.files} == {True, False}


def test_since_until_window_and_out_of_order(tmp_path: Path) -> None:
    start = datetime(2026, 8, 1, tzinfo=UTC).timestamp()
    stamps = [start + 60 * n for n in range(300)]  # 5 h, one request a minute
    order = list(range(300))
    random.Random(7).shuffle(order)
    log = tmp_path / "shuffled.log"
    log.write_text("".join(line(stamps[n], n) + "\n" for n in order))
    since, until = parse_when("2026-08-01T01:00:00Z"), parse_when("2026-08-01T03:30:00+00:00")
    res = backfill([log], since=since, until=until, jobs=1, progress=False)
    inside = [n for n in range(300) if since.timestamp() <= stamps[n] < until.timestamp()]
    assert res.events == len(inside) == 150
    assert res.outside_window == 150
    assert res.out_of_order > 0
    assert requests_total(res.store.exposition()) == 150
    now = datetime(2026, 8, 2, tzinfo=UTC)
    assert parse_when("24h", now=now) == datetime(2026, 8, 1, tzinfo=UTC)
    assert parse_when("7d", now=now) == datetime(2026, 7, 26, tzinfo=UTC)
    with pytest.raises(ValueError, match="neither RFC 3339 nor a duration"):
        parse_when("yesterday")


def test_duplicates_and_unreadable_files_are_reported_once_each(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("".join(line(1.7e9 + n, n) + "\n" for n in range(50)))
    copy = tmp_path / "copy-of-a.log"
    shutil.copy(log, copy)
    packed = tmp_path / "a.log.gz"
    packed.write_bytes(gzip.compress(log.read_bytes()))
    broken = tmp_path / "broken.log.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00garbage-that-is-not-deflate" * 4)
    missing = tmp_path / "missing.log"
    res = backfill([log, copy, packed, broken, missing, tmp_path], jobs=1, progress=False)
    assert res.events == 50
    assert len(res.problems) == 5, res.problems
    assert sum("duplicate of" in p for p in res.problems) == 2
    assert any(p.startswith(str(broken)) for p in res.problems)
    assert any(p.startswith(str(missing)) and "unreadable" in p for p in res.problems)
    assert all("\n" not in p for p in res.problems)


def test_event_ids_equal_the_tailers_and_state_hands_over_to_tail(tmp_path: Path) -> None:
    log = tmp_path / "agw.log"
    log.write_text("".join(line(1.7e9 + n, n) + "\n" for n in range(40)) + line(1.7e9 + 40, 40)[:80])
    archive = tmp_path / "events.jsonl"
    state_dir = tmp_path / "state"
    res = backfill([log], archive=archive, state_dir=state_dir, jobs=1, progress=False)
    assert res.events == 40  # the unterminated last line is left for tail
    records = [orjson.loads(x) for x in archive.read_bytes().splitlines()]
    info = inspect_file(log)
    assert [r["id"] for r in records] == [event_id(source_key(log), info.fp, r["offset"]) for r in records]

    # the tailer, from nothing, reads the same lines and computes the same ids
    fresh = Tailer([str(log)])
    lines = fresh.poll()
    fresh.close()
    assert [event_id(x.source_key, x.fp, x.start) for x in lines] == [r["id"] for r in records]

    # from backfill's state, tail continues exactly after the last complete line
    state = json.loads((state_dir / "state.json").read_text())
    with log.open("a") as f:
        f.write(line(1.7e9 + 40, 40)[80:] + "\n" + line(1.7e9 + 41, 41) + "\n")
    tail = Tailer([str(log)], state=state["tailer"])
    new = []
    deadline = time.monotonic() + 5
    while len(new) < 2 and time.monotonic() < deadline:
        new += tail.poll()
    tail.close()
    assert [x.data.decode() for x in new] == [line(1.7e9 + 40, 40), line(1.7e9 + 41, 41)]
    assert state["metrics"] == res.store.snapshot()
    with pytest.raises(ValueError, match="exists"):
        backfill([log], state_dir=state_dir, progress=False)


def test_history_users_match_what_was_written(tmp_path: Path) -> None:
    log = tmp_path / "h.log"
    log.write_text("".join(line(1.7e9 + 30 * n, n) + "\n" for n in range(90)))
    om = tmp_path / "h.om"
    backfill([log], openmetrics=om, extra_labels={"job": "gwlog"}, jobs=2, progress=False)
    text = om.read_text()
    assert text.endswith("# EOF\n") and text.count("# TYPE gwlog_requests counter") == 1
    last: dict[str, int] = {}
    for ln in text.splitlines():
        if ln.startswith("gwlog_requests_total{"):
            user = ln.split('user="', 1)[1].split('"', 1)[0]
            last[ln.rsplit(" ", 2)[0]] = int(ln.rsplit(" ", 2)[1])
            assert 'job="gwlog"' in ln and user in USERS
    assert sum(last.values()) == 90


def test_archive_is_appended_to_never_replaced(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("".join(line(1.7e9 + n, n) + "\n" for n in range(30)))
    for name in ("events.jsonl", "events.jsonl.gz"):
        archive = tmp_path / name
        for _ in range(2):
            backfill([log], archive=archive, jobs=2, chunk_bytes=2048, progress=False)
        opener = gzip.open if name.endswith(".gz") else open
        with opener(archive, "rb") as f:
            records = [orjson.loads(x) for x in f.read().splitlines()]
        assert [r["offset"] for r in records] == 2 * sorted(r["offset"] for r in records[:30])


def test_an_overlong_line_is_skipped_with_bounded_memory(tmp_path: Path) -> None:
    """A 48 MiB line (a runaway writer) is counted malformed and reported, never held whole."""
    import tracemalloc

    good = (
        "2026-08-20T09:16:00.{n}Z\tinfo\trequest src.addr=1.1.1.1:1 http.status=200 "
        "gen_ai.provider.name=openai gen_ai.request.model=gpt-4o duration=1ms\n"
    )
    log = tmp_path / "runaway.log"
    with log.open("wb") as out:
        out.write(good.format(n=1).encode())
        for _ in range(48):
            out.write(b"x" * (1 << 20))
        out.write(b"\n" + good.format(n=2).encode())
    small = tmp_path / "small.log"
    small.write_text(good.format(n=3))
    backfill([small], jobs=1, progress=False)  # grammar and price tables: loaded before measuring
    tracemalloc.start()
    try:
        result = backfill([log], jobs=1, progress=False, chunk_bytes=8 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20, f"traced peak {peak >> 20} MiB"
    assert result.events == 2
    assert [p for p in result.problems if "longer than 8 MiB" in p]
    text = result.store.exposition().decode()
    assert 'gwlog_lines_total{outcome="malformed"} 1.0' in text
