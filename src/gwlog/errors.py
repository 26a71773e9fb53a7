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


# Value checks for config sections: a wrong type fails with the key and a concrete fix.


def expect(value: Any, kind: type | tuple[type, ...], file: str, key: str, example: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(file, key, f"expected {_kind_name(kind)}, got {value!r}", f"write e.g. {example}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", bool: "true or false", float: "a number", list: "a list"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def expect_str_list(value: Any, file: str, key: str, example: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(file, key, f"expected a list of non-empty strings, got {value!r}",
                          f"write {key.split()[-1]} = {example}")  # fmt: skip
    return tuple(v.strip() for v in value)


def expect_str(value: Any, file: str, key: str, example: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(file, key, f"expected a non-empty string, got {value!r}",
                          f"write {key.split()[-1]} = {example}")  # fmt: skip
    return value.strip()


def expect_bool(value: Any, file: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(file, key, f"expected true or false, got {value!r}",
                          f"write {key.split()[-1]} = true (no quotes)")  # fmt: skip
    return value


def expect_int(value: Any, file: str, key: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ConfigError(file, key, f"expected a whole number from {low} to {high}, got {value!r}",
                          f"write {key.split()[-1]} = {low if low > 0 else high}")  # fmt: skip
    return value


def expect_table(value: Any, file: str, key: str, example: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(file, key, f"expected a table, got {value!r}", f"write it as {example}")
    return value
