"""Wiring: sources → reader → attribution → sinks → checkpoints, for ``parse`` and ``tail``.

One ``Pipeline`` owns the sinks; the two drivers differ only in their source. ``run_stdin`` reads
a pipe with low latency (a line is visible on /metrics as soon as its chunk arrives). ``run_tail``
acks tailer lines only after every sink took their events, and commits offsets together with the
metric values so a restart continues the counters without losing or repeating a line.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gwlog.archive import Archive
from gwlog.checkpoint import StateFile, StateWriteError
from gwlog.config import Config, load_config
from gwlog.errors import ConfigError
from gwlog.events import Event
from gwlog.identity import IdentityResolver
from gwlog.metrics import MetricsStore
from gwlog.pricing import Pricer
from gwlog.reader import LineReader, Outcome, Reading
from gwlog.tailer import Line, Tailer, event_id

STATE_VERSION = 1
STREAM_FP = "stream"  # a pipe has no file fingerprint: ids are the stream's byte offsets
MAX_LINE_BYTES = 8 << 20  # longer stdin lines are counted as malformed and skipped, never buffered
READ_CHUNK = 256 << 10  # per read from stdin; bigger chunks only raise the peak RSS (block copies)
# Lines per tail batch: small enough that a batch's lines, events and archive records stay a few MB
# (peak RSS), large enough that per-batch costs (ack, archive write) vanish.
POLL_BATCH_LINES = 2_000
# A line the scanner reads (grammar key table, price tables). The reference parser's LALR tables
# (~0.4 s, ~20 MiB peak) are built only when a line the scanner declines first needs them.
_WARM_UP = (
    "2026-01-01T00:00:00.1Z\tinfo\trequest src.addr=127.0.0.1:1 http.status=200 gen_ai.provider.name=openai "
    "gen_ai.request.model=gpt-4o gen_ai.usage.input_tokens=1 gen_ai.usage.output_tokens=1"
)
WARM_UP_LINES = (f"{_WARM_UP} duration=1ms",)


def _say(message: str) -> None:
    print(f"gwlog: {message}", file=sys.stderr, flush=True)


class Pipeline:
    """The sinks and the per-source readers; ``handle`` is the per-line hot path."""

    def __init__(self, config: Config, archive_path: str | None = None) -> None:
        self.config = config
        self.resolver = IdentityResolver(config.identity, config.teams, config.privacy)
        self.pricer = Pricer(config.pricing)
        self.store = MetricsStore(prefix=config.metric_prefix, limits=config.cardinality)
        self.archive: Archive | None = None
        path = archive_path or config.archive.path
        if path:
            self.archive = Archive(
                path,
                rotate_daily=config.archive.rotate == "daily",
                rotate_bytes=config.archive.rotate_bytes,
                compress=config.archive.compress,
                max_buffered_events=config.archive.max_buffered_events,
                transform=self.resolver.archive_transform(),
            )
        self._readers: dict[str, LineReader] = {}
        self._counted = CounterMirror()
        self._warm_up()

    def _warm_up(self) -> None:
        """Load the grammar's key table and the price tables now, so the first real line is not late."""
        reader = LineReader(self.resolver.resolve)
        for line in WARM_UP_LINES:
            event = reader.read(line).event
            if event is not None:
                self.pricer.price(event)

    def reload_teams(self) -> None:
        """SIGHUP: re-read the team rules from the config file; counters are kept, a broken file is
        reported and the previous rules stay."""
        if self.config.file == "<defaults>":
            _say("SIGHUP: no --config file, nothing to reload")
            return
        try:
            teams = load_config(self.config.file).teams
            self.resolver.reload_teams(teams)
        except ConfigError as exc:
            _say(f"SIGHUP: {exc}; keeping the previous team rules")
            return
        self.config.teams = teams
        _say(f"SIGHUP: team rules reloaded from {self.config.file}")

    def reader_for(self, source_key: str) -> LineReader:
        reader = self._readers.get(source_key)
        if reader is None:
            reader = self._readers[source_key] = LineReader(self.resolver.resolve)
        return reader

    def handle(self, reader: LineReader, text: str, source: str, offset: int, ident: str | None) -> Reading:
        """Read one line and hand its event to every sink (``ident``: None when no sink uses ids)."""
        reading = reader.read(text)
        event = reading.event  # PARSED, or INVALID_UTF8 that still parsed
        if event is not None:
            event.id, event.source, event.offset = ident, source, offset
            self.take(event)
        if reading.outcome is not Outcome.HELD:
            self.store.count_lines(reading.outcome.value)
        return reading

    def take(self, event: Event) -> None:
        self.pricer.price(event)
        self.store.observe(event)
        if self.archive is not None:
            self.archive.write(event)

    def flush_readers(self, source: str) -> None:
        """End of a stream: partial records still held become readings (counted, never dropped)."""
        reader = self._readers.pop(source, None)
        if reader is None:
            return
        for reading in reader.flush():
            if reading.event is not None:
                event = reading.event
                event.source = source
                event.id = event.id or event_id(source, f"{STREAM_FP}@{event.ts.isoformat()}", -1)
                self.take(event)
            self.store.count_lines(reading.outcome.value)

    def export_sink_stats(self) -> None:
        """Mirror archive and identity counters into the metrics store."""
        if self.archive is not None:
            self._counted.inc(self.store, "archive_errors_total", {}, self.archive.errors)
            self._counted.inc(self.store, "data_lost_total", {"reason": "archive_unwritable"}, self.archive.dropped)
        for reason, count in self.resolver.stats.items():
            self._counted.inc(self.store, "identity_rejected_total", {"reason": reason}, count)

    def finish(self, metrics_out: str | None) -> bool:
        """Close the archive and write the final exposition; False if the archive could not be saved."""
        ok = True
        if self.archive is not None:
            ok = self.archive.close()
        self.export_sink_stats()
        if metrics_out:
            write_atomically(Path(metrics_out), self.store.exposition())
        return ok


