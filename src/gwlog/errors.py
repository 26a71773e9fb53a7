"""Errors users see: one line each, naming the file, the key and the fix."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration problem found at start; ``str()`` is the one-line message users see."""

    def __init__(self, file: str, key: str, problem: str, fix: str) -> None:
        self.file, self.key, self.problem, self.fix = file, key, problem, fix
        super().__init__(f"{file}: {key}: {problem} — {fix}")
