"""Reference parser: Lark LALR over the grammar, the arbiter of what a request line means.

Raw values may hold SP, ``=`` and client-controlled text, so no lexer can know where one ends. The
parser lexes candidate boundaries (`` <built-in key>=``) and searches the readings Lark's LALR
parser accepts: among them the one with the most built-in fields, then the fewest key candidates
inside raw values the gateway wrote (rather than ones the client chose, ``_client{RAW}`` in the
grammar), then the shortest raw values. So a forged `` key=`` inside a raw value stays in it unless
it fits without displacing a real field (the §10 residual), and it never makes a real key part of a
gateway value. The search is memoised per (position, LALR stack) and bounded, so adversarial lines
stay cheap. Slow but exact: used for lines the scanner declines and by ``explain``.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

from lark import Token, Tree
from lark.parsers.lalr_analysis import Shift
from lark.parsers.lalr_interactive_parser import InteractiveParser

from gwlog.events import ParsedLine
from gwlog.grammar import (
    BUILTINS_RULE,
    CONVERTERS,
    CUSTOM_RULE,
    MAX_NESTING,
    Grammar,
    load,
    parse_timestamp,
)

_SP = "_SP"
#: Search limits per line: steps (pairs tried + raw cuts considered; normal lines use ~100) and
#: characters of raw values pattern-checked. They bound the time an adversarial or garbage line
#: with thousands of key candidates can take; beyond them the line has no reading.
BUDGET = 300_000
CHAR_BUDGET = 50_000_000


def shown(value: Any, limit: int = 60) -> str:
    """Input quoted in a reason: at most ``limit`` characters (then "…"), as one printable line.

    Non-printable characters (CR, LF, ESC, NUL, VT, NEL, U+2028, …) are escaped the way ``repr``
    writes them (``\\r``, ``\\x1b``, ``\\u2028``), so a reason quoting a hostile line can neither
    break the log line it is written on nor drive the terminal showing it. Every reason that quotes
    input (here and in gwlog.reader) goes through this function.
    """
    text = value if isinstance(value, str) else repr(value)
    cut = text[:limit]
    if not cut.isprintable():
        cut = "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut)
    return cut + "…" if len(text) > limit else cut


class ReferenceParser:
    """``parse(line) -> ParsedLine | str``: the reading defined by the grammar, or why there is none."""

    def __init__(self, grammar: Grammar | None = None) -> None:
        g = self.grammar = grammar or load()
        alternation = "|".join(re.escape(s.key) for s in sorted(g.keys, key=lambda s: -len(s.key)))
        self._boundary = re.compile(f" (?=({alternation})=)")
        self._first_key = re.compile(f"({alternation})=")
        self._key_terminal = {s.key: s.key_terminal for s in g.keys}
        self._values = {s.key: s.values for s in g.keys}
        self._client = {s.key: s.client for s in g.keys}
        self._spaced = {t: g.spaced(t) for s in g.keys for t in s.values}
        self._quoted = {t: g.quoted(t) for s in g.keys for t in s.values}
        self._last = g.keys[-1].key  # duration: custom fields follow it
        self._custom_key = g.patterns["CUSTOM_KEY"]
        self._custom_values = [(t, g.patterns[t]) for t in g.custom_value_terminals]

    def parse(self, line: str) -> ParsedLine | str:
        """The grammar's reading of one text request line (no wrapper, no trailing newline)."""
        g = self.grammar
        ip = g.lark.parse_interactive("")
        pos = 0
        ts = ""
        for name in g.header:
            m = g.patterns[name].match(line, pos)
            if m is None:
                return f"not a request line: expected {name} at column {pos}"
            if name == "TIMESTAMP":
                ts = m.group()
            ip.feed_token(Token(name, m.group()))
            pos = m.end()
        try:
            when = parse_timestamp(ts)
        except ValueError as exc:
            return f"bad timestamp '{shown(ts)}': {exc}"
        search = _Search(self, line[pos:])
        tree = search.run(ip)
        if tree is None:
            return search.why()
        fields = _fields(g, tree)
        return ParsedLine(when, fields)


