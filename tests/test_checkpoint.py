"""The state file: atomic saves, unusable files moved aside (never trusted), full disks reported."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from gwlog.checkpoint import STATE_VERSION, StateFile, StateWriteError

STATE = {"tailer": {"version": 1, "files": {"ab" * 8: {"acked_end": 10}}, "ignored": []}, "metrics": {}}


def test_missing_is_none(tmp_path: Path) -> None:
    assert StateFile(tmp_path / "state.json").load() is None


def test_roundtrip_and_no_temp_left(tmp_path: Path) -> None:
    sf = StateFile(tmp_path / "state.json")
    sf.save(STATE)
    assert sf.load() == {**STATE, "version": STATE_VERSION}
    assert os.listdir(tmp_path) == ["state.json"]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'{"version": 1, "tail', "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "not a gwlog state file"),
        (b'{"offsets": {}}', "not a gwlog state file"),
        (b'{"version": 7}', "version 7"),
    ],
)
def test_unusable_file_is_moved_aside_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, why: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, "gwlog.checkpoint"):
        assert StateFile(path).load() is None
    assert not path.exists()
    aside = list(tmp_path.glob("state.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == content
    assert len(caplog.records) == 1 and why in caplog.records[0].getMessage()
    assert "\n" not in caplog.records[0].getMessage()


def test_crash_before_replace_keeps_previous_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sf = StateFile(tmp_path / "state.json")
    sf.save(STATE)

    def killed(*_: object) -> None:
        raise OSError(errno.EIO, "simulated crash before rename")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(StateWriteError):
        sf.save({"tailer": {}, "metrics": {"x": 1}})
    monkeypatch.undo()
    assert sf.load() == {**STATE, "version": STATE_VERSION}
    assert os.listdir(tmp_path) == ["state.json"]


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (root may mount one); skipped where mounting is not allowed."""
    d = tmp_path / "tiny"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)], capture_output=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (CI runs as root): {r.stderr.decode().strip()}")
    yield d
    subprocess.run(["umount", str(d)], check=True)


def test_full_disk_raises_typed_error_and_keeps_old_state(tiny_fs: Path) -> None:
    sf = StateFile(tiny_fs / "state.json")
    sf.save(STATE)
    huge = {"tailer": {}, "metrics": {"blob": "x" * 200_000}}
    with pytest.raises(StateWriteError) as exc:
        sf.save(huge)
    assert exc.value.errno == errno.ENOSPC
    assert "cannot save state" in str(exc.value)
    assert sf.load() == {**STATE, "version": STATE_VERSION}
    assert os.listdir(tiny_fs) == ["state.json"]


def test_unwritable_directory_raises_typed_error(tmp_path: Path) -> None:
    with pytest.raises(StateWriteError):
        StateFile(tmp_path / "missing-dir" / "state.json").save(STATE)


def test_written_bytes_are_orjson(tmp_path: Path) -> None:
    sf = StateFile(tmp_path / "state.json")
    sf.save(STATE)
    assert orjson.loads((tmp_path / "state.json").read_bytes())["version"] == STATE_VERSION