class CounterMirror:
    """Turns a component's running totals into counter increments (totals restart with the process,
    the store's counters continue from the checkpoint)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def inc(self, store: MetricsStore, name: str, labels: dict[str, str], total: float) -> None:
        key = (name, tuple(sorted(labels.items())))
        delta = total - self._seen.get(key, 0)
        if delta > 0:
            store.inc_counter(name, labels, delta)
            self._seen[key] = total


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class StopFlag:
    """SIGTERM/SIGINT ask the loops to stop at the next line boundary; SIGHUP reloads teams."""

    def __init__(self, on_hup: Callable[[], None] | None = None) -> None:
        self.stopped = threading.Event()
        self._on_hup = on_hup
        self._hup = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        if self._on_hup is not None:
            signal.signal(signal.SIGHUP, self._hup_handler)

    def _stop(self, signum: int, frame: Any) -> None:
        self.stopped.set()

    def _hup_handler(self, signum: int, frame: Any) -> None:
        self._hup = True

    def service(self) -> None:
        """Run deferred SIGHUP work outside the signal handler."""
        if self._hup and self._on_hup is not None:
            self._hup = False
            self._on_hup()

    @property
    def is_set(self) -> bool:
        return self.stopped.is_set()


def run_stdin(pipeline: Pipeline, stop: StopFlag, fd: int = 0, source: str = "stdin") -> None:
    """Read a stream until EOF or a stop signal; each chunk's lines are on /metrics at once."""
    reader = pipeline.reader_for(source)
    freeze_heap()
    offset = 0
    tail = b""
    skipping = False
    last_flush = time.monotonic()
    archive = pipeline.archive
    while not stop.is_set:
        ready, _, _ = select.select([fd], [], [], 0.2)
        stop.service()
        if ready:
            try:
                chunk = os.read(fd, READ_CHUNK)
            except InterruptedError:
                continue
            if not chunk:
                break
            if skipping:  # the rest of an overlong line: drop up to its newline
                cut = chunk.find(b"\n")
                offset += len(chunk) if cut < 0 else cut + 1
                if cut < 0:
                    continue
                chunk, skipping = chunk[cut + 1 :], False
            data = tail + chunk
            end = data.rfind(b"\n")
            if end < 0:
                tail = data
                if len(tail) > MAX_LINE_BYTES:
                    # Memory stays bounded: the line is counted as malformed, never buffered whole.
                    pipeline.store.count_lines("malformed")
                    _say(f"stdin: a line at byte {offset} is longer than {MAX_LINE_BYTES >> 20} MiB; skipped")
                    offset += len(tail)
                    tail, skipping = b"", True
            else:
                tail = data[end + 1 :]
                offset = _handle_block(pipeline, reader, data[: end + 1], source, offset)
        now = time.monotonic()
        if now - last_flush >= 1.0:
            if archive is not None:
                archive.flush()
                archive.rotate_if_due()
            pipeline.export_sink_stats()
            last_flush = now
    if tail and not stop.is_set:  # EOF without a final newline: the last line is still a line
        _handle_block(pipeline, reader, tail + b"\n", source, offset)
    pipeline.flush_readers(source)


def _handle_block(pipeline: Pipeline, reader: LineReader, block: bytes, source: str, offset: int) -> int:
    handle = pipeline.handle
    if pipeline.archive is None:  # ids only go to the archive: skip the per-line hash
        for raw in block.split(b"\n")[:-1]:
            handle(reader, raw.decode("utf-8", "replace"), source, offset, None)
            offset += len(raw) + 1
        return offset
    for raw in block.split(b"\n")[:-1]:
        text = raw.decode("utf-8", "replace")
        handle(reader, text, source, offset, event_id(source, STREAM_FP, offset))
        offset += len(raw) + 1
    return offset


def freeze_heap() -> None:
    """Move everything alive now (grammar, price tables, modules: ~100k objects) out of the
    cyclic GC's reach. Full collections triggered by the per-line garbage otherwise traverse
    them again and again; in a long run that was a large share of the CPU."""
    gc.collect()
    gc.freeze()


