"""The hot path: a single left-to-right pass over a text request line, or a decline.

The real ``duration`` is the only `` duration=`` in the line (§9.4; more than one → decline). Left
to right, a raw value ends at the next SP followed by a built-in key later in the grammar's order;
other values are type-checked with the grammar's own terminal patterns. The scanner accepts only
when every `` known-key=`` candidate in the line is a field, in strictly increasing order: that
reading has the most built-in fields possible, so it is the one the reference parser chooses.
Anything else (an out-of-order or repeated key candidate, a failed type check, a custom tail it
cannot read) makes it DECLINE, and the reader falls back to the reference parser. The key table
and the patterns come from gwlog.grammar.

Most lines never take that pass: ``_Plan`` reads them with one compiled pattern that encodes the
same rules for the keys seen so far, and the pass above reads the rest and widens the plan.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gwlog.events import ParsedLine
from gwlog.grammar import CONVERTERS, MAX_NESTING, Grammar, load, parse_timestamp

_RAW, _TOKEN, _QUOTED, _QUOTED_OR_RAW = 0, 1, 2, 3

_Conv = Callable[[str], Any]
_MAX_SHAPES = 4096
_MAX_CUSTOM = 64  # custom keys a plan holds; lines with others take the general path
_MAX_SECONDS = 1024  # timestamps: the datetime of each recent second, the µs fraction added per line
# per key sequence: (INT keys, (key, kind, converter, check, quoted pattern) of other typed keys)
_ShapeInfo = tuple[tuple[str, ...], tuple[tuple[Any, ...], ...]]
_UNSEEN: Any = object()  # not yet seen (None = seen, the token loop decides)
_DECLINE: Any = object()  # a value the scanner must not read (the reference parser decides)
_PLAIN = r'[^"\\\n]*+'  # a STRING custom value without escapes (its text is its value), quotes excluded


def _int(text: str) -> int | None:
    """INT (``-?[0-9]+``) without a regex; ``int()`` alone would accept `` 1``, ``+1``, ``1_0``, ``٣``."""
    body = text[1:] if text[:1] == "-" else text
    return int(text) if body.isdigit() and body.isascii() else None


@dataclass(slots=True)
class _Plan:
    """One compiled pattern for the lines whose built-in values hold no SP outside quotes.

    It holds every built-in key seen so far, each optional, in the grammar's order (the general
    path's own acceptance: keys strictly in order, each at most once, values checked with the
    grammar's patterns), then ``duration``, then the plain-string custom keys seen so far, in the
    order they were seen. A line it matches is read as the general path reads it, in one ``re``
    call (~7.5 µs instead of ~12); any other line takes the general path, which may widen it.
    """

    regex: re.Pattern[str]
    groups: tuple[int, ...]  # group numbers: the timestamp, then one per key
    keys: tuple[str, ...]  # field names, in the order of ``groups[1:]``
    converted: tuple[tuple[int, str, _Conv], ...]  # (index in groups, key, converter) of typed values
    checked: tuple[tuple[int, str, int, Any, Any], ...]  # (index, key, kind, check, quoted) checked after
    duration_group: int  # group number of duration's value


class Scanner:
    """``scan(line) -> ParsedLine | None``; None = declined (the reference parser decides)."""

    def __init__(self, grammar: Grammar | None = None) -> None:
        g = self.grammar = grammar or load()
        pat = g.patterns
        self.header_regex = re.compile(
            "".join(f"(?P<{t}>{pat[t].pattern})" if t == "TIMESTAMP" else f"(?:{pat[t].pattern})" for t in g.header)
        )
        last = g.keys[-1]
        self._last_key = " " + last.key + "="
        (last_term,) = last.values
        self._last_pattern = pat[last_term]
        self._last_conv = CONVERTERS[last_term]
        self._last_name = last.key
        table: dict[str, tuple[int, str, int, _Conv, re.Pattern[str] | None, re.Pattern[str] | None]] = {}
        for spec in g.keys[:-1]:
            values = spec.values
            spaced = [g.spaced(t) for t in values]
            quoted = [g.quoted(t) for t in values]
            if len(values) == 1 and spaced[0]:
                kind = _RAW
            elif len(values) == 1 and quoted[0]:
                kind = _QUOTED
            elif len(values) == 1:
                kind = _TOKEN
            elif len(values) == 2 and quoted[0] and spaced[1]:
                kind = _QUOTED_OR_RAW
            else:  # pragma: no cover - a grammar change the scanner does not know: fail loudly
                raise ValueError(f"scanner cannot handle value classes {values} of {spec.key}")
            q = next((pat[t] for t, is_q in zip(values, quoted, strict=True) if is_q), None)
            other = values[-1]
            # INT and WORD are checked inline (hot), RAW needs no check
            check = None if other in ("RAW", "INT", "WORD") else pat[other]
            table[spec.key] = (spec.rank, spec.key, kind, CONVERTERS[other], check, q)
        self._table = table
        self._seconds: dict[str, datetime] = {}
        self._shapes: dict[tuple[str, ...], _ShapeInfo | None] = {}
        self._plan: _Plan | None = None
        self._plan_builtins: set[str] = set()
        self._plan_custom: list[str] = []
        self._typed = frozenset(
            k
            for k, spec in table.items()
            if spec[2] != _RAW and (spec[2] != _TOKEN or spec[3] is int or spec[4] is not None)
        )
        self._may_be_empty = frozenset(k for k, spec in table.items() if spec[2] in (_RAW, _QUOTED_OR_RAW))
        self._quoted_conv = CONVERTERS["QUOTED"]
        cv = g.custom_value_terminals
        key = pat["CUSTOM_KEY"].pattern
        # CFLOAT before CINT: the first alternative that matches must be the longest match
        scalars = sorted(
            (t for t in cv if t in ("STRING", "CFLOAT", "CINT", "TRUE", "FALSE")), key=lambda t: t == "CINT"
        )
        alts = "|".join(f"(?P<{t}>{pat[t].pattern})" for t in scalars)
        self._pair = re.compile(f" ({key})(?:{alts})(?= |$)")
        self._scalar = re.compile("|".join(f"(?P<{t}>{pat[t].pattern})" for t in scalars))
        self._key_only = re.compile(f" ({key})")
        # the common tail: STRING values without escapes (their text is their value)
        self._simple_tail = re.compile(f'(?: {key}"{_PLAIN}")+')
        self._simple_pair = re.compile(f' ({pat["CUSTOM_KEY"].pattern[:-1]})="({_PLAIN})"')
        self._string = pat["STRING"]

    def scan(self, line: str) -> ParsedLine | None:
        plan = self._plan
        if plan is not None:
            m = plan.regex.fullmatch(line)
            if m is not None:
                return self._planned(plan, m, line)
        parsed = self._scan(line)
        if parsed is not None:
            self._learn(parsed.fields)
        return parsed

    def _planned(self, plan: _Plan, m: re.Match[str], line: str) -> ParsedLine | None:
        """The fields of a line the plan matched: the general path's result, without its work."""
        if line.find(self._last_key, m.end(plan.duration_group)) >= 0:
            return None  # a second " duration=" inside a custom value (§9.4)
        values = m.group(*plan.groups)
        fields = {k: v for k, v in zip(plan.keys, values[1:], strict=True) if v is not None}
        for i, key, conv in plan.converted:
            v = values[i]
            if v is not None:
                fields[key] = conv(v)
        for i, key, kind, check, q in plan.checked:
            v = values[i]
            if v is not None:
                value = self._checked(v, kind, check, q)
                if value is _DECLINE:
                    return None
                fields[key] = value
        when = self._when(values[0])
        return None if when is None else ParsedLine(when, fields)

    def _checked(self, v: str, kind: int, check: re.Pattern[str] | None, q: re.Pattern[str] | None) -> Any:
        """A quoted (or quoted-or-raw) value, or a raw one with a check, as the general path reads
        it; _DECLINE when the scanner must not read it.

        A quoted value holding SP is read as the token loop reads it: no second `` duration=``
        (§9.4) and, when the value could also be raw, no built-in key candidate inside (the
        reference parser decides those)."""
        if v[:1] == '"':
            if q is None or q.fullmatch(v) is None:
                return _DECLINE
            if " " in v and (
                self._last_key in v
                or (kind == _QUOTED_OR_RAW and any(t.partition("=")[0] in self._table for t in v.split(" ")[1:]))
            ):
                return _DECLINE
            return self._quoted_conv(v)
        if kind == _QUOTED or (check is not None and check.fullmatch(v) is None):
            return _DECLINE
        return v

    def _learn(self, fields: dict[str, Any]) -> None:
        """Widen the plan with the keys of an accepted reading (built-ins up to ``duration``, then
        custom keys). Which lines taught it does not matter for correctness: the plan reads a line
        only when the general path would read it the same way; it only decides how often it hits."""
        keys = list(fields)
        d = keys.index(self._last_name)
        builtins, custom = keys[:d], keys[d + 1 :]
        if not self._table.keys().isdisjoint(custom):
            return  # a custom key named like an absent built-in: the general path's business
        known = self._plan_custom
        at = [known.index(k) for k in custom if k in known]
        if at != sorted(at):
            return  # custom keys in another order than seen before
        new_builtins = self._plan_builtins.union(builtins)
        if len(new_builtins) == len(self._plan_builtins) and len(at) == len(custom):
            return
        if len(known) + len(custom) - len(at) > _MAX_CUSTOM:
            return
        merged, pending = list(known), list[str]()
        for k in custom:  # each new key just before the next known key of this line, else last
            if k in merged:
                i = merged.index(k)
                merged[i:i] = pending
                pending = []
            else:
                pending.append(k)
        self._plan_custom = merged + pending
        self._plan_builtins = new_builtins
        self._plan = self._compile_plan()

    def _compile_plan(self) -> _Plan:
        pieces = [self.header_regex.pattern]
        keys: list[str] = []
        converted: list[tuple[int, str, _Conv]] = []
        checked: list[tuple[int, str, int, Any, Any]] = []
        patterns = self.grammar.patterns
        for spec in self.grammar.keys[:-1]:
            key = spec.key
            if key not in self._plan_builtins:
                continue
            keys.append(key)
            i = len(keys)
            _, _, kind, conv, check, q = self._table[key]
            if kind == _TOKEN:  # a token terminal never holds SP: it ends where the value ends
                value = f"(?:{patterns[spec.values[-1]].pattern})"
                if conv is not str:
                    converted.append((i, key, conv))
            else:
                value = "[^ \n]*+" if key in self._may_be_empty else "[^ \n]++"
                if q is not None:  # a quoted value may hold SP (the token loop's reading of it)
                    value = f"{q.pattern}(?= )|{value}"
                if kind != _RAW or check is not None:
                    checked.append((i, key, kind, check, q))
                value = f"(?:{value})"
            pieces.append(f"(?>(?:{re.escape(key)}=(?P<v{i}>{value}) )?)")
        keys.append(self._last_name)
        n = len(keys)
        pieces.append(f"(?<= ){self._last_key[1:]}(?P<v{n}>{self._last_pattern.pattern})")
        converted.append((n, self._last_name, self._last_conv))
        for key in self._plan_custom:
            keys.append(key)
            pieces.append(f'(?>(?: {re.escape(key)}="(?P<v{len(keys)}>{_PLAIN})")?)')
        regex = re.compile("".join(pieces))
        index = regex.groupindex
        groups = (index["TIMESTAMP"], *(index[f"v{i}"] for i in range(1, len(keys) + 1)))
        return _Plan(regex, groups, tuple(keys), tuple(converted), tuple(checked), index[f"v{n}"])

    def _when(self, ts: str) -> datetime | None:
        """A TIMESTAMP as a datetime; the seconds are parsed once per distinct second."""
        base = self._seconds.get(ts[:19])
        if base is None:
            try:
                base = parse_timestamp(ts[:20] + "0Z")
            except ValueError:
                return None
            if len(self._seconds) >= _MAX_SECONDS:
                self._seconds.clear()
            self._seconds[ts[:19]] = base
        return base.replace(microsecond=int(ts[20:-1]))

    def _scan(self, line: str) -> ParsedLine | None:
        """The general path: any line the scanner can read, left to right."""
        m = self.header_regex.match(line)
        if m is None or "\n" in line:
            return None
        start = m.end()
        d = line.rfind(self._last_key)
        if d < start - 1 or line.find(self._last_key, start - 1) != d:
            return None
        j = d + len(self._last_key)
        e = line.find(" ", j)
        if e < 0:
            e = len(line)
        dv = line[j:e]
        if self._last_pattern.fullmatch(dv) is None:
            return None
        fields = self._builtins(line[start:d]) if d >= start else {}
        if fields is None:
            return None
        fields[self._last_name] = self._last_conv(dv)
        if e < len(line) and not self._tail(line, e, fields):
            return None
        when = self._when(m.group("TIMESTAMP"))
        return None if when is None else ParsedLine(when, fields)

    def _builtins(self, body: str) -> dict[str, Any] | None:
        """Built-in pairs before ``duration`` as a new dict; None = decline.

        Fast path (almost every real line): every SP-separated token is ``known-key=value``, keys
        strictly in order, so no raw value holds an SP; the dict is built at C speed and only the
        typed values are visited. Otherwise the token loop of ``_builtins_loop`` decides.
        """
        parts = body.split(" ")
        try:
            pairs: dict[str, Any] = dict([p.split("=", 1) for p in parts])
        except ValueError:  # a token without "=": part of a raw (or quoted) value
            return self._builtins_loop(parts)
        if len(pairs) != len(parts):  # a key repeated: the dict kept only its last value
            return self._builtins_loop(parts)
        shape = tuple(pairs)
        typed = self._shapes.get(shape, _UNSEEN)
        if typed is _UNSEEN:
            typed = self._shape(shape)
        if typed is None:
            return self._builtins_loop(parts)
        if "" in pairs.values() and any(v == "" and k not in self._may_be_empty for k, v in pairs.items()):
            return None
        ints, others = typed
        for key in ints:
            v = pairs[key]
            digits = v[1:] if v[:1] == "-" else v
            if not (digits.isdigit() and digits.isascii()):
                return None
            pairs[key] = int(v)
        for key, kind, conv, check, q in others:
            v = pairs[key]
            if kind == _TOKEN:
                if check.fullmatch(v) is None:
                    return None
                pairs[key] = conv(v)
            else:
                value = self._checked(v, kind, check, q)
                if value is _DECLINE:
                    return None
                pairs[key] = value
        return pairs

    def _shape(self, shape: tuple[str, ...]) -> _ShapeInfo | None:
        """For a key sequence: the typed keys to check, or None when the token loop must decide
        (unknown or repeated key, keys out of order). Cached: real logs have few distinct shapes."""
        table = self._table
        ranks = [table[k][0] if k in table else -1 for k in shape]
        ok = -1 not in ranks and ranks == sorted(ranks)
        info: _ShapeInfo | None = None
        if ok:
            typed = [k for k in shape if k in self._typed]
            ints = tuple(k for k in typed if table[k][2] == _TOKEN and table[k][3] is int)
            info = (ints, tuple((k, *table[k][2:]) for k in typed if k not in ints))
        if len(self._shapes) < _MAX_SHAPES:
            self._shapes[shape] = info
        return info

    def _builtins_loop(self, parts: list[str]) -> dict[str, Any] | None:
        """Token loop: greedy shortest raw values, the reference parser's first path."""
        fields: dict[str, Any] = {}
        return fields if self._builtins_loop_into(parts, fields) else None

    def _builtins_loop_into(self, parts: list[str], fields: dict[str, Any]) -> bool:
        table = self._table
        last = -1
        raw_key: str | None = None  # the raw value being extended
        raw_parts: list[str] = []
        tokens = iter(parts)
        for tok in tokens:
            k, eq, v = tok.partition("=")
            spec = table.get(k) if eq else None
            if spec is None:
                if raw_key is None:
                    return False
                raw_parts.append(tok)
                continue
            rank, key, kind, conv, check, q = spec
            if rank <= last:  # a key candidate the grammar may or may not cut at: let it decide
                return False
            last = rank
            if raw_key is not None:
                fields[raw_key] = " ".join(raw_parts)
                raw_key = None
            if kind == _TOKEN:
                if conv is int:
                    value = _int(v)
                    if value is None:
                        return False
                    fields[key] = value
                elif not v or (check is not None and check.fullmatch(v) is None):
                    return False
                else:
                    fields[key] = conv(v)
            elif kind == _RAW or (kind == _QUOTED_OR_RAW and v[:1] != '"'):
                if check is not None and check.fullmatch(v) is None:
                    return False  # e.g. raw error starting with a quote: quoted-only
                raw_key = key
                raw_parts = [v]
            else:
                assert q is not None
                while q.fullmatch(v) is None:
                    nxt = next(tokens, None)
                    if nxt is None or q.match(v) is not None:
                        return False
                    if kind == _QUOTED_OR_RAW and nxt.partition("=")[0] in table:
                        return False  # read raw, this key candidate could be a field: let the reference decide
                    v = v + " " + nxt
                fields[key] = self._quoted_conv(v)
        if raw_key is not None:
            fields[raw_key] = " ".join(raw_parts)
        return True

    def _tail(self, line: str, pos: int, fields: dict[str, Any]) -> bool:
        """Custom fields after ``duration``: `` key=value``, every value typed; False = decline."""
        if self._simple_tail.fullmatch(line, pos) is not None:  # header values: plain strings
            pairs = self._simple_pair.findall(line, pos)
            custom = dict(pairs)
            if len(custom) == len(pairs) and fields.keys().isdisjoint(custom):
                fields.update(custom)  # no repeated key: the same as setdefault one by one
                return True
            setdefault = fields.setdefault
            for key, value in pairs:
                setdefault(key, value)
            return True
        n = len(line)
        pair = self._pair.match
        while pos < n:
            m = pair(line, pos)
            if m is not None:
                kind = m.lastgroup
                assert kind is not None
                fields.setdefault(m.group(1)[:-1], CONVERTERS[kind](m.group(kind)))
                pos = m.end()
                continue
            km = self._key_only.match(line, pos)
            if km is None:
                return False
            try:
                value, pos = self._nested(line, km.end(), 0)
            except ValueError:
                return False
            if pos < n and line[pos] != " ":
                return False
            fields.setdefault(km.group(1)[:-1], value)
        return True

    def _nested(self, s: str, pos: int, depth: int) -> tuple[Any, int]:
        """One CEL value at ``pos`` (objects/arrays recursively); ValueError when it is not one."""
        c = s[pos : pos + 1]
        if depth >= MAX_NESTING and c in ("{", "["):
            raise ValueError("nested too deeply")
        if c == "{":
            obj: dict[str, Any] = {}
            pos += 1
            if s.startswith("}", pos):
                return obj, pos + 1
            while True:
                m = self._string.match(s, pos)
                if m is None or not s.startswith(": ", m.end()):
                    raise ValueError("object key")
                value, pos = self._nested(s, m.end() + 2, depth + 1)
                obj[self._quoted_conv(m.group())] = value
                if s.startswith(", ", pos):
                    pos += 2
                elif s.startswith("}", pos):
                    return obj, pos + 1
                else:
                    raise ValueError("object")
        if c == "[":
            arr: list[Any] = []
            pos += 1
            if s.startswith("]", pos):
                return arr, pos + 1
            while True:
                value, pos = self._nested(s, pos, depth + 1)
                arr.append(value)
                if s.startswith(", ", pos):
                    pos += 2
                elif s.startswith("]", pos):
                    return arr, pos + 1
                else:
                    raise ValueError("array")
        if depth and s.startswith("()", pos):
            return None, pos + 2
        m = self._scalar.match(s, pos)
        if m is None:
            raise ValueError("scalar")
        kind = m.lastgroup
        assert kind is not None
        return CONVERTERS[kind](m.group(kind)), m.end()
