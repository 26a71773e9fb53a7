"""gwlog's own byte-level tailer: globs, held fds, fingerprints and a rotation state machine.

pygtail loses or corrupts lines under the rotations docker, the kubelet and logrotate really do
(docs/design.md, /work/shared/tailing.md §1), so gwlog follows files itself:

* a file is identified by its **fingerprint** (sha256 of its first line, up to 1 KiB, over the
  decompressed bytes for ``.gz``), so a copy, a renamed file and its ``.gz`` share an identity and a
  reused inode does not; ``(dev, ino)`` only answers "is this the file I hold open?";
* every file is read through a **held fd** with bounded ``os.pread`` calls, so a renamed, gzipped or
  deleted file is drained to its end; the unterminated tail is held back until its ``\\n`` arrives;
* positions are **byte offsets**; bytes are never decoded here (the caller decodes with
  ``errors="replace"``), CR stays in the line;
* the caller **acks** lines once every sink took them; ``state()`` only ever contains acked
  positions, so a restart replays exactly the unacked lines, with the same event ids.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import hashlib
import logging
import os
import re
import stat
import time
import zlib
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

log = logging.getLogger("gwlog.tailer")

#: ``Line.flags``: a piece of a line longer than ``max_line_bytes`` (every piece carries it).
FLAG_SPLIT = 1
#: ``Line.flags``: a retired file's last bytes, which never got their ``\n``.
FLAG_UNTERMINATED = 2
#: ``Line.flags``: the piece that completes a split line (together with ``FLAG_SPLIT``).
FLAG_SPLIT_LAST = 4

STATE_VERSION = 1
FP_BYTES = 1024
DEFAULT_MAX_LINE = 1 << 20
DEFAULT_CHUNK = 1 << 20

_DOCKER_RE = re.compile(r"/([0-9a-f]{64})/\1-json\.log$")
_KUBELET_RE = re.compile(r"/[^/]+_[^/]+_([^/_]+)/([^/]+)/\d+\.log$")
_KUBELET_SUFFIX = ".[0-9]" + "[0-9]" * 7 + "-" + "[0-9]" * 6


class TailerError(LookupError):
    """A source that cannot be resolved (unknown or ambiguous docker container); one-line message."""


@dataclass(slots=True)
class Line:
    """One line (without its ``\\n``) and where it came from; ``end`` is past the ``\\n``."""

    source_key: str
    fp: str
    start: int
    end: int
    data: bytes
    path: str
    flags: int


def event_id(source_key: str, fp: str, start: int) -> str:
    """Idempotent id: the same line has the same id after a restart, from a copy or from its .gz."""
    return hashlib.blake2b(f"{source_key}|{fp}|{start}".encode(), digest_size=16).hexdigest()


def fingerprint(head: bytes) -> str | None:
    """sha256 of the first complete line (with its LF), or of the first 1 KiB; None if too early."""
    lf = head.find(b"\n", 0, FP_BYTES)
    if lf >= 0:
        head = head[: lf + 1]
    elif len(head) >= FP_BYTES:
        head = head[:FP_BYTES]
    else:
        return None
    return hashlib.sha256(head).hexdigest()[:16]


def resolve_docker_container(name_or_id: str, docker_root: str = "/var/lib/docker") -> str:
    """Path of a container's json-file log, by full id, unique id prefix or name (config.v2.json)."""
    base = os.path.join(docker_root, "containers")
    try:
        ids = sorted(os.listdir(base))
    except OSError as e:
        raise TailerError(f"cannot list {base}: {e.strerror}") from e
    want = name_or_id.lstrip("/")
    found = [i for i in ids if i == want]
    if not found:
        found = [i for i in ids if i.startswith(want)]
    if not found:
        for i in ids:
            try:
                with open(os.path.join(base, i, "config.v2.json"), "rb") as f:
                    name = orjson.loads(f.read()).get("Name", "")
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(name, str) and name.lstrip("/") == want:
                found.append(i)
    if not found:
        raise TailerError(f"no docker container {name_or_id!r} under {base}")
    if len(found) > 1:
        raise TailerError(f"docker container {name_or_id!r} is ambiguous: {', '.join(x[:12] for x in found)}")
    cid = found[0]
    return os.path.join(base, cid, f"{cid}-json.log")