# A reading of the rest of the line from some pair on: (built-in fields in it, minus the key
# candidates inside gateway-written raw values in it, its tokens as a cons list ``(tokens of this
# pair, rest)``). Readings compare by the first two, higher is better; both add up along the line.
_Node = tuple[tuple[tuple[str, str], ...], Any]
_Best = tuple[int, int, _Node]


class _Search:
    """One line's search over boundary choices: the reading with the most built-in fields.

    Every real built-in the gateway wrote is a field of the true reading, and a forged ``key=``
    inside a raw value can only become a field by swallowing real ones into a raw value (fewer
    fields) or, when it fits the order without doing so, as the §10 residual. So among the readings
    the grammar accepts the search takes the one with the most built-in fields. Among those, the one
    with the fewest key candidates inside raw values the gateway wrote: forged text stays in the
    client's value (format doc §10) instead of a gateway value swallowing the real key after it.
    Then the shortest raw values (earliest cuts, README "Reading raw values correctly"). It runs Lark's LALR
    table on state stacks only (cheap to copy), memoised per (position, LALR stack); the chosen
    tokens are then fed to Lark's interactive parser once to build the parse tree.
    """

    def __init__(self, parser: ReferenceParser, rest: str) -> None:
        self.p = parser
        self.rest = rest
        self.bounds: list[int] = []  # positions of the SP before a built-in key
        self.key_at: dict[int, str] = {}  # position of a key's first char → key
        m = parser._first_key.match(rest)
        if m is not None:
            self.key_at[0] = m.group(1)
        for b in parser._boundary.finditer(rest):
            self.bounds.append(b.start())
            self.key_at[b.start() + 1] = b.group(1)
        self.memo: dict[tuple[int, tuple[int, ...]], _Best | None] = {}
        self.far = (-1, "empty line")
        self.steps = 0
        self.chars = 0
        conf = parser.grammar.lark.parser.parser.parser.parse_table
        self.states: dict[int, dict[str, tuple[Any, Any]]] = conf.states
        self.end_state: int = conf.end_states["start"]

    def why(self) -> str:
        pos, msg = self.far
        if self.steps > BUDGET or self.chars > CHAR_BUDGET:
            return f"no reading within the search budget ({len(self.bounds)} key candidates)"
        if not any(k == self.p._last for k in self.key_at.values()):
            return "no duration=<N>ms field (truncated line, or duration removed from the log)"
        return f"no reading: {msg} (column {pos} after the header)"

    def _fail(self, pos: int, msg: str) -> None:
        if pos >= self.far[0]:
            self.far = (pos, msg)

    def _step(self, stack: list[int], term: str) -> bool:
        """Lark's LALR step (``ParserState.feed_token``) on the state stack alone."""
        states = self.states
        while True:
            act = states[stack[-1]].get(term)
            if act is None:
                return False
            action, arg = act
            if action is Shift:
                if term == "$END":
                    return False
                stack.append(arg)
                return True
            size = len(arg.expansion)
            if size:
                del stack[-size:]
            stack.append(states[stack[-1]][arg.origin.name][1])
            if term == "$END" and stack[-1] == self.end_state:
                return True

    def _fed(self, stack: list[int], *terms: str) -> list[int] | None:
        stack = stack.copy()
        return stack if all(self._step(stack, t) for t in terms) else None

    def run(self, ip: InteractiveParser) -> Tree[Token] | None:
        try:
            best = self._at(0, list(ip.parser_state.state_stack))
        except _Exhausted:
            return None
        if best is None:
            return None
        node: Any = best[2]
        while node is not None:
            tokens, node = node
            for term, value in tokens:
                ip.feed_token(Token(term, value))
        tree: Tree[Token] = ip.feed_eof(Token(_SP, ""))
        return tree

    def _at(self, p: int, stack: list[int]) -> _Best | None:
        """The best reading of the line from the pair starting at ``p`` on, or None."""
        memo = (p, tuple(stack))
        if memo in self.memo:
            return self.memo[memo]
        self.steps += 1
        if self.steps > BUDGET:
            raise _Exhausted
        best: _Best | None = None
        key = self.key_at.get(p)
        if key is None:
            self._fail(p, f"expected a built-in key at '{shown(self.rest[p : p + 31], 30)}'")
        else:
            key_token = (self.p._key_terminal[key], key + "=")
            after = self._fed(stack, key_token[0])
            if after is None:
                self._fail(p, f"{key}= out of order or repeated")
            else:
                best = self._values(key, key_token, p + len(key) + 1, after)
        self.memo[memo] = best
        return best

    def _values(self, key: str, key_token: tuple[str, str], v: int, stack: list[int]) -> _Best | None:
        rest = self.rest
        last = key == self.p._last
        best: _Best | None = None
        for term in self.p._values[key]:
            pattern = self.p.grammar.patterns[term]
            if self.p._spaced[term] and not last:
                found = self._raw(key_token, stack, term, pattern, v, self.p._client[key])
            else:
                if self.p._quoted[term]:
                    m = pattern.match(rest, v)
                    if m is None:
                        self._fail(v, f"{key}= value is not a complete quoted string")
                        continue
                    end = m.end()
                else:
                    end = rest.find(" ", v)
                    end = len(rest) if end < 0 else end
                    if pattern.fullmatch(rest, v, end) is None:
                        self._fail(v, f"{key}='{shown(rest[v : min(end, v + 41)], 40)}' is not {term}")
                        continue
                found = self._then(key_token, stack, term, rest[v:end], end, last)
            if found is not None and (best is None or found[:2] > best[:2]):
                best = found
        return best

    def _raw(
        self,
        key_token: tuple[str, str],
        stack: list[int],
        term: str,
        pattern: re.Pattern[str],
        v: int,
        client: bool,
    ) -> _Best | None:
        """A raw value: cut it at each later boundary whose key the parser accepts.

        The LALR state after the value does not depend on its text, so which keys may follow is
        decided once per key; the value's own pattern is checked only for accepted cuts. Cuts are
        tried in line order and the search stops once no later cut can beat the best score: on
        an ordinary line the first cut uses every candidate, so the search is linear. The key
        candidates a cut leaves inside the value count against the reading unless ``client``.
        """
        after = self._fed(stack, term, _SP)
        if after is None:
            return None
        accepts: dict[str, bool] = {}
        best: _Best | None = None
        bounds = self.bounds
        first = bisect.bisect_left(bounds, v)
        weight = 0 if client else 1
        for i in range(first, len(bounds)):
            if best is not None:
                # even if every later candidate were a field, this cut could at best tie on fields
                # (then with i - first candidates inside this value) and no later cut could
                most = 1 + len(bounds) - i
                if most < best[0] or (most == best[0] and -weight * (i - first) <= best[1]):
                    break
            self.steps += 1
            b = bounds[i]
            key = self.key_at[b + 1]
            ok = accepts.get(key)
            if ok is None:
                ok = accepts[key] = self._fed(after, self.p._key_terminal[key]) is not None
            if not ok:
                continue
            self.chars += b - v
            if self.chars > CHAR_BUDGET:
                raise _Exhausted
            if pattern.fullmatch(self.rest, v, b) is None:
                continue
            sub = self._at(b + 1, after)
            if sub is None:
                continue
            # fewer candidates inside gateway values, then the earlier cut (shorter raw value): a
            # forged copy of a key inside its own value must not win by an earlier raw value
            # swallowing the real key
            score = (sub[0] + 1, sub[1] - weight * (i - first))
            if best is None or score > best[:2]:
                best = (*score, ((key_token, (term, self.rest[v:b]), (_SP, " ")), sub[2]))
        return best

    def _then(
        self, key_token: tuple[str, str], stack: list[int], term: str, value: str, end: int, last: bool
    ) -> _Best | None:
        """One value whose end is fixed: go on with the next pair or (after duration) the tail."""
        after = self._fed(stack, term)
        if after is None:
            return None
        if last:
            tail = self._tail(after, end)
            return None if tail is None else (1, 0, ((key_token, (term, value), *tail), None))
        if end >= len(self.rest) or self.rest[end] != " ":
            self._fail(end, "value not followed by SP")
            return None
        if end + 1 not in self.key_at:
            self._fail(end + 1, f"value ends before '{shown(self.rest[end : end + 31], 30)}', not a built-in key")
            return None
        after_sp = self._fed(after, _SP)
        sub = None if after_sp is None else self._at(end + 1, after_sp)
        if sub is None:
            return None
        return (sub[0] + 1, sub[1], ((key_token, (term, value), (_SP, " ")), sub[2]))

    def _tail(self, stack: list[int], pos: int) -> list[tuple[str, str]] | None:
        """After ``duration``: typed custom fields only, each `` key=value``; their tokens or None."""
        rest = self.rest
        n = len(rest)
        stack = stack.copy()
        tokens: list[tuple[str, str]] = []
        try:
            while pos < n:
                if rest[pos] != " ":
                    raise _TailError(pos, "custom fields must be separated by SP")
                self._feed(stack, tokens, _SP, " ", pos)
                m = self.p._custom_key.match(rest, pos + 1)
                if m is None:
                    raise _TailError(pos + 1, "expected a custom key=")
                self._feed(stack, tokens, "CUSTOM_KEY", m.group(), pos + 1)
                pos = m.end()
                depth = 0
                while True:
                    term, text = self._custom_token(pos)
                    self._feed(stack, tokens, term, text, pos)
                    pos += len(text)
                    depth += (term in ("_LBRACE", "_LBRACKET")) - (term in ("_RBRACE", "_RBRACKET"))
                    if depth <= 0:
                        break
                    if depth > MAX_NESTING:
                        raise _TailError(pos, f"custom value nested deeper than {MAX_NESTING}")
            if not self._step(stack, "$END"):
                raise _TailError(pos, "line ends inside a custom value")
        except _TailError as exc:
            self._fail(exc.pos, exc.msg)
            return None
        return tokens

    def _feed(self, stack: list[int], tokens: list[tuple[str, str]], term: str, value: str, pos: int) -> None:
        if not self._step(stack, term):
            raise _TailError(pos, f"custom value is not typed at '{shown(self.rest[pos : pos + 31], 30)}'")
        tokens.append((term, value))

    def _custom_token(self, pos: int) -> tuple[str, str]:
        """Longest match among the custom-value terminals (string-aware by construction)."""
        best: tuple[str, str] | None = None
        for term, pattern in self.p._custom_values:
            m = pattern.match(self.rest, pos)
            if m is not None and m.end() > pos and (best is None or len(m.group()) > len(best[1])):
                best = (term, m.group())
        if best is None:
            raise _TailError(pos, f"custom value is not typed at '{shown(self.rest[pos : pos + 31], 30)}'")
        return best


