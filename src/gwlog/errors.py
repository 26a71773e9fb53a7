"""Errors users see: one line each, naming the file, the key and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any


class ConfigError(Exception):
    """A configuration problem found at start; ``str()`` is the one-line message users see."""

    def __init__(self, file: str, key: str, problem: str, fix: str) -> None:
        self.file, self.key, self.problem, self.fix = file, key, problem, fix
        super().__init__(f"{file}: {key}: {problem} — {fix}")


def check_keys(section: Mapping[str, Any], allowed: Iterable[str], file: str, where: str) -> None:
    """Unknown keys are typos until proven otherwise: fail, suggesting the closest accepted key."""
    allowed = tuple(allowed)
    for key in section:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            fix = f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(sorted(allowed))}"
            raise ConfigError(file, f"{where} {key}", "unknown key", fix)
