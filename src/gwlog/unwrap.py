"""Wrapper layers around gateway lines: docker json-file, CRI, ANSI, compose/kubectl prefixes.

Gateway lines usually reach gwlog wrapped by whatever collected them (format doc §7); the reader
needs the inner line exactly as the gateway wrote it. Unwrapping is stateful per input stream
because docker json-file and CRI split long lines into partial chunks that must be joined. The
order follows format doc §9.1: json-file → CRI → ANSI → compose / kubectl prefix → outer
timestamp → trailing CR.

Layer names (outermost first, for ``explain``): ``docker-json-file``, ``cri:<stream>``,
``compose-v2:<name>``, ``compose-v1:<name>``, ``kubectl-prefix:pod/<pod>/<container>``, ``ansi``
(listed after the prefix it colours), ``timestamp``, ``cr``; joins add ``joined:<chunks>``,
``truncated-join`` (cap hit, rest of that line dropped) and ``unterminated`` (emitted by ``flush``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import orjson

#: Upper bound (characters, ~8 MiB) on one joined line; beyond it the rest is dropped, not buffered.
MAX_JOIN_CHARS = 8 * 1024 * 1024
#: Accounting cost per held chunk, so floods of empty partials stay bounded too.
_CHUNK_OVERHEAD = 64

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CRI = re.compile(r"(\d{4}-\d\d-\d\dT[^ ]+) (stdout|stderr) ([PF])(?: |$)")
# Docker container names: [a-zA-Z0-9][a-zA-Z0-9_.-]+; compose pads with spaces before " | ".
_COMPOSE = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.-]*)( +)\| ")
_COMPOSE_V1_NAME = re.compile(r".+_\d+")
_MAX_PREFIX = 300  # compose pads names to the longest + 1; container names are far shorter
_MAX_CACHED_PREFIXES = 256
_KUBECTL = re.compile(r"\[(pod/[^/\s\]]+/[^\s\]]+)\] ")
# An outer RFC 3339 timestamp (0–9 fraction digits) + SP, only when the real line follows: another
# timestamp (text mode) or a JSON-mode object. Gateway timestamps are followed by TAB, never SP.
_OUTER_TS = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{0,9})?(?:Z|[+-]\d\d:\d\d)) (?=\d{4}-\d\d-\d\dT|\{\")")


@dataclass(slots=True, frozen=True)
class Unwrapped:
    """The inner gateway line and what was removed around it."""

    text: str  # the inner gateway line, no trailing \n or \r
    layers: tuple[str, ...]  # layers removed, outermost first
    wrapper_time: str | None = None  # outer RFC 3339 timestamp when a layer carried one


# Results are built through the slot descriptors: a frozen dataclass __init__ (three
# object.__setattr__ calls) would be ~40% of the bare-line budget.
_new = object.__new__
_set_text, _set_layers, _set_time = (vars(Unwrapped)[n].__set__ for n in ("text", "layers", "wrapper_time"))


def _make(text: str, layers: tuple[str, ...], time: str | None) -> Unwrapped:
    """``Unwrapped(text, layers, time)`` without the frozen-dataclass setattr overhead."""
    u = _new(Unwrapped)
    _set_text(u, text)
    _set_layers(u, layers)
    _set_time(u, time)
    return u


class _Held:
    """Partial chunks of one stream waiting for their final chunk."""

    __slots__ = ("layer", "parts", "size", "time", "truncated")

    def __init__(self, layer: str, time: str | None) -> None:
        self.layer = layer
        self.time = time
        self.parts: list[str] = []
        self.size = 0
        self.truncated = False

    def add(self, chunk: str) -> None:
        """Keep the chunk unless the cap is reached; past it, only remember that we truncated."""
        cost = len(chunk) + _CHUNK_OVERHEAD
        if self.truncated or self.size + cost > MAX_JOIN_CHARS:
            room = MAX_JOIN_CHARS - self.size - _CHUNK_OVERHEAD
            if not self.truncated and room > 0:
                self.parts.append(chunk[:room])
                self.size = MAX_JOIN_CHARS
            self.truncated = True
            return
        self.parts.append(chunk)
        self.size += cost

    def flags(self) -> tuple[str, ...]:
        joined = (f"joined:{len(self.parts)}",)
        return (*joined, "truncated-join") if self.truncated else joined


def _is_plain(line: str) -> bool:
    """A bare gateway text line (or tracing line): digit first, TAB right after the timestamp.

    The last character must sort after CR, so lines ending in CR or LF take the slow path.
    """
    return line.find("\t", 21, 28) != -1 and "0" <= line[0] <= "9" and line[-1] > "\r"


class Unwrapper:
    """Removes wrapper layers from the lines of ONE input stream (partials are joined per stream)."""

    __slots__ = ("_held", "_prefixes")

    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}
        self._prefixes: dict[str, str | None] = {}

    @property
    def holding(self) -> bool:
        """Whether a partial chunk is held (the caller must not commit that line's offset yet)."""
        return bool(self._held)

    def feed(self, line: str) -> Unwrapped | None:
        """Unwrap one physical line (without its "\\n"); None while a partial chunk is held."""
        if line.find("\t", 21, 28) != -1 and "0" <= line[0] <= "9" and line[-1] > "\r":  # _is_plain
            return _make(line, (), None)
        end = line.find(" | ", 0, _MAX_PREFIX)
        if end > 0:  # a compose prefix this stream has shown before, around a plain line
            layer = self._prefixes.get(line[: end + 3])
            if layer is not None:
                text = line[end + 3 :]
                if _is_plain(text) and "\x1b" not in line:
                    return _make(text, (layer,), None)
        try:
            return self._feed_slow(line)
        except Exception:  # never raise on garbage: hand the line on untouched
            return Unwrapped(line.rstrip("\r\n"), ())

    def flush(self) -> list[Unwrapped]:
        """End of stream: emit every held partial line as joined so far."""
        out = []
        for held in self._held.values():
            text = "".join(held.parts)
            layers = (held.layer, *held.flags(), "unterminated")
            out.append(self._inner(text, layers, held.time))
        self._held.clear()
        return out

    def _feed_slow(self, line: str) -> Unwrapped | None:
        """Route a wrapped (or odd) line to the container layer that owns it, §9.1 order."""
        if line.endswith("\n"):
            line = line[:-1]
        first = line[:1]
        if first == "{":
            if line.startswith('{"level"'):  # JSON-mode gateway line: not a wrapper
                return _make(line[:-1], ("cr",), None) if line.endswith("\r") else _make(line, (), None)
            if '"log"' in line:
                return self._json_file(line)
        elif "0" <= first <= "9" and (m := _CRI.match(line)) is not None:
            return self._cri(line, m)
        return self._inner(line, (), None)

    def _json_file(self, line: str) -> Unwrapped | None:
        """Docker json-file entry: join ``log`` chunks of one stream until one ends in "\\n"."""
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            try:  # stdlib accepts what orjson refuses (lone surrogates), as docker may have written
                obj = json.loads(line)
            except ValueError:
                return self._inner(line, (), None)
        log = obj.get("log") if isinstance(obj, dict) else None
        if not isinstance(log, str):
            return self._inner(line, (), None)
        stream = obj.get("stream")
        time = obj.get("time")
        time = time if isinstance(time, str) else None
        key = "json:stderr" if stream == "stderr" else "json:stdout"
        return self._chunk(key, "docker-json-file", log, not log.endswith("\n"), time)

    def _cri(self, line: str, m: re.Match[str]) -> Unwrapped | None:
        """CRI log line: ``P`` chunks of one stream are joined with the next ``F`` without separator."""
        stream = m.group(2)
        return self._chunk("cri:" + stream, "cri:" + stream, line[m.end() :], m.group(3) == "P", m.group(1))

    def _chunk(self, key: str, layer: str, content: str, partial: bool, time: str | None) -> Unwrapped | None:
        """Hold a partial chunk, or finish the line (joined with what ``key`` holds; first chunk's time)."""
        held = self._held.get(key)
        if partial:
            if held is None:
                held = self._held[key] = _Held(layer, time)
            held.add(content)
            return None
        if content.endswith("\n"):
            content = content[:-1]
        if held is None:
            return self._inner(content, (layer,), time)
        del self._held[key]
        held.add(content)
        return self._inner("".join(held.parts), (layer, *held.flags()), held.time)

    def _inner(self, text: str, layers: tuple[str, ...], time: str | None) -> Unwrapped:
        """Layers inside a container record: ANSI, compose/kubectl prefix, outer timestamp, CR."""
        if _is_plain(text):
            return _make(text, layers, time)
        ansi = "\x1b" in text
        if ansi:
            text = _ANSI.sub("", text)
        if text[:1] == "[":
            m = _KUBECTL.match(text)
            if m is not None:
                layers = (*layers, "kubectl-prefix:" + m.group(1))
                text = text[m.end() :]
        else:
            end = text.find(" | ", 0, _MAX_PREFIX)
            if end > 0:
                layer = self._compose_layer(text[: end + 3])
                if layer is not None:
                    layers = (*layers, layer)
                    text = text[end + 3 :]
        if ansi:
            layers = (*layers, "ansi")
        if _is_plain(text):  # the common case under a compose prefix
            return _make(text, layers, time)
        if "0" <= text[:1] <= "9":
            m = _OUTER_TS.match(text)
            if m is not None:
                layers = (*layers, "timestamp")
                time = time or m.group(1)
                text = text[m.end() :]
        if text.endswith("\r"):
            text = text.rstrip("\r")
            layers = (*layers, "cr")
        return _make(text, layers, time)

    def _compose_layer(self, head: str) -> str | None:
        """Layer name of a compose prefix ``head`` (up to and incl. ' | '), None if it is not one.

        A stream has a handful of distinct prefixes, so the answer is cached (bounded: garbage
        with ' | ' in it must not grow the cache).
        """
        cached = self._prefixes
        if head in cached:
            return cached[head]
        m = _COMPOSE.fullmatch(head)
        layer: str | None
        if m is None:
            layer = None
        else:
            name = m.group(1)
            v1 = len(m.group(2)) == 1 or _COMPOSE_V1_NAME.fullmatch(name) is not None
            layer = ("compose-v1:" if v1 else "compose-v2:") + name
        if len(cached) < _MAX_CACHED_PREFIXES:
            cached[head] = layer
        return layer