def _classify(path: str, real: str) -> tuple[str, list[str]]:
    """source_key and rotated-sibling globs of a live file, by the writer that produces it."""
    esc = glob.escape(real)
    m = _DOCKER_RE.search(real)
    if m:
        return f"docker:{m.group(1)}", [esc + ".[0-9]*"]
    m = _KUBELET_RE.search(real)
    if m:
        return f"k8s:{m.group(1)}/{m.group(2)}", [esc + _KUBELET_SUFFIX, esc + _KUBELET_SUFFIX + ".gz"]
    return path, [esc + ".[0-9]*", esc + "-*"]


class _Rec:
    """Per-fingerprint bookkeeping: what was emitted and what every sink acked."""

    __slots__ = (
        "acked_end",
        "ahead",
        "emitted_end",
        "final_end",
        "last_path",
        "retired",
        "size",
        "source_key",
    )

    def __init__(self, source_key: str, path: str, acked_end: int = 0, retired: bool = False) -> None:
        self.source_key = source_key
        self.last_path = path
        self.acked_end = acked_end
        self.emitted_end = acked_end
        self.ahead: dict[int, int] = {}
        self.retired = retired
        self.final_end: int | None = acked_end if retired else None
        self.size = acked_end

    @property
    def done(self) -> bool:
        return self.final_end is not None and self.acked_end >= self.final_end


@dataclass(slots=True)
class _Reader:
    """One open file: held fd (or gzip stream), read position and the held-back partial line."""

    path: str
    source_key: str
    f: IO[bytes]
    dev: int
    ino: int
    is_gz: bool
    offset: int  # end of the last emitted byte
    fp: str | None = None
    pending: bytes = b""
    gz: gzip.GzipFile | None = None
    live: bool = True
    splitting: bool = False
    last_growth: float = 0.0
    size: int = 0
    mtime: int = 0
    retry_at: float = 0.0
    complete: bool = False  # a .gz read to its end: its content is final

    @property
    def read_pos(self) -> int:
        return self.offset + len(self.pending)

    def read(self, n: int) -> bytes:
        if not self.is_gz:
            return os.pread(self.f.fileno(), n, self.read_pos)
        if self.gz is None:
            self.f.seek(0)
            self.gz = gzip.GzipFile(fileobj=self.f, mode="rb")
            self.gz.seek(self.read_pos)
        return self.gz.read(n)

    def head(self) -> bytes:
        """First bytes of the file as it is now (decompressed for .gz), for the fingerprint."""
        if not self.is_gz:
            return os.pread(self.f.fileno(), FP_BYTES, 0)
        self.f.seek(0)
        with gzip.GzipFile(fileobj=self.f, mode="rb") as g:
            return g.read(FP_BYTES)

    def close(self) -> None:
        if self.gz is not None:
            self.gz.close()
        self.f.close()


def _read_to_end(r: _Reader) -> bool:
    """Every line the file holds now was emitted; only an unterminated tail may be pending."""
    if b"\n" in r.pending:
        return False
    if r.is_gz:
        return r.complete
    try:
        return os.fstat(r.f.fileno()).st_size <= r.read_pos
    except OSError:
        return True


@dataclass(slots=True)
class _Source:
    """One glob match (a live path) and the readers that belong to it."""

    path: str
    key: str
    siblings: list[str]
    live: _Reader | None = None
    drains: list[_Reader] = field(default_factory=list)
    retry_at: float = 0.0
    backoff: float = 0.0
    problem: str | None = None
    gone: bool = False
    fresh: bool = False  # first seen at startup with no saved positions: ignore its rotated files