class _Exhausted(Exception):
    """The search budget ran out."""


class _TailError(Exception):
    def __init__(self, pos: int, msg: str) -> None:
        self.pos, self.msg = pos, msg


def _custom_value(node: Tree[Token] | Token) -> Any:
    if isinstance(node, Token):
        return CONVERTERS[node.type](node.value)
    if node.data == "object":
        obj = {}
        for member in node.children:
            assert isinstance(member, Tree)
            key, value = member.children
            obj[CONVERTERS["STRING"](str(key))] = _custom_value(value)
        return obj
    return [_custom_value(c) for c in node.children]


def _fields(g: Grammar, tree: Tree[Token]) -> dict[str, Any]:
    """Parse tree → fields in line order, typed."""
    fields: dict[str, Any] = {}
    for child in tree.children:
        if not isinstance(child, Tree):
            continue
        if child.data == BUILTINS_RULE:
            for pair in child.children:
                assert isinstance(pair, Tree)
                token = pair.children[0]
                assert isinstance(token, Token)
                fields[g.by_rule[str(pair.data)].key] = CONVERTERS[token.type](token.value)
        elif child.data == CUSTOM_RULE:
            key, value = child.children
            assert isinstance(key, Token)
            # a custom key named like a field already read never replaces it (the gateway blanks a
            # built-in an `add` redefines, so both cannot be real)
            fields.setdefault(key.value[:-1], _custom_value(value))
    return fields
