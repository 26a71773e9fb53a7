"""The atomic state file: offsets (and the metric snapshot) survive crashes, torn writes and full disks.

pygtail rewrote its offset file in place, so a crash left it empty or cut (tailing.md §1). Here a save
goes to a temp file in the same directory, is fsynced, replaces the old file with ``os.replace`` and
fsyncs the directory: after a crash the file holds either the previous or the new state, never a mix.
A file that is not ours (corrupt, foreign, other version) is moved aside and reported, never trusted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

import orjson

log = logging.getLogger("gwlog.checkpoint")

STATE_VERSION = 1


class StateWriteError(OSError):
    """The state could not be written (disk full, permission, ...); the caller reports and retries."""

    def __init__(self, path: str, cause: OSError) -> None:
        self.path, self.cause = path, cause
        super().__init__(cause.errno, f"cannot save state to {path}: {cause.strerror or cause}")


class StateFile:
    """``load()`` the last good state or None; ``save(state)`` it atomically."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def load(self) -> dict[str, Any] | None:
        """None when missing; a corrupt or foreign file is moved to ``<path>.corrupt-<ts>`` with a warning."""
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        try:
            state = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            why = f"not JSON ({e})"
        else:
            if not isinstance(state, dict) or "version" not in state:
                why = "not a gwlog state file"
            elif state["version"] != STATE_VERSION:
                why = f"version {state['version']!r}, expected {STATE_VERSION}"
            else:
                return state
        self._reject(why)
        return None

    def _reject(self, why: str) -> None:
        """Move the unusable file aside so it is kept for inspection and never silently trusted."""
        aside = f"{self.path}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        try:
            os.replace(self.path, aside)
            log.warning("gwlog: state file %s is unusable (%s); moved to %s, starting fresh", self.path, why, aside)
        except OSError as e:
            log.warning("gwlog: state file %s is unusable (%s) and could not be moved aside: %s", self.path, why, e)
        return None

    def save(self, state: dict[str, Any]) -> None:
        """Write atomically; raises ``StateWriteError`` (old state intact) instead of crashing."""
        body = {**state, "version": STATE_VERSION}
        data = orjson.dumps(body)
        d = os.path.dirname(os.path.abspath(self.path))
        tmp = os.path.join(d, f".{os.path.basename(self.path)}.tmp-{os.getpid()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise StateWriteError(self.path, e) from e
        try:
            dfd = os.open(d, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as e:
            raise StateWriteError(self.path, e) from e
