"""The JSONL archive: schema, rotation, gzip, replay dedupe, and a disk that fills up."""

from __future__ import annotations

import gzip
import os
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from gwlog.archive import Archive, iter_records
from gwlog.events import ARCHIVE_FIELDS, Event, ParsedLine


def make_event(n: int) -> Event:
    fields = {
        "http.status": 200,
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 10 + n,
        "gen_ai.usage.output_tokens": 5,
        "agw.ai.usage.cost.total": Decimal("0.000393"),
        "duration": 1200,
        "user.email": f"user{n}@example.com",
    }
    event = Event.from_parsed(ParsedLine(datetime(2026, 8, 20, 9, 0, 0, 5, tzinfo=UTC), fields))
    event.id, event.source, event.offset = f"id-{n}", "test", n * 100
    return event


def read_lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_records_follow_the_schema_in_order(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "events.jsonl")
    archive.write(make_event(1))
    assert archive.close()
    (record,) = read_lines(tmp_path / "events.jsonl")
    assert tuple(record) == ARCHIVE_FIELDS
    assert record["ts"] == "2026-08-20T09:00:00.000005Z"
    assert record["cost_usd"] == "0.000393" and record["cost_source"] == "gateway"
    assert record["fields"]["agw.ai.usage.cost.total"] == "0.000393"
    assert record["input_tokens"] == 11 and record["model"] == "gpt-4o"


def test_replays_after_the_committed_position_are_dropped_by_id(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    first = Archive(path)
    for n in range(3):
        first.write(make_event(n))
    first.sync()
    committed = first.position()
    for n in range(3, 6):  # written, but the crash came before the checkpoint
        first.write(make_event(n))
    first.close()

    second = Archive(path)
    assert second.load_replay_ids(committed) == 3
    for n in range(3, 8):  # the tailer replays 3..5, then new lines 6, 7
        second.write(make_event(n))
    second.close()
    assert [r["id"] for r in read_lines(path)] == [f"id-{n}" for n in range(8)]


def test_size_rotation_gzips_closed_files_and_keeps_every_event(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    archive = Archive(path, rotate_bytes=2000)
    for n in range(20):
        archive.write(make_event(n))
        archive.flush()
        archive.rotate_if_due()
    archive.close()
    closed = sorted(tmp_path.glob("events-*.jsonl.gz"))
    assert closed, "no rotated file"
    assert not list(tmp_path.glob("events-*.jsonl")), "closed files are compressed"
    ids = [r["id"] for r in iter_records([*closed, path])]
    assert ids == [f"id-{n}" for n in range(20)]
    with gzip.open(closed[0]) as fh:
        assert fh.readline().startswith(b'{"id":"id-0"')


def test_daily_rotation_on_a_new_day(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    archive = Archive(path, rotate_daily=True, compress=False)
    archive.write(make_event(1))
    archive.flush()
    tomorrow = datetime.now(UTC).timestamp() + 86400
    closed = archive.rotate_if_due(now=tomorrow)
    assert closed is not None and closed.exists()
    archive.write(make_event(2))
    archive.close()
    assert [r["id"] for r in read_lines(closed)] == ["id-1"]
    assert [r["id"] for r in read_lines(path)] == ["id-2"]


def test_disk_full_is_reported_and_never_raises(tmp_path: Path) -> None:
    """/dev/full answers every write with ENOSPC: the archive reports once and keeps the events."""
    messages: list[str] = []
    archive = Archive("/dev/full", report=messages.append, max_buffered_events=5)
    for n in range(8):
        archive.write(make_event(n))
        assert archive.flush() is False
    assert archive.errors == 8
    assert len(messages) == 1 and "No space left on device" in messages[0]
    assert archive.pending == 5 and archive.dropped == 3


@pytest.fixture
def tiny_disk(tmp_path: Path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
        ).returncode
    ):
        pytest.fail("needs root to mount a 64 KiB tmpfs (CI runs as root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_full_disk_recovers_without_torn_or_lost_lines(tiny_disk: Path) -> None:
    filler = tiny_disk / "filler"
    filler.write_bytes(b"x" * 40_000)
    path = tiny_disk / "events.jsonl"
    messages: list[str] = []
    archive = Archive(path, report=messages.append)
    for n in range(60):  # ~60 × 900 bytes does not fit next to the filler
        archive.write(make_event(n))
    assert archive.flush() is False
    assert messages and "No space left on device" in messages[0]
    filler.unlink()  # the operator frees space
    assert archive.close()
    assert [r["id"] for r in read_lines(path)] == [f"id-{n}" for n in range(60)]


def test_a_line_torn_by_a_crash_is_cut_before_replays_append(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    first = Archive(path)
    first.write(make_event(0))
    first.sync()
    committed = first.position()
    first.write(make_event(1))
    first.close()
    with path.open("ab") as fh:  # SIGKILL in the middle of writing event 2
        fh.write(orjson.dumps(make_event(2).to_record())[:50])
    second = Archive(path)
    assert second.load_replay_ids(committed) == 1
    for n in (1, 2, 3):
        second.write(make_event(n))
    second.close()
    assert [r["id"] for r in read_lines(path)] == ["id-0", "id-1", "id-2", "id-3"]
