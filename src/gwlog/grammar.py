"""The request-line grammar, loaded once, and the built-in key table derived from it.

``grammars/agentgateway.lark`` is the only place that states the key order and the value class of
every key; this module reads both off the Lark rules (walking the ``builtins`` rule) so that the
scanner and the reference parser can never disagree with the grammar or with each other.
It also holds the per-terminal converters (text → typed Python value) both parsers share.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from lark import Lark
from lark.grammar import NonTerminal, Rule, Terminal
from lark.lexer import Lexer, LexerState, PatternStr, TerminalDef, Token
from lark.load_grammar import load_grammar

BUILTINS_RULE = "builtins"
#: Deepest custom object/array nesting read (CEL values are shallow; deeper is garbage or an attack).
MAX_NESTING = 64
CUSTOM_RULE = "custom"
#: The grammar's marker template for raw values the client chose (``_client{RAW}``, format doc §10).
CLIENT_TEMPLATE = "_client"

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "0": "\0", "'": "'"}
_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]{1,6}\}|.)")


def _unescape_one(m: re.Match[str]) -> str:
    body = m.group(1)
    if body[0] == "u" and len(body) > 1:
        code = int(body[2:-1], 16)
        # Rust never prints a surrogate or an out-of-range char; keep the line, mark the spot.
        return "\ufffd" if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF else chr(code)
    return _ESCAPES.get(body, body)


def unquote(text: str) -> str:
    """A Rust-Debug quoted string (with its quotes) → the string it prints."""
    inner = text[1:-1]
    return _ESCAPE.sub(_unescape_one, inner) if "\\" in inner else inner


def duration_ms(text: str) -> int:
    return int(text[:-2])


#: text → Python value, per value terminal of the grammar (raw/word/error values stay str).
CONVERTERS: dict[str, Callable[[str], Any]] = {
    "RAW": str,
    "WORD": str,
    "ERROR_RAW": str,
    "INT": int,
    "F64": float,
    "QUOTED": unquote,
    "DECIMAL": Decimal,
    "DURATION": duration_ms,
    "STRING": unquote,
    "CINT": int,
    "CFLOAT": float,
    "TRUE": lambda _: True,
    "FALSE": lambda _: False,
    "NULL": lambda _: None,
}


def parse_timestamp(text: str) -> datetime:
    """Gateway timestamp → aware UTC datetime; the fraction is a count of µs (``.5Z`` = 5 µs)."""
    return datetime(
        int(text[0:4]), int(text[5:7]), int(text[8:10]),
        int(text[11:13]), int(text[14:16]), int(text[17:19]),
        int(text[20:-1]), tzinfo=UTC,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One built-in key: its place in the emission order and its value terminals (tried in order).

    ``client``: its raw value is text the client chose (marked ``_client{RAW}`` in the grammar).
    """

    key: str
    rule: str
    rank: int
    key_terminal: str
    values: tuple[str, ...]
    client: bool = False


class _NoLexer(Lexer):
    """Tokens are fed by hand (gwlog.reference): raw values cannot be lexed without the parser."""

    def __init__(self, conf: Any) -> None:
        pass

    def lex(self, lexer_state: LexerState, parser_state: Any) -> Iterator[Token]:
        return iter(())


@dataclass(frozen=True, slots=True)
class Grammar:
    """The loaded grammar plus everything derived from it."""

    text: str  # the grammar source
    keys: tuple[KeySpec, ...]
    by_key: dict[str, KeySpec]
    by_rule: dict[str, KeySpec]
    patterns: dict[str, re.Pattern[str]]  # terminal name → compiled pattern
    header: tuple[str, ...]  # terminals before the first pair (start rule)
    custom_value_terminals: tuple[str, ...]

    def spaced(self, terminal: str) -> bool:
        """Whether values of this terminal may hold SP (raw: cut only at a later key boundary)."""
        return self.patterns[terminal].fullmatch("a b=c") is not None

    def quoted(self, terminal: str) -> bool:
        return self.patterns[terminal].pattern.startswith('"')

    @property
    def lark(self) -> Lark:
        """The LALR parser, for the reference parser only: built on first use (~0.35 s of CPU and
        ~20 MiB of peak RSS), so runs whose lines the scanner reads never pay for it."""
        return _lalr(self.text)


@cache
def _lalr(text: str) -> Lark:
    return Lark(text, parser="lalr", lexer=_NoLexer, start="start", maybe_placeholders=False)


class _Compiled:
    """The grammar compiled to BNF rules and terminals, as ``Lark`` compiles it, without building
    parser tables: all the key table and the scanner need."""

    def __init__(self, text: str) -> None:
        grammar, _ = load_grammar(text, "agentgateway.lark", (), False)
        self.terminals, self.rules, _ = grammar.compile(["start"], set())
        self._terminals = {t.name: t for t in self.terminals}

    def get_terminal(self, name: str) -> TerminalDef:
        return self._terminals[name]


