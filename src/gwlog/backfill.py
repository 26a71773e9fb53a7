"""``gwlog backfill``: old logs (plain or gzip, any wrapper, any order) → metrics, archive, history.

Files are cut into tasks (whole files; big plain files also into newline-aligned byte ranges when
no line joining can cross a cut) and run on a process pool. Each task reads with its own
``Pipeline``/``LineReader`` — the same per-line path as ``gwlog parse`` — and returns a
``MetricsStore`` snapshot, per-step history deltas and an archive part; the parent merges them in
task order, so the result does not depend on ``jobs``. Event ids are the tailer's
``event_id(source_key, fp, offset)``, so archives written by backfill and by ``tail`` dedupe.

Problems never stop the run: duplicate files (same fingerprint: first line up to 1 KiB + content
size) are skipped, unreadable ones are reported, out-of-order events are counted (history is
bucketed by time, so order does not matter); each gets one line in ``BackfillResult.problems``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import io
import multiprocessing
import os
import re
import shutil
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gwlog.checkpoint import StateFile
from gwlog.config import Config, parse_duration
from gwlog.errors import ConfigError
from gwlog.events import Event
from gwlog.metrics import MetricsStore
from gwlog.openmetrics import History
from gwlog.pipeline import MAX_LINE_BYTES, Pipeline, freeze_heap, write_atomically
from gwlog.pipeline import STATE_VERSION as PIPELINE_STATE_VERSION
from gwlog.reader import Outcome
from gwlog.tailer import FP_BYTES, _classify, event_id, fingerprint
from gwlog.tailer import STATE_VERSION as TAILER_STATE_VERSION

#: Plain files are cut into ranges of at most this size (load balance, progress) …
CHUNK_BYTES = 32 << 20
#: … and of at least this size, aiming at 4 tasks per job so no worker idles at the end.
MIN_CHUNK_BYTES = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
# What reading a damaged or vanished file raises (gzip.BadGzipFile is an OSError).
_READ_ERRORS = (OSError, EOFError, zlib.error, ValueError)
# Wrappers whose partial lines are joined across physical lines: never cut such files.
_JOINING = re.compile(rb'^(\{"log":|\d{4}-\d\d-\d\dT\S+ (stdout|stderr) [PF] )')


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """``--since``/``--until``: RFC 3339 (``2026-08-01T00:00:00Z``) or relative (``24h``, ``7d``)."""
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        try:
            seconds = parse_duration(text, "--since/--until", text)
        except ConfigError:
            raise ValueError(f"{text!r} is neither RFC 3339 nor a duration like 30m, 24h, 7d") from None
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def open_binary(path: str | Path) -> io.BufferedIOBase:
    """A binary stream over a plain or gzip file (detected by magic bytes, not by name)."""
    f = open(path, "rb")  # noqa: SIM115 - returned to the caller
    if f.peek(2)[:2] == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    return f


@dataclass(slots=True, frozen=True)
class FileInfo:
    """What backfill knows about one input before reading it."""

    path: str
    fp: str  # the tailer's fingerprint: sha256 of the first line with its LF (≤ 1 KiB), 16 hex
    size: int  # content size (gzip: ISIZE, the uncompressed size mod 2**32)
    compressed: bool
    joins_lines: bool  # json-file or CRI: partial lines are joined, so no byte-range cuts

    @property
    def fingerprint(self) -> tuple[str, int]:
        """Duplicate detection: the same first line and content size means the same file."""
        return self.fp, self.size


def inspect_file(path: str | Path) -> FileInfo:
    """Fingerprint a file (raises OSError/EOFError/gzip.BadGzipFile when it cannot be read)."""
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        if compressed:
            raw.seek(-4, os.SEEK_END)
            size = struct.unpack("<I", raw.read(4))[0]
        else:
            size = os.fstat(raw.fileno()).st_size
    with open_binary(path) as f:
        head = f.read(FP_BYTES)
    return FileInfo(
        path=str(path),
        # a file shorter than its first line's fingerprint window is keyed by all of it
        fp=fingerprint(head) or hashlib.sha256(head).hexdigest()[:16],
        size=size,
        compressed=compressed,
        joins_lines=bool(_JOINING.match(head)),
    )


# Rotation suffixes: logrotate ``.1``/``-20260801``, kubelet ``.20260801-120000``, each maybe ``.gz``.
_ROTATED = re.compile(r"(\.\d{8}-\d{6}|\.\d+|-\d{8})?(\.gz)?$")


def source_key(path: str | Path) -> str:
    """The tailer's source key for a file: that of the live file a rotated one came from.

    Give backfill the paths spelled as ``gwlog tail``'s globs match them, so ids agree.
    """
    live = _ROTATED.sub("", str(path), count=1)
    return _classify(live, os.path.realpath(live))[0]


@dataclass(slots=True, frozen=True)
class Task:
    """One unit of work: a whole file or a newline-aligned byte range ``[start, end)`` of one."""

    index: int
    file: FileInfo
    start: int = 0
    end: int | None = None  # None: to the end of the stream


def _next_line_start(f: io.BufferedReader, pos: int) -> int:
    """Offset just past the first "\\n" at or after ``pos`` (EOF if none), read in bounded blocks."""
    f.seek(pos)
    while block := f.read(1 << 16):
        found = block.find(b"\n")
        if found >= 0:
            return pos + found + 1
        pos += len(block)
    return pos


def plan_tasks(files: list[FileInfo], chunk_bytes: int = CHUNK_BYTES) -> list[Task]:
    """Cut big plain files at line starts near every ``chunk_bytes``; others stay whole."""
    tasks: list[Task] = []
    for info in files:
        cuts = [0]
        if not info.compressed and not info.joins_lines and info.size > chunk_bytes:
            with open(info.path, "rb") as f:
                for pos in range(chunk_bytes, info.size, chunk_bytes):
                    if pos <= cuts[-1]:
                        continue
                    cut = _next_line_start(f, pos - 1)  # pos itself if pos-1 is "\n"
                    if cut < info.size:
                        cuts.append(cut)
        bounds: list[int | None] = [*cuts[1:], None]
        for start, end in zip(cuts, bounds, strict=True):
            tasks.append(Task(len(tasks), info, start, end))
    return tasks


@dataclass(slots=True)
class TaskResult:
    """What one task hands back to the parent."""

    index: int
    lines: int = 0
    events: int = 0
    outside_window: int = 0
    out_of_order: int = 0
    bytes_read: int = 0
    end_offset: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    snapshot: dict[str, Any] = field(default_factory=dict)
    history: History | None = None
    archive_part: str | None = None
    error: str | None = None
    problems: list[str] = field(default_factory=list)  # lines skipped as overlong, one line each


@dataclass(slots=True, frozen=True)
class _Settings:
    """Per-run settings the workers need (inherited by fork, pickled by spawn)."""

    config: Config
    since: float | None
    until: float | None
    resolution_s: int | None  # None: no history wanted
    part_dir: str | None  # archive parts go here when an archive is wanted
    hold_unterminated: bool  # a state handoff to tail: a final line without "\n" is tail's


class _TaskPipeline(Pipeline):
    """The ordinary pipeline plus the backfill extras: time window, order check, per-step stores."""

    def __init__(self, settings: _Settings, archive_path: str | None) -> None:
        super().__init__(settings.config, archive_path)
        self.settings = settings
        self.history = None if settings.resolution_s is None else History(settings.resolution_s)
        self.steps: dict[int, MetricsStore] = {}
        self.events = self.outside_window = self.out_of_order = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self._prev_ts = float("-inf")

    def take(self, event: Event) -> None:
        ts = event.ts.timestamp()
        s = self.settings
        if (s.since is not None and ts < s.since) or (s.until is not None and ts >= s.until):
            self.outside_window += 1
            return
        if ts < self._prev_ts:
            self.out_of_order += 1
        self._prev_ts = ts
        self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        self.events += 1
        super().take(event)  # prices the event before the per-step store sees it
        if self.history is not None:
            step = self.history.step_of(ts)
            store = self.steps.get(step)
            if store is None:
                store = self.steps[step] = MetricsStore(self.config.metric_prefix, self.config.cardinality)
            store.observe(event)

    def collect_history(self) -> History | None:
        if self.history is not None:
            for step, store in self.steps.items():
                self.history.add_exposition(step, store.exposition())
            self.steps.clear()
        return self.history


def _without_archive(config: Config) -> Config:
    """Workers archive only into their part file, never straight into the configured archive."""
    return dataclasses.replace(config, archive=dataclasses.replace(config.archive, path=None))


_SETTINGS: _Settings | None = None


def _init_worker(settings: _Settings) -> None:
    global _SETTINGS
    _SETTINGS = settings


def _iter_lines(
    f: io.BufferedIOBase, start: int, end: int | None, hold_unterminated: bool
) -> Iterator[tuple[int, int, bytes | None]]:
    """(offset, next offset, line without "\\n") from ``start`` to the first line starting at ``end``.

    ``hold_unterminated`` leaves a final line without "\\n" unread, for ``tail`` to take over. A line
    longer than ``MAX_LINE_BYTES`` comes as ``None`` (counted malformed) and is never held whole.
    """
    offset = start
    while True:
        if end is not None and offset >= end:
            return
        raw = f.readline(MAX_LINE_BYTES)
        if not raw:
            return
        nxt = offset + len(raw)
        if raw.endswith(b"\n"):
            yield offset, nxt, raw[:-1]
        elif len(raw) == MAX_LINE_BYTES:  # overlong: skip the rest of it in bounded pieces
            while raw and not raw.endswith(b"\n"):
                raw = f.readline(MAX_LINE_BYTES)
                nxt += len(raw)
            yield offset, nxt, None
        elif not hold_unterminated:
            yield offset, nxt, raw
        offset = nxt


def _read_range(
    pipe: Pipeline, task: Task, result: TaskResult, hold_unterminated: bool = False, with_ids: bool = True
) -> Iterator[None]:
    """Feed a task's lines to ``pipe`` (yielding after each); read errors end up in ``result``.

    A wrapper partial keeps the offset of its first chunk, as ``gwlog tail`` does, so the joined
    event gets the same id from both. ``with_ids=False`` skips the per-line hash when no sink
    keeps ids (no archive).
    """
    info = task.file
    key = source_key(info.path)
    reader = pipe.reader_for(key)
    handle = pipe.handle
    held_start: int | None = None
    offset = task.start
    try:
        with open_binary(info.path) as f:
            if task.start:
                f.seek(task.start)
            for offset, nxt, raw in _iter_lines(f, task.start, task.end, hold_unterminated):
                if raw is None:
                    pipe.store.count_lines("malformed")
                    result.problems.append(f"{info.path}: line at byte {offset} is longer than "
                                           f"{MAX_LINE_BYTES >> 20} MiB; skipped")  # fmt: skip
                    continue
                start = offset if held_start is None else held_start
                ident = event_id(key, info.fp, start) if with_ids else None
                reading = handle(reader, raw.decode("utf-8", "replace"), key, start, ident)
                held_start = start if reading.outcome is Outcome.HELD or reader.holding else None
                result.lines += 1
                result.bytes_read += nxt - offset
                result.end_offset = nxt
                yield
    except _READ_ERRORS as exc:
        result.error = f"{info.path}: unreadable after {result.lines} lines at byte {offset}: {exc}"
    pipe.flush_readers(key)
    yield


def run_task(task: Task) -> TaskResult:
    """Read one task with its own pipeline; errors become a reported result, never an exception."""
    settings = _SETTINGS
    assert settings is not None, "worker not initialised"
    result = TaskResult(task.index)
    part = None if settings.part_dir is None else os.path.join(settings.part_dir, f"{task.index:08d}.jsonl")
    pipe = _TaskPipeline(settings, part)
    freeze_heap()
    archive = pipe.archive
    for _ in _read_range(pipe, task, result, settings.hold_unterminated, with_ids=archive is not None):
        if archive is not None and archive.pending >= 10_000:
            archive.flush()
    if not pipe.finish(None):
        result.error = f"{task.file.path}: archive part {part} could not be written"
    result.snapshot = pipe.store.snapshot()
    result.history = pipe.collect_history()
    result.archive_part = part
    result.events, result.outside_window, result.out_of_order = (
        pipe.events,
        pipe.outside_window,
        pipe.out_of_order,
    )
    result.first_ts, result.last_ts = pipe.first_ts, pipe.last_ts
    return result


@dataclass(slots=True)
class BackfillResult:
    """The merged outcome of a backfill run."""

    store: MetricsStore
    history: History | None
    files: list[FileInfo]
    tasks: int
    lines: int = 0
    events: int = 0
    outside_window: int = 0
    out_of_order: int = 0
    bytes_read: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    wall_s: float = 0.0
    samples_written: int = 0
    problems: list[str] = field(default_factory=list)  # one line each: duplicates, unreadable, …

    def summary(self) -> str:
        """One line for people: what was read, the events' time span, speed, problem count."""
        rate = self.lines / self.wall_s if self.wall_s else 0.0
        span = ""
        if self.first_ts is not None and self.last_ts is not None:
            first, last = (datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds") for t in
                           (self.first_ts, self.last_ts))  # fmt: skip
            span = f" from {first} to {last}"
        return (
            f"backfill: {len(self.files)} files, {self.lines:,} lines, {self.events:,} events{span} "
            f"({self.outside_window:,} outside the window, {self.out_of_order:,} out of order) "
            f"in {self.wall_s:.1f}s ({rate:,.0f} lines/s), {len(self.problems)} problem(s)"
        )