class TailRunner:
    """``gwlog tail``: the tailer feeds the pipeline; offsets and metric values commit together."""

    def __init__(self, pipeline: Pipeline, tailer_factory: Callable[[dict | None], Tailer], state_dir: str,
                 checkpoint_interval: float = 1.0, poll_interval: float = 0.25) -> None:  # fmt: skip
        self.pipeline = pipeline
        self.state_file = StateFile(Path(state_dir) / "state.json")
        self.checkpoint_interval = checkpoint_interval
        self.poll_interval = poll_interval
        state = self.state_file.load()
        if state is not None:
            pipeline.store.restore(state.get("metrics", {}))
            if pipeline.archive is not None:
                replays = pipeline.archive.load_replay_ids(state.get("archive"))
                if replays:
                    _say(f"resuming: {replays} archived events after the last checkpoint will be deduplicated")
        self.tailer = tailer_factory(state.get("tailer") if state else None)
        self._held: dict[str, list[Line]] = {}
        self._unacked: list[Line] = []
        self._last_commit = time.monotonic()
        self._last_commit_wall = time.time()
        self._commit_failures = 0
        self._counted = CounterMirror()
        self._lag_sources: set[str] = set()

    def run(self, stop: StopFlag) -> None:
        freeze_heap()
        try:
            # Discovery first, committed at once: a crash before the first interval must not make
            # the next start a "first start" that ignores files rotated in between.
            self._process(self.tailer.poll(max_lines=0))
            self._ack_if_taken()
            self._maybe_commit(force=True)
            while not stop.is_set:
                stop.service()
                blocked = self._sinks_blocked()
                lines = [] if blocked else self.tailer.poll(max_lines=POLL_BATCH_LINES)
                if lines:
                    self._process(lines)
                self._ack_if_taken()
                self._maybe_commit()
                if not lines:
                    stop.stopped.wait(self.poll_interval)
        finally:
            self._shutdown()

    def _sinks_blocked(self) -> bool:
        """Backpressure: while the archive cannot write, stop reading (held fds keep the data)."""
        archive = self.pipeline.archive
        return archive is not None and archive.pending > 0 and not archive.flush()

    def _process(self, lines: list[Line]) -> None:
        handle = self.pipeline.handle
        for line in lines:
            reader = self.pipeline.reader_for(line.source_key)
            text = line.data.decode("utf-8", "replace")
            held = self._held.get(line.source_key)
            first = held[0] if held else line
            reading = handle(reader, text, line.source_key, first.start,
                             event_id(first.source_key, first.fp, first.start))  # fmt: skip
            if reading.outcome is Outcome.HELD or reader.holding:
                # A partial record: its offset may be committed only once the joined line is read.
                self._held.setdefault(line.source_key, []).append(line)
            else:
                if held:
                    self._unacked.extend(held)
                    del self._held[line.source_key]
                self._unacked.append(line)

    def _ack_if_taken(self) -> None:
        archive = self.pipeline.archive
        if self._unacked and (archive is None or archive.flush()):
            self.tailer.ack(self._unacked)
            self._unacked = []

    def _maybe_commit(self, force: bool = False) -> None:
        now = time.monotonic()
        self._export_tailer_stats(now)
        if not force and now - self._last_commit < self.checkpoint_interval:
            return
        if self._unacked:
            return  # an archive that cannot write yet: commit once it took the events
        archive = self.pipeline.archive
        if archive is not None:
            if not archive.sync():
                return
            archive.rotate_if_due()
        state = {
            "version": STATE_VERSION,
            "tailer": self.tailer.state(),
            "metrics": self.pipeline.store.snapshot(),
            "archive": archive.position() if archive is not None else None,
        }
        try:
            self.state_file.save(state)
        except StateWriteError as exc:
            self._commit_failures += 1
            if self._commit_failures == 1 or self._commit_failures % 60 == 0:
                _say(f"checkpoint not saved ({exc}); retrying every {self.checkpoint_interval:g}s")
            self._last_commit = now
            return
        if self._commit_failures:
            _say(f"checkpoint saved again after {self._commit_failures} failed attempts")
            self._commit_failures = 0
        self._last_commit = now
        self._last_commit_wall = time.time()

    def _export_tailer_stats(self, now: float) -> None:
        store = self.pipeline.store
        stats = self.tailer.stats()
        for source, lag in stats["lag_bytes"].items():
            store.set_gauge("source_lag_bytes", {"source": source}, lag)
        for source in self._lag_sources - stats["lag_bytes"].keys():  # gone: no stale series
            store.remove_gauge("source_lag_bytes", {"source": source})
        self._lag_sources = set(stats["lag_bytes"])
        for source, count in stats["rotations"].items():
            self._counted.inc(store, "rotations_total", {"source": source}, count)
        for reason, count in stats["data_lost"].items():
            self._counted.inc(store, "data_lost_total", {"reason": reason}, count)
        store.set_gauge("open_files", {}, stats["open_files"])
        store.set_gauge("checkpoint_age_seconds", {}, time.time() - self._last_commit_wall)
        self.pipeline.export_sink_stats()

    def _shutdown(self) -> None:
        self._ack_if_taken()
        self._maybe_commit(force=True)
        self.tailer.close()