def _rules_by_origin(parser: Lark | _Compiled) -> dict[str, list[Rule]]:
    out: dict[str, list[Rule]] = {}
    for rule in parser.rules:
        out.setdefault(rule.origin.name, []).append(rule)
    return out


_Pair = tuple[str, str, str, tuple[str, ...], bool]  # key, rule, key terminal, value terminals, client


def _pair_key(
    parser: Lark | _Compiled, by_origin: dict[str, list[Rule]], rules: list[Rule]
) -> tuple[str, str, tuple[str, ...], bool] | None:
    """``name: "key=" VALUE _SP`` → (key, key terminal, value terminals, client), else None.

    A value written ``_client{RAW}`` is the terminal ``RAW`` of a client-controlled value.
    """
    first = rules[0].expansion[0] if rules[0].expansion else None
    if not isinstance(first, Terminal):
        return None
    pattern = parser.get_terminal(first.name).pattern
    if not isinstance(pattern, PatternStr) or not pattern.value.endswith("="):
        return None
    values: dict[str, None] = {}
    client = False
    for rule in rules:
        sym = rule.expansion[1]
        if isinstance(sym, NonTerminal):
            (inner,) = by_origin[sym.name]
            if inner.options.template_source != CLIENT_TEMPLATE or len(inner.expansion) != 1:
                raise ValueError(f"{first.name}: value {sym.name} is neither a terminal nor {CLIENT_TEMPLATE}{{…}}")
            sym, client = inner.expansion[0], True
        values[sym.name] = None
    return pattern.value[:-1], first.name, tuple(values), client


def _walk(
    parser: Lark | _Compiled,
    by_origin: dict[str, list[Rule]],
    name: str,
    out: list[_Pair],
) -> None:
    """Flatten a group rule in order: of its alternatives, follow the one naming the most keys."""
    rules = by_origin[name]
    pair = _pair_key(parser, by_origin, rules)
    if pair is not None:
        if all(item[1] != name for item in out):
            out.append((pair[0], name, pair[1], pair[2], pair[3]))
        return
    best: list[_Pair] = []
    for rule in rules:
        seq = list(out)
        for sym in rule.expansion:
            if isinstance(sym, NonTerminal):
                _walk(parser, by_origin, sym.name, seq)
        if len(seq) > len(best):
            best = seq
    out[:] = best


def _compile(pattern: str) -> re.Pattern[str]:
    """A terminal's regex. A quoted string ``"(…)*"`` gets a possessive loop (``)*+"``): none of
    the loop's alternatives can start at a ``"``, so giving an iteration back can never let the
    closing quote match — the language is the same — and ``re`` then keeps no backtrack state per
    character (a 40 KB quoted custom value: 6.5 MiB and 5 ms → 1 KiB and 1.3 ms)."""
    if pattern.startswith('"(') and pattern.endswith(')*"'):
        loop = re.compile(pattern[1:-2])  # the parenthesised loop body
        if all(loop.match('"' + c) is None for c in ('"', "x", "\\", " ", "")):
            pattern = pattern[:-1] + '+"'
    return re.compile(pattern)


@cache
def load() -> Grammar:
    """Load ``agentgateway.lark`` (shipped inside the package) and derive the key table."""
    text = resources.files("gwlog").joinpath("agentgateway.lark").read_text(encoding="utf-8")
    parser = _Compiled(text)
    by_origin = _rules_by_origin(parser)
    flat: list[_Pair] = []
    _walk(parser, by_origin, BUILTINS_RULE, flat)
    keys = tuple(
        KeySpec(k, rule, rank, term, values, client) for rank, (k, rule, term, values, client) in enumerate(flat)
    )
    patterns = {t.name: _compile(t.pattern.to_regexp()) for t in parser.terminals}
    header: list[str] = []
    for sym in by_origin["start"][0].expansion:
        if not isinstance(sym, Terminal):
            break
        header.append(sym.name)
    custom = by_origin[CUSTOM_RULE][0].expansion
    value_terms: dict[str, None] = {}
    stack = [s.name for s in custom[2:]]
    seen: set[str] = set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for rule in by_origin.get(name, []):
            for sym in rule.expansion:
                if isinstance(sym, Terminal):
                    value_terms[sym.name] = None
                else:
                    stack.append(sym.name)
    return Grammar(
        text=text,
        keys=keys,
        by_key={s.key: s for s in keys},
        by_rule={s.rule: s for s in keys},
        patterns=patterns,
        header=tuple(header),
        custom_value_terminals=tuple(value_terms),
    )