def _discover(paths: Iterable[str | Path], problems: list[str]) -> list[FileInfo]:
    """Fingerprint inputs in the order given; report duplicates and unreadable files."""
    files: list[FileInfo] = []
    seen: dict[tuple[str, int], str] = {}
    for path in paths:
        try:
            info = inspect_file(path)
        except (*_READ_ERRORS, struct.error) as exc:
            problems.append(f"{path}: unreadable, skipped: {getattr(exc, 'strerror', None) or exc}")
            continue
        first = seen.get(info.fingerprint)
        if first is not None:
            problems.append(f"{path}: duplicate of {first} (same first line and size), skipped")
            continue
        seen[info.fingerprint] = info.path
        files.append(info)
    return files


@contextlib.contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar over bytes on a TTY (stderr); a no-op when piped or disabled.

    Entered only after the pool forked: the bar runs a refresh thread, which must not be forked.
    """
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress("backfill", *columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("backfill", total=total)
        yield lambda n: bar.advance(task, n)


def backfill(
    paths: Iterable[str | Path],
    *,
    config: Config | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    jobs: int | None = None,
    archive: str | Path | None = None,
    openmetrics: str | Path | None = None,
    openmetrics_until: datetime | None = None,
    resolution_s: int = 60,
    extra_labels: dict[str, str] | None = None,
    metrics_out: str | Path | None = None,
    state_dir: str | Path | None = None,
    progress: bool | None = None,
    chunk_bytes: int | None = None,
) -> BackfillResult:
    """Backfill old logs; results are identical for any ``jobs`` (1 runs in this process).

    ``openmetrics_until`` ends the history at the last step that ends by then (e.g. 3 h ago, out
    of Prometheus' head block) while metrics and state still count everything.
    ``progress=None`` shows a bar only when stderr is a TTY. ``extra_labels`` (e.g. ``job``,
    ``instance``) are added to every OpenMetrics series so history joins the live scrape's series.
    ``state_dir`` writes the checkpoint ``gwlog tail --state-dir`` resumes from: every file read
    to its last complete line, the metric values as totals (raises ValueError if one exists).
    """
    started = time.monotonic()
    config = config or Config()
    archive = archive or config.archive.path  # as `parse` does; parts are joined into it at the end
    state_file = None
    if state_dir is not None:
        if until is not None:
            raise ValueError("--until cannot hand over to tail: the handoff point is the end of the files")
        state_file = StateFile(Path(state_dir) / "state.json")
        if os.path.exists(state_file.path):
            raise ValueError(f"{state_file.path} exists: backfill would overwrite tail's positions")
    jobs = max(1, jobs or os.cpu_count() or 1)
    problems: list[str] = []
    files = _discover(paths, problems)
    if chunk_bytes is None:
        cuttable = sum(f.size for f in files if not f.compressed and not f.joins_lines)
        chunk_bytes = max(MIN_CHUNK_BYTES, min(CHUNK_BYTES, cuttable // (4 * jobs)))
    tasks = plan_tasks(files, chunk_bytes)
    part_dir = tempfile.mkdtemp(prefix="gwlog-backfill-") if archive else None
    settings = _Settings(
        config=_without_archive(config),
        since=since.timestamp() if since else None,
        until=until.timestamp() if until else None,
        resolution_s=resolution_s if openmetrics else None,
        part_dir=part_dir,
        hold_unterminated=state_dir is not None,
    )
    total_bytes = sum(t.file.size if t.end is None else t.end - t.start for t in tasks)
    show = sys.stderr.isatty() if progress is None else progress
    results: list[TaskResult] = []
    try:
        if jobs == 1 or len(tasks) <= 1:
            _init_worker(settings)
            with _progress(total_bytes, show) as advance:
                for task in tasks:
                    results.append(run_task(task))
                    advance(results[-1].bytes_read)
        else:
            ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
            if ctx.get_start_method() == "fork":
                # Load the grammar and the price tables once, here: forked workers inherit them
                # (copy-on-write, frozen so the GC does not touch the pages) instead of each
                # spending ~0.5 s of CPU building the same parser.
                Pipeline(settings.config)
                freeze_heap()
            with (
                ctx.Pool(min(jobs, len(tasks)), _init_worker, (settings,)) as pool,
                _progress(total_bytes, show) as advance,
            ):
                for res in pool.imap_unordered(run_task, tasks):
                    results.append(res)
                    advance(res.bytes_read)
        results.sort(key=lambda r: r.index)
        if archive:
            _join_archive(Path(archive), [r.archive_part for r in results if r.archive_part])
    finally:
        if part_dir is not None:
            shutil.rmtree(part_dir, ignore_errors=True)
    result = _merge(config, files, tasks, results, resolution_s if openmetrics else None, problems)
    if openmetrics and result.history is not None:
        end_step = None if openmetrics_until is None else int(openmetrics_until.timestamp() // resolution_s) - 1
        result.samples_written = write_history(result.history, Path(openmetrics), extra_labels, end_step)
    if metrics_out:
        write_atomically(Path(metrics_out), result.store.exposition())
    if state_file is not None:
        Path(state_file.path).parent.mkdir(parents=True, exist_ok=True)
        state_file.save(handoff_state(result.store, tasks, results, archive))
    result.wall_s = time.monotonic() - started
    return result


def _merge(
    config: Config,
    files: list[FileInfo],
    tasks: list[Task],
    results: list[TaskResult],
    resolution_s: int | None,
    problems: list[str],
) -> BackfillResult:
    store = MetricsStore(prefix=config.metric_prefix, limits=config.cardinality)
    history = None if resolution_s is None else History(resolution_s)
    out = BackfillResult(store=store, history=history, files=files, tasks=len(tasks), problems=problems)
    for r in results:
        store.merge(r.snapshot)
        if history is not None and r.history is not None:
            history.merge(r.history)
        out.lines += r.lines
        out.events += r.events
        out.outside_window += r.outside_window
        out.out_of_order += r.out_of_order
        out.bytes_read += r.bytes_read
        if r.first_ts is not None:
            out.first_ts = r.first_ts if out.first_ts is None else min(out.first_ts, r.first_ts)
        if r.last_ts is not None:
            out.last_ts = r.last_ts if out.last_ts is None else max(out.last_ts, r.last_ts)
        problems.extend(r.problems)
        if r.error:
            problems.append(r.error)
    return out


def handoff_state(
    store: MetricsStore, tasks: list[Task], results: list[TaskResult], archive: str | Path | None
) -> dict[str, Any]:
    """The checkpoint ``TailRunner`` loads: tailer positions at each file's end, metric totals.

    Plain files stay open for growth (tail continues at ``acked_end``); ``.gz`` files are done.
    """
    ends: dict[str, int] = {}
    failed = {task.file.fp for task, res in zip(tasks, results, strict=True) if res.error}
    for task, res in zip(tasks, results, strict=True):
        if task.file.fp not in failed:  # a file read with a hole is left to tail entirely
            ends[task.file.fp] = max(ends.get(task.file.fp, 0), res.end_offset)
    files = {
        info.fp: {
            "acked_end": ends[info.fp],
            "source_key": source_key(info.path),
            "last_path": info.path,
            "done": info.compressed,
            "size": ends[info.fp],
        }
        for info in {t.file.fp: t.file for t in tasks}.values()
        if info.fp in ends
    }
    position = None
    if archive is not None:
        position = {"path": str(archive), "size": os.path.getsize(archive)}
    return {
        "version": PIPELINE_STATE_VERSION,
        "tailer": {"version": TAILER_STATE_VERSION, "files": files, "ignored": []},
        "metrics": store.snapshot(),
        "archive": position,
    }


def _join_archive(path: Path, parts: list[str]) -> None:
    """Append the task parts in task order (as one more gzip member when the name ends in ``.gz``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as raw:
        out: Any = gzip.GzipFile(fileobj=raw, mode="wb") if path.suffix == ".gz" else raw
        for part in parts:
            if os.path.exists(part):
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        if out is not raw:
            out.close()


def write_history(
    history: History, path: Path, extra_labels: dict[str, str] | None = None, end_step: int | None = None
) -> int:
    """Write the OpenMetrics file atomically; return the number of samples."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as out:
        n = history.write(out, end_step=end_step, extra_labels=extra_labels)
    os.replace(tmp, path)
    return n


class _Collector(Pipeline):
    """A pipeline whose only sink is a list: events for ``gwlog report`` over raw logs."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.taken: list[Event] = []

    def take(self, event: Event) -> None:
        self.pricer.price(event)
        self.taken.append(event)


def iter_events(path: str | Path, config: Config | None = None) -> Iterator[Event]:
    """Events of one raw log file, in file order, priced, with backfill's ids."""
    pipe = _Collector(_without_archive(config or Config()))
    result = TaskResult(0)
    for _ in _read_range(pipe, Task(0, inspect_file(path)), result):
        yield from pipe.taken
        pipe.taken.clear()
    if result.error:
        raise OSError(result.error)
