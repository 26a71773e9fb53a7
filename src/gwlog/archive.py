"""The JSONL archive sink: one orjson line per event, appended, rotated, gzipped when closed.

Writes go through ``os.write`` on an ``O_APPEND`` descriptor and a queue of whole encoded lines,
so a full disk or a permission error never tears a line: the unwritten rest stays queued and is
retried, the error is reported once a minute, and the metrics path never sees an exception.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from gwlog.events import Event

Reporter = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"gwlog: {message}", file=sys.stderr, flush=True)


class Archive:
    """Append-only JSONL archive with replay dedupe, rotation and background gzip of closed files."""

    REPORT_EVERY_S = 60.0

    def __init__(
        self,
        path: str | Path,
        *,
        rotate_daily: bool = False,
        rotate_bytes: int | None = None,
        compress: bool = True,
        max_buffered_events: int = 100_000,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        report: Reporter = _stderr,
    ) -> None:
        self.path = Path(path)
        self.rotate_daily = rotate_daily
        self.rotate_bytes = rotate_bytes
        self.compress = compress
        self.max_buffered_events = max_buffered_events
        self.transform = transform
        self.report = report
        self.errors = 0  # failed write attempts (gwlog_archive_errors_total)
        self.dropped = 0  # events dropped because the buffer overflowed while the disk failed
        self._pending: deque[bytes] = deque()
        self._head_written = 0  # bytes of _pending[0] already on disk
        self._fd: int | None = None
        self._size = 0
        self._day = datetime.now(UTC).date()
        self._replay_ids: set[str] = set()
        self._replay_from = 0
        self._last_report = 0.0
        self._gzip_threads: list[threading.Thread] = []

    # -- sink -----------------------------------------------------------------------------------

    def write(self, event: Event) -> None:
        """Queue an event; replays of events already archived before a crash are dropped by id."""
        if event.id is not None and event.id in self._replay_ids:
            self._replay_ids.discard(event.id)
            return
        record = event.to_record()
        if self.transform is not None:
            record = self.transform(record)
        self._pending.append(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
        if len(self._pending) > self.max_buffered_events:
            self._drop_oldest()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> bool:
        """Write queued lines; True when nothing is left queued."""
        while self._pending:
            if self._fd is None and not self._open():
                return False
            head = self._pending[0]
            try:
                assert self._fd is not None
                n = os.write(self._fd, head[self._head_written :] if self._head_written else head)
            except OSError as exc:
                self._failed(f"write failed: {exc.strerror or exc}")
                return False
            self._size += n
            self._head_written += n
            if self._head_written >= len(head):
                self._pending.popleft()
                self._head_written = 0
        return True

    def sync(self) -> bool:
        """Flush and fsync: the durability point a checkpoint commit relies on."""
        if not self.flush():
            return False
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self._failed(f"fsync failed: {exc.strerror or exc}")
                return False
        return True

    def position(self) -> dict[str, Any]:
        """Where the archive stands, for the checkpoint: events after it are replays after a crash.

        While replays from the previous run are still expected, the position stays where that run
        committed, so a crash now still finds (and drops) them next time.
        """
        size = self._replay_from if self._replay_ids else self._size
        return {"path": str(self.path), "size": size}

    def load_replay_ids(self, position: dict[str, Any] | None) -> int:
        """Remember the ids written after the last committed position so their replays are dropped."""
        if not position or position.get("path") != str(self.path) or not self.path.exists():
            return 0
        start = self._replay_from = int(position.get("size", 0))
        with self.path.open("r+b") as fh:
            fh.seek(start)
            complete_end = start
            for line in fh:
                if not line.endswith(b"\n"):
                    # A line torn by a crash mid-write: cut it, its event is replayed in full.
                    fh.truncate(complete_end)
                    break
                complete_end += len(line)
                try:
                    event_id = orjson.loads(line).get("id")
                except orjson.JSONDecodeError:
                    continue
                if isinstance(event_id, str):
                    self._replay_ids.add(event_id)
        return len(self._replay_ids)

    # -- rotation -------------------------------------------------------------------------------

    def rotate_if_due(self, now: float | None = None) -> Path | None:
        """Close and rename the current file when a day ended or it grew past the size limit."""
        today = datetime.fromtimestamp(now if now is not None else time.time(), UTC).date()
        due = (self.rotate_daily and today != self._day) or (
            self.rotate_bytes is not None and self._size >= self.rotate_bytes
        )
        if not due or self._pending or self._fd is None:
            self._day = today if not self._fd else self._day
            return None
        self._close_fd()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        closed = self.path.with_name(f"{self.path.stem}-{stamp}{self.path.suffix}")
        os.replace(self.path, closed)
        self._day = today
        if self.compress:
            thread = threading.Thread(target=_gzip_file, args=(closed, self.report), daemon=True)
            thread.start()
            self._gzip_threads.append(thread)
        return closed

    def close(self) -> bool:
        """Flush, fsync and close; waits for background gzip so nothing is left half-compressed."""
        ok = self.sync()
        self._close_fd()
        for thread in self._gzip_threads:
            thread.join()
        self._gzip_threads.clear()
        return ok

    # -- internals ------------------------------------------------------------------------------

    def _open(self) -> bool:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._size = os.fstat(self._fd).st_size
            self._day = datetime.now(UTC).date()
            return True
        except OSError as exc:
            self._failed(f"cannot open: {exc.strerror or exc}")
            return False

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _drop_oldest(self) -> None:
        # Never drop a line that is half on disk: the rest of it must follow.
        keep_head = self._pending.popleft() if self._head_written else None
        if self._pending:
            self._pending.popleft()
            self.dropped += 1
        if keep_head is not None:
            self._pending.appendleft(keep_head)

    def _failed(self, what: str) -> None:
        self.errors += 1
        now = time.monotonic()
        if now - self._last_report >= self.REPORT_EVERY_S or self._last_report == 0.0:
            self._last_report = now
            self.report(
                f"archive {self.path}: {what}; {len(self._pending)} events queued, retrying"
                + (f", {self.dropped} dropped so far" if self.dropped else "")
            )


def _gzip_file(path: Path, report: Reporter) -> None:
    target = path.with_name(path.name + ".gz")
    tmp = path.with_name(path.name + ".gz.tmp")
    try:
        with path.open("rb") as src, gzip.open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, target)
        path.unlink()
    except OSError as exc:
        report(f"archive {path}: gzip failed: {exc.strerror or exc}; kept uncompressed")
        tmp.unlink(missing_ok=True)


def iter_records(paths: Iterable[str | Path]) -> Iterable[dict[str, Any]]:
    """Read archive files (plain or .gz) back as records; bad lines are skipped."""
    for path in paths:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rb") as fh:
            for line in fh:
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