class Tailer:
    """Follow files matched by globs across rotation, truncation and restarts, exactly once with ack.

    ``patterns`` are globs, or ``docker:<name-or-id>`` resolved under ``docker_root``. ``state`` is
    what ``state()`` returned before a restart (None = first start: rotated files already present
    are ignored and live files start at their beginning, or at their end with ``from_end``).
    """

    def __init__(
        self,
        patterns: list[str],
        *,
        state: dict[str, Any] | None = None,
        from_end: bool = False,
        drain_grace: float = 5.0,
        max_line_bytes: int = DEFAULT_MAX_LINE,
        read_chunk: int = DEFAULT_CHUNK,
        docker_root: str = "/var/lib/docker",
        rescan_interval: float = 2.0,
        max_backoff: float = 30.0,
    ) -> None:
        if max_line_bytes < FP_BYTES:
            raise ValueError(f"max_line_bytes must be at least {FP_BYTES}")
        self.patterns = list(patterns)
        self.from_end = from_end
        self.drain_grace = drain_grace
        self.max_line_bytes = max_line_bytes
        self.read_chunk = max(4096, read_chunk)
        self.docker_root = docker_root
        self.rescan_interval = rescan_interval
        self.max_backoff = max_backoff
        self._recs: dict[str, _Rec] = {}
        self._ignored: set[str] = set()
        self._sources: dict[str, _Source] = {}
        self._fp_cache: dict[tuple[int, int, int, int], str | None] = {}
        self._data_lost: dict[str, int] = {}
        self._rotations: dict[str, int] = {}
        self._warned: set[str] = set()
        self._next_rescan = 0.0
        self._first_scan = True
        self._rr = 0
        self._state_keys: set[str] = set()
        self._fresh = state is None
        if state is not None:
            self._load_state(state)

    # ---- state -------------------------------------------------------------------------------

    def _load_state(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION or not isinstance(state.get("files"), dict):
            raise ValueError(f"tailer state: unsupported version {state.get('version')!r}")
        for fp, e in state["files"].items():
            try:
                rec = _Rec(str(e["source_key"]), str(e["last_path"]), int(e["acked_end"]), bool(e["done"]))
                rec.size = int(e.get("size", rec.acked_end))
            except (KeyError, TypeError, ValueError):
                log.warning("tailer state: ignoring malformed entry for fingerprint %s", fp)
                continue
            self._recs[str(fp)] = rec
            self._state_keys.add(rec.source_key)
        self._ignored = {str(x) for x in state.get("ignored", [])}
        # Sources seen before they had a fingerprint (an empty file): rotations while down still count.
        self._state_keys.update(str(k) for k in state.get("sources", []))

    def state(self) -> dict[str, Any]:
        """JSON-able positions: per fingerprint the acked end (never an unacked one) and the ignored set."""
        files = {
            fp: {
                "acked_end": r.acked_end,
                "source_key": r.source_key,
                "last_path": r.last_path,
                "done": r.done,
                "size": r.size,
            }
            for fp, r in self._recs.items()
        }
        sources = sorted(self._state_keys | self._sources.keys())
        return {"version": STATE_VERSION, "files": files, "ignored": sorted(self._ignored), "sources": sources}

    def ack(self, lines: list[Line]) -> None:
        """All sinks took these lines: advance each fingerprint's acked_end through contiguous lines."""
        recs = self._recs
        for ln in lines:
            rec = recs.get(ln.fp)
            if rec is None:
                continue
            if ln.start == rec.acked_end:
                end = ln.end
                ahead = rec.ahead
                if ahead:
                    while end in ahead:
                        end = ahead.pop(end)
                rec.acked_end = end
            elif ln.start > rec.acked_end:
                rec.ahead[ln.start] = ln.end

    def stats(self) -> dict[str, Any]:
        """Self-metrics: lag bytes and rotations per source_key, open fds, data lost by reason."""
        lag: dict[str, int] = {}
        open_files = 0
        for src in self._sources.values():
            for r in self._readers(src):
                open_files += 1
                rec = self._recs.get(r.fp) if r.fp else None
                behind = 0 if r.is_gz else max(0, r.size - (rec.acked_end if rec else 0))
                lag[r.source_key] = lag.get(r.source_key, 0) + behind
        return {
            "lag_bytes": lag,
            "rotations": dict(self._rotations),
            "data_lost": dict(self._data_lost),
            "open_files": open_files,
        }

    def close(self) -> None:
        """Close every held fd (positions survive only through ``state()``)."""
        for src in self._sources.values():
            for r in self._readers(src):
                r.close()
            src.live, src.drains = None, []
        self._sources.clear()

    # ---- polling -----------------------------------------------------------------------------

    def poll(self, max_lines: int = 100_000) -> list[Line]:
        """Check rotations, then read up to about ``max_lines`` complete lines (bounded reads)."""
        now = time.monotonic()
        due = now >= self._next_rescan
        fresh = self._discover(now) if due else set()
        for src in list(self._sources.values()):
            if now >= src.retry_at and src.path not in fresh:
                self._check(src, now)
        if due:
            self._rescan_siblings(now, fresh)
            self._next_rescan = now + self.rescan_interval
        out: list[Line] = []
        srcs = list(self._sources.values())
        if srcs:
            self._rr = (self._rr + 1) % len(srcs)
            srcs = srcs[self._rr :] + srcs[: self._rr]
        for src in srcs:
            for r in self._readers(src):
                if len(out) >= max_lines:
                    break
                if now >= r.retry_at:
                    self._read(r, out, max_lines - len(out), now)
            self._retire_idle(src, out, now)
        return out

    def _readers(self, src: _Source) -> list[_Reader]:
        return [*src.drains, *([src.live] if src.live else [])]

    def _warn_once(self, tag: str, msg: str, *args: object) -> None:
        if tag not in self._warned:
            self._warned.add(tag)
            log.warning(msg, *args)

    def _lost(self, reason: str, msg: str, *args: object) -> None:
        self._data_lost[reason] = self._data_lost.get(reason, 0) + 1
        log.error(msg, *args)

    def _expand(self) -> list[str]:
        paths: list[str] = []
        for pat in self.patterns:
            if pat.startswith("docker:"):
                try:
                    paths.append(resolve_docker_container(pat[7:], self.docker_root))
                except TailerError as e:
                    self._warn_once(f"docker:{pat}", "gwlog tail: %s (retrying)", e)
            else:
                paths.extend(sorted(glob.glob(pat)))
        return paths

    def _discover(self, now: float) -> set[str]:
        """Glob again: new matches become sources (one real file is followed once); returns them."""
        reals: dict[str, str] = {os.path.realpath(s.path): s.path for s in self._sources.values()}
        startup = self._first_scan
        fresh: set[str] = set()
        for path in self._expand():
            if path in self._sources:
                continue
            real = os.path.realpath(path)
            if real in reals:
                continue
            key, sibs = _classify(path, real)
            src = _Source(path, key, sibs)
            reals[real] = path
            self._sources[path] = src
            src.fresh = startup and (self._fresh or key not in self._state_keys)
            self._open_live(src, now, startup_new=src.fresh)
            fresh.add(path)
        return fresh

    def _rescan_siblings(self, now: float, fresh: set[str]) -> None:
        """Look at every source's rotated files, then forget what no longer exists."""
        seen: set[str] = set()
        complete = True
        for src in self._sources.values():
            got, ok = self._scan_siblings(src, now, ignore=src.path in fresh and src.fresh)
            seen |= got
            complete &= ok and src.problem is None
        self._prune(seen, complete, report=self._first_scan)
        self._first_scan = False
        for path in [p for p, s in self._sources.items() if s.gone and not s.drains and s.live is None]:
            del self._sources[path]

    def _prune(self, seen: set[str], complete: bool, *, report: bool) -> None:
        """Forget fingerprints whose files are gone, so the state stays small; at startup, an
        unfinished one found nowhere was lost while gwlog was down, which is reported."""
        if not complete:
            return  # a file we could not fingerprint may be one of them: decide next time
        seen |= {r.fp for s in self._sources.values() for r in self._readers(s) if r.fp}
        for fp, rec in list(self._recs.items()):
            if fp in seen or not (rec.done or report):
                continue
            if not rec.done and rec.acked_end < rec.size:
                self._lost(
                    "vanished",
                    "gwlog tail: %s (fingerprint %s) disappeared while stopped with %d unread bytes",
                    rec.last_path, fp, rec.size - rec.acked_end,
                )  # fmt: skip
            del self._recs[fp]
        self._ignored &= seen

    def _open(self, path: str, is_gz: bool, now: float) -> _Reader:
        f = open(path, "rb")  # noqa: SIM115 - held open on purpose
        try:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                f.close()
                raise IsADirectoryError(21, "not a regular file", path)
        except OSError:
            f.close()
            raise
        return _Reader(path, "", f, st.st_dev, st.st_ino, is_gz, 0, last_growth=now, size=st.st_size)

    def _attach(self, r: _Reader, key: str, start: int | None) -> None:
        """Bind a reader to its fingerprint record; ``start`` None = resume at the acked end."""
        r.source_key = key
        if r.fp is None:
            r.offset = start or 0
            return
        rec = self._recs.get(r.fp)
        if rec is None:
            rec = self._recs[r.fp] = _Rec(key, r.path, start or 0)
        rec.last_path = r.path
        rec.retired = False
        rec.final_end = None
        r.offset = rec.emitted_end if start is None else start
        rec.emitted_end = r.offset

    def _open_live(self, src: _Source, now: float, *, startup_new: bool = False) -> None:
        """Open the file now at ``src.path``: a known fingerprint resumes where it was, a new file
        starts at 0 (or, first seen at startup with from_end, after its last complete line)."""
        try:
            r = self._open(src.path, False, now)
        except FileNotFoundError:
            src.gone = True
            return
        except OSError as e:
            self._problem(src, now, f"cannot read {src.path}: {e.strerror or e}")
            return
        if src.problem:
            log.warning("gwlog tail: %s is readable again", src.path)
        src.problem, src.backoff, src.gone = None, 0.0, False
        key, src.siblings = _classify(src.path, os.path.realpath(src.path))
        for d in src.drains:
            if (d.dev, d.ino) == (r.dev, r.ino):  # moved back (e.g. the kubelet undid a rename)
                r.close()
                src.drains.remove(d)
                d.live, src.live = True, d
                return
        r.fp = fingerprint(r.head())
        start: int | None = 0
        rec = self._recs.get(r.fp) if r.fp else None
        if rec is not None:
            start = rec.final_end if rec.retired else None
            if rec.emitted_end > r.size:
                self._lost("truncated", "gwlog tail: %s shrank below its saved offset while unwatched", src.path)
                rec.acked_end = rec.emitted_end = 0
                rec.ahead.clear()
        elif startup_new and self.from_end:
            start = self._last_lf_end(r)
        self._attach(r, key, start)
        src.live = r

    def _last_lf_end(self, r: _Reader) -> int:
        """Offset just past the last LF (start of the line being written), for --from-end."""
        span = min(r.size, self.max_line_bytes)
        tail = os.pread(r.f.fileno(), span, r.size - span)
        i = tail.rfind(b"\n")
        return r.size - span + i + 1 if i >= 0 else (r.size if span == self.max_line_bytes else 0)

    def _problem(self, src: _Source, now: float, msg: str) -> None:
        """Unreadable path: one line per new problem, retry with exponential backoff, never raise."""
        src.backoff = min(self.max_backoff, max(0.5, src.backoff * 2))
        src.retry_at = now + src.backoff
        if src.problem != msg:
            log.warning("gwlog tail: %s (retrying with backoff up to %.0fs)", msg, self.max_backoff)
            src.problem = msg

    def _fp_of_path(self, path: str, st: os.stat_result) -> str | None:
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if key in self._fp_cache:
            return self._fp_cache[key]
        try:
            with open(path, "rb") as f:
                if path.endswith(".gz"):
                    with gzip.GzipFile(fileobj=f, mode="rb") as g:
                        head = g.read(FP_BYTES)
                else:
                    head = f.read(FP_BYTES)
        except (OSError, EOFError, zlib.error):
            return None
        fp = fingerprint(head)
        if len(self._fp_cache) > 4096:
            self._fp_cache.clear()
        self._fp_cache[key] = fp
        return fp

    def _scan_siblings(self, src: _Source, now: float, *, ignore: bool) -> tuple[set[str], bool]:
        """Rotated files: resume known fingerprints, read unknown ones from 0 (or ignore at first start).

        Returns the fingerprints seen and whether every sibling could be fingerprinted."""
        seen: set[str] = set()
        complete = True
        held = {(r.dev, r.ino) for s in self._sources.values() for r in self._readers(s)}
        active = {r.fp for s in self._sources.values() for r in self._readers(s) if r.fp}
        live_paths = set(self._sources)
        found: list[tuple[float, str, os.stat_result]] = []
        for pat in src.siblings:
            for p in glob.glob(pat):
                if p in live_paths or p.endswith(".tmp"):
                    continue
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in held:
                    found.append((st.st_mtime, p, st))
        for _, p, st in sorted(found):
            fp = self._fp_of_path(p, st)
            if fp is None:
                complete = False
                continue
            seen.add(fp)
            if fp in active or fp in self._ignored:
                continue
            rec = self._recs.get(fp)
            if rec is not None and rec.retired:
                continue
            if rec is None and ignore:
                self._ignored.add(fp)
                continue
            try:
                r = self._open(p, p.endswith(".gz"), now)
            except OSError as e:
                self._warn_once(f"sib:{p}", "gwlog tail: cannot read rotated file %s: %s", p, e.strerror or e)
                continue
            r.fp, r.live = fp, False
            if rec is None:
                log.info("gwlog tail: reading rotated file %s from 0 (unknown fingerprint %s)", p, fp)
            self._attach(r, src.key if rec is None else rec.source_key, None if rec else 0)
            src.drains.append(r)
            active.add(fp)
        return seen, complete

    def _check(self, src: _Source, now: float) -> None:
        """The rotation state machine for one live path."""
        live = src.live
        if live is None:
            self._open_live(src, now)
            if src.live is not None and src.drains:
                self._rotated(src, now)
            return
        try:
            st = os.stat(src.path)
        except FileNotFoundError:
            live.live = False
            src.drains.append(live)
            src.live = None
            src.gone = True
            self._scan_siblings(src, now, ignore=False)
            return
        except OSError as e:
            self._problem(src, now, f"cannot stat {src.path}: {e.strerror or e}")
            return
        if (st.st_dev, st.st_ino) != (live.dev, live.ino):
            live.live = False
            src.drains.append(live)
            src.live = None
            self._open_live(src, now)
            self._rotated(src, now)
            return
        if st.st_size == live.size and st.st_mtime_ns == live.mtime:
            return
        live.size, live.mtime = st.st_size, st.st_mtime_ns
        if live.fp is not None:
            self._recs[live.fp].size = max(self._recs[live.fp].size, st.st_size)
        truncated = st.st_size < live.read_pos
        if not truncated and live.fp is not None and live.read_pos > 0:
            truncated = fingerprint(live.head()) != live.fp
        if truncated:
            self._truncated(src, live, now)

    def _rotated(self, src: _Source, now: float) -> None:
        self._rotations[src.key] = self._rotations.get(src.key, 0) + 1
        self._scan_siblings(src, now, ignore=False)

    def _truncated(self, src: _Source, live: _Reader, now: float) -> None:
        """Same inode, shrunk or new first line: finish the old content from its copy, restart at 0."""
        old_fp, old_off = live.fp, live.offset
        self._rotations[src.key] = self._rotations.get(src.key, 0) + 1
        live.pending, live.splitting, live.offset, live.fp = b"", False, 0, None
        live.fp = fingerprint(live.head())
        if live.fp is not None:
            self._attach(live, live.source_key, 0)
        if old_fp is None:
            return
        rec = self._recs[old_fp]
        copy: _Reader | None = None
        for pat in src.siblings:
            for p in sorted(glob.glob(pat)):
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) != (live.dev, live.ino) and self._fp_of_path(p, st) == old_fp:
                    with contextlib.suppress(OSError):
                        copy = self._open(p, p.endswith(".gz"), now)
                    if copy is not None:
                        break
            if copy is not None:
                break
        if copy is None:
            rec.retired, rec.final_end = True, rec.emitted_end
            self._lost(
                "truncated",
                "gwlog tail: %s was truncated with no copy of its old content; bytes after offset %d lost",
                src.path, old_off,
            )  # fmt: skip
            return
        log.info("gwlog tail: %s truncated; reading the rest from its copy %s", src.path, copy.path)
        copy.fp, copy.live = old_fp, False
        self._attach(copy, rec.source_key, old_off)
        src.drains.insert(0, copy)

    def _retire_idle(self, src: _Source, out: list[Line], now: float) -> None:
        """Draining readers read to their end and idle for drain_grace (or a .gz read to its end)
        are closed. A reader with unread bytes is never retired, however long it waited for its
        turn: while gwlog lags, older rotated files wait behind the budget of each poll."""
        keep: list[_Reader] = []
        for r in src.drains:
            if not _read_to_end(r) or (not r.complete and now - r.last_growth < self.drain_grace):
                keep.append(r)
                continue
            if r.pending:
                if r.fp is None:
                    r.fp = hashlib.sha256(r.pending[:FP_BYTES]).hexdigest()[:16]
                    self._attach(r, r.source_key, 0)
                end = r.read_pos
                flags = FLAG_UNTERMINATED | (FLAG_SPLIT | FLAG_SPLIT_LAST if r.splitting else 0)
                out.append(Line(r.source_key, r.fp, r.offset, end, r.pending, r.path, flags))
                r.offset, r.pending = end, b""
            if r.fp is not None:
                rec = self._recs[r.fp]
                rec.emitted_end = r.offset
                rec.retired, rec.final_end = True, r.offset
            r.close()
        src.drains = keep

    # ---- the hot path ------------------------------------------------------------------------

    def _read(self, r: _Reader, out: list[Line], budget: int, now: float) -> None:
        """Read bounded chunks until EOF or the budget; keep the unterminated tail unconsumed."""
        n = 0
        while n < budget:
            if r.pending:
                n += self._extract(r, out, budget - n)
                if n >= budget:
                    break
            try:
                chunk = r.read(self.read_chunk)
            except (EOFError, OSError, zlib.error) as e:
                if r.is_gz:
                    # a .gz still being written by the rotator: retry the stream later
                    if r.gz is not None:
                        r.gz.close()
                    r.gz, r.retry_at, r.last_growth = None, now + 0.5, now
                    log.debug("gwlog tail: %s not complete yet (%s)", r.path, e)
                    return
                self._warn_once(f"read:{r.path}", "gwlog tail: read error on %s: %s", r.path, e)
                return
            if not chunk:
                r.complete = r.is_gz
                break
            r.last_growth = now
            r.pending = r.pending + chunk if r.pending else chunk
        if r.fp is not None and not r.is_gz:
            rec = self._recs[r.fp]
            rec.size = max(rec.size, r.read_pos)
            r.size = max(r.size, r.read_pos)

    def _extract(self, r: _Reader, out: list[Line], budget: int) -> int:
        """Emit complete lines from ``r.pending``; overlong lines go out in flagged pieces."""
        buf = r.pending
        if r.fp is None:
            fp = fingerprint(buf) if r.offset == 0 else None
            if fp is None:
                return 0
            r.fp = fp
            self._attach(r, r.source_key, r.offset)
        parts = buf.split(b"\n")
        tail = parts.pop()
        if len(parts) > budget:
            parts = parts[:budget]
            tail = buf[sum(map(len, parts)) + len(parts) :]
        key, fp, path, maxb = r.source_key, r.fp, r.path, self.max_line_bytes
        pos = r.offset
        append = out.append
        emitted = 0
        for d in parts:
            ln = len(d)
            if ln > maxb or r.splitting:
                pos, k = self._pieces(r, out, d, pos, True)
                emitted += k
                continue
            end = pos + ln + 1
            append(Line(key, fp, pos, end, d, path, 0))
            pos = end
            emitted += 1
        if len(tail) >= maxb:
            pos, k = self._pieces(r, out, tail, pos, False)
            emitted += k
            tail = tail[(len(tail) // maxb) * maxb :]
        r.offset = pos
        r.pending = tail
        self._recs[fp].emitted_end = pos
        return emitted

    def _pieces(self, r: _Reader, out: list[Line], d: bytes, pos: int, complete: bool) -> tuple[int, int]:
        """Cut an overlong line into max_line_bytes pieces; a complete one's last piece ends at its LF."""
        maxb = self.max_line_bytes
        assert r.fp is not None
        k = 0
        full = len(d) // maxb if not complete else (len(d) - 1) // maxb if d else 0
        for i in range(full):
            piece = d[i * maxb : (i + 1) * maxb]
            out.append(Line(r.source_key, r.fp, pos, pos + maxb, piece, r.path, FLAG_SPLIT))
            pos += maxb
            k += 1
        r.splitting = True
        if complete:
            piece = d[full * maxb :]
            end = pos + len(piece) + 1
            out.append(Line(r.source_key, r.fp, pos, end, piece, r.path, FLAG_SPLIT | FLAG_SPLIT_LAST))
            pos = end
            k += 1
            r.splitting = False
        return pos, k
