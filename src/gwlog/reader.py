"""Where a line becomes an event, in one step: unwrap → scan (or reference parser, or JSON) → Event.

Every physical line gets exactly one ``Reading``: PARSED with an event, SKIPPED (not an access-log
line) or MALFORMED (request-looking, no valid reading) with a one-line reason, HELD (a wrapper
partial kept for joining), or INVALID_UTF8 (the line holds U+FFFD from decoding; its event is kept
when it parsed). Lines are never raised on: NULs, megabyte lines, binary garbage and truncated
lines all end up as a Reading.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import InvalidOperation
from enum import StrEnum
from functools import cache
from typing import Any

from gwlog.events import Event, Identity, ParsedLine
from gwlog.grammar import CONVERTERS, Grammar, load, parse_timestamp
from gwlog.reference import ReferenceParser, shown
from gwlog.scanner import Scanner
from gwlog.unwrap import Unwrapper


class Outcome(StrEnum):
    """Values are the ``outcome`` label of gwlog_lines_total."""

    PARSED = "parsed"
    SKIPPED = "skipped"
    MALFORMED = "malformed"
    HELD = "held"
    INVALID_UTF8 = "invalid_utf8"


@dataclass(slots=True)
class Reading:
    outcome: Outcome
    event: Event | None  # set when the line parsed (PARSED, or INVALID_UTF8 that still parsed)
    reason: str | None  # one-line reason when not PARSED
    layers: list[str] = field(default_factory=list)  # wrapper layers removed, outermost first
    parser: str | None = None  # "scanner" | "reference" | "json"


_TS = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z"
_TRACING_TAB = re.compile(_TS + r"\t(trace|debug|info|warn|error)\t([^\t]*)")
_TRACING_SP = re.compile(_TS + r"[\t ]+(trace|debug|info|warn|error)[\t ]+(\S*)")
_PRE_V06 = re.compile(_TS + r" +(TRACE|DEBUG|INFO|WARN|ERROR) ")
_STARTS_TS = re.compile(_TS)
_PANIC = re.compile(r"thread '[^']*' panicked at ")
_KEY_EQ = re.compile(r"[^\s=]+=")
_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_META = ("level", "time", "scope")
_SHOW = 60  # characters of a line quoted in a reason


@cache
def _parsers() -> tuple[Grammar, Scanner, ReferenceParser]:
    """One grammar, scanner and reference parser per process (grammar load is ~0.3 s)."""
    g = load()
    return g, Scanner(g), ReferenceParser(g)


class LineReader:
    """One per input stream: wrapper joins (json-file, CRI partials) are stateful."""

    def __init__(self, resolve_identity: Callable[[dict[str, Any], datetime], Identity] | None = None) -> None:
        self._resolve = resolve_identity
        self._unwrap = Unwrapper()
        self._grammar, self._scanner, self._reference = _parsers()
        self._head = self._scanner.header_regex

    @property
    def holding(self) -> bool:
        """Whether a wrapper partial is held (its line's offset must not be committed yet)."""
        return bool(self._unwrap._held)

    def read(self, line: str) -> Reading:
        """Read one physical line (without its trailing "\\n")."""
        u = self._unwrap.feed(line)
        if u is None:
            return Reading(Outcome.HELD, None, "wrapper partial chunk held until its line is complete")
        return self._read(u.text, list(u.layers))

    def flush(self) -> list[Reading]:
        """End of stream: held partials become readings (an unterminated line may still parse)."""
        return [self._read(u.text, list(u.layers)) for u in self._unwrap.flush()]

    def _read(self, text: str, layers: list[str]) -> Reading:
        if not text.isascii() and _SURROGATE.search(text) is not None:
            text = _SURROGATE.sub("\ufffd", text)  # lone surrogates (escaped in json-file) cannot be encoded
        parsed = self._scanner.scan(text)
        reading = self._slow(text, layers) if parsed is None else self._event(parsed, layers, "scanner")
        if "\ufffd" in text:
            what = "parsed" if reading.event is not None else f"{reading.outcome.value}: {reading.reason}"
            reading.reason = f"invalid UTF-8 (U+FFFD) in the line; {what}"
            reading.outcome = Outcome.INVALID_UTF8
        return reading

    def _event(self, parsed: ParsedLine, layers: list[str], parser: str) -> Reading:
        event = Event.from_parsed(parsed)
        if self._resolve is not None:
            event.apply_identity(self._resolve(parsed.fields, parsed.ts))  # ts: JWT expiry at the line's time
        return Reading(Outcome.PARSED, event, None, layers, parser)

    def _slow(self, text: str, layers: list[str]) -> Reading:
        """Lines the scanner declined: JSON mode, the reference parser, or a reason to skip."""
        if text.startswith("{"):
            return self._json(text, layers)
        m = self._head.match(text)
        if m is not None and _KEY_EQ.match(text, m.end()) is not None:
            result = self._reference.parse(text)
            if isinstance(result, ParsedLine):
                return self._event(result, layers, "reference")
            return Reading(Outcome.MALFORMED, None, result, layers, "reference")
        return Reading(Outcome.SKIPPED, None, _skip_reason(text), layers)

    def _json(self, text: str, layers: list[str]) -> Reading:
        """``LOG_FORMAT=json``: a request iff scope == "request" and there is no message (§5)."""
        try:
            # stdlib json with a first-wins hook: a custom key named level/scope/time (or like a
            # built-in) duplicates the gateway's own key, and the gateway's value must win (§5)
            obj = json.loads(text, object_pairs_hook=_first_wins)
        except (ValueError, RecursionError) as exc:
            if '"scope":"request"' in text:
                return Reading(Outcome.MALFORMED, None, f"JSON request line does not decode: {exc}", layers)
            return Reading(Outcome.SKIPPED, None, "JSON-looking line that does not decode", layers)
        if not isinstance(obj, dict):
            return Reading(Outcome.SKIPPED, None, "JSON value that is not an object", layers)
        scope = obj.get("scope")
        if scope != "request":
            if "scope" not in obj and "level" not in obj:
                return Reading(Outcome.SKIPPED, None, "JSON object that is not a gateway log line", layers)
            return Reading(Outcome.SKIPPED, None, f"JSON tracing event scope={_short(scope)}", layers)
        if "message" in obj:
            return Reading(Outcome.SKIPPED, None, "JSON tracing event scope=request (has a message)", layers)
        level = obj.get("level")
        if level != "info":
            reason = f"JSON tracing event level={_short(level)} scope=request"
            return Reading(Outcome.SKIPPED, None, reason, layers)
        result = _json_fields(self._grammar, obj)
        if isinstance(result, str):
            return Reading(Outcome.MALFORMED, None, result, layers, "json")
        time = obj.get("time")
        if not isinstance(time, str) or self._grammar.patterns["TIMESTAMP"].fullmatch(time) is None:
            return Reading(Outcome.MALFORMED, None, f"JSON request line: bad time {_short(time)}", layers, "json")
        try:
            when = parse_timestamp(time)
        except ValueError as exc:
            reason = f"JSON request line: bad time {_short(time)}: {exc}"
            return Reading(Outcome.MALFORMED, None, reason, layers, "json")
        return self._event(ParsedLine(when, result, "json"), layers, "json")


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        obj.setdefault(key, value)
    return obj


def _short(value: Any) -> str:
    """Input quoted in a reason: short, one printable line (``gwlog.reference.shown``)."""
    return shown(value, _SHOW)


def _json_fields(g: Grammar, obj: dict[str, Any]) -> dict[str, Any] | str:
    """JSON-mode values → the same typed fields as text mode (duration and cost are strings)."""
    fields: dict[str, Any] = {}
    for key, value in obj.items():
        if key in _JSON_META:
            continue
        spec = g.by_key.get(key)
        if spec is None:
            fields[key] = value  # custom CEL value: native JSON
            continue
        term = spec.values[-1]
        if term in ("INT", "F64"):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or (term == "INT" and not isinstance(value, int))
            ):
                return f"JSON request line: {key} is {_short(value)}, expected a number"
            fields[key] = float(value) if term == "F64" else value
        elif term in ("DECIMAL", "DURATION"):
            if term == "DECIMAL" and isinstance(value, int | float) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str) or g.patterns[term].fullmatch(value) is None:
                return f"JSON request line: {key} is {_short(value)}, expected {term.lower()} text"
            try:
                fields[key] = CONVERTERS[term](value)
            except (InvalidOperation, ValueError):
                return f"JSON request line: {key} is {_short(value)}"
        else:
            if not isinstance(value, str):
                return f"JSON request line: {key} is {_short(value)}, expected a string"
            fields[key] = value
    return fields


def _skip_reason(text: str) -> str:
    """Why a non-request line is skipped, in one line (format doc §8)."""
    if not text.strip():
        return "empty line"
    m = _TRACING_TAB.match(text) or _TRACING_SP.match(text)
    if m is not None:
        level, target = m.group(1), m.group(2)
        if target == "request":
            return f"tracing event ({level} request: message, not key=value)"
        return f"tracing event ({level} {_short(target)})"
    if _PRE_V06.match(text) is not None:
        return "pre-v0.6 log format (uppercase level, no access log)"
    if _PANIC.match(text) is not None:
        return "Rust panic message (stderr)"
    if _STARTS_TS.match(text) is None:
        if "\x00" in text:
            return "binary data (NUL bytes), not a log line"
        return "continuation line without timestamp (multi-line message, or another program's output)"
    return f"not a gateway log line: '{_short(text)}'"
