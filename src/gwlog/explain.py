"""``gwlog explain`` and ``gwlog check-config``: show users how gwlog reads their input."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import orjson

from gwlog.config import Config
from gwlog.identity import IdentityResolver
from gwlog.pricing import Pricer
from gwlog.reader import LineReader, Reading


def explain_lines(config: Config, lines: Iterable[str], *, as_json: bool) -> Iterator[str]:
    """One block (or JSON object) per input line; partial wrapper records say they were held."""
    resolver = IdentityResolver(config.identity, config.teams, config.privacy)
    pricer = Pricer(config.pricing)
    reader = LineReader(resolver.resolve)
    number = 0
    for number, line in enumerate(lines, 1):
        yield from _render(number, reader.read(line), pricer, as_json)
    for reading in reader.flush():
        yield from _render(number, reading, pricer, as_json)


def _render(number: int, reading: Reading, pricer: Pricer, as_json: bool) -> Iterator[str]:
    event = reading.event
    if event is not None:
        pricer.price(event)
    if as_json:
        if event is not None:
            yield orjson.dumps(event.to_record()).decode()
        else:
            print(f"line {number}: {reading.outcome.value}: {reading.reason}", file=sys.stderr)
        return
    layers = " → ".join(reading.layers) if reading.layers else "none"
    if event is None:
        yield f"line {number}: {reading.outcome.value.upper()} — {reading.reason}  (wrappers: {layers})"
        return
    note = f" — {reading.reason}" if reading.reason else ""
    yield f"line {number}: {reading.outcome.value.upper()} by {reading.parser}{note}  (wrappers: {layers})"
    record = event.to_record()
    fields = record.pop("fields")
    for key, value in record.items():
        if value is not None:
            yield f"  {key:<20} {value}"
    yield "  fields:"
    for key, value in fields.items():
        yield f"    {key} = {value!r}"


def effective_config(config: Config) -> dict[str, Any]:
    """The configuration with defaults filled in, secrets masked, as JSON-able data."""
    out: dict[str, Any] = {"file": config.file, "metrics": {"prefix": config.metric_prefix}}
    for name in ("server", "archive", "tail", "identity", "teams", "privacy", "pricing", "cardinality"):
        out[name] = _plain(getattr(config, name))
    return out


def _plain(value: Any, key: str = "") -> Any:
    if "secret" in key and value:
        return "***"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name), f.name)
            for f in dataclasses.fields(value)
            if not f.name.startswith("_")
        }
    if isinstance(value, dict):
        return {str(k): _plain(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)
