"""Scanner vs reference parser on generated lines of every shape (hypothesis).

* ordinary lines (any ordered subset of the built-in keys of any version, raw values with SP, `=`
  and quotes, Rust-Debug quoted values with escapes and \\u{..}, typed custom fields of every kind
  incl. nested): the reference parser recovers exactly the intended fields, and the scanner
  accepts the line and agrees;
* hostile lines (forged `` key=`` fragments inside raw values, forged duration + identity) and
  random mutations: whenever the scanner accepts, it agrees with the reference parser, and a forged
  identity never becomes a field.

``pytest --slow`` raises the number of examples (tests/conftest.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from gwlog.events import ParsedLine
from gwlog.grammar import load
from gwlog.reference import ReferenceParser
from gwlog.scanner import Scanner, _int

G = load()
REF = ReferenceParser(G)
SCAN = Scanner(G)
BUILTINS = G.keys[:-1]  # duration is added last, always
KEYS = [s.key for s in G.keys]


def rust_debug(text: str) -> str:
    """A string as Rust's ``{:?}`` prints it (the escapes the gateway's quoted values use)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\n\r\t\0":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}[ch])
        elif ord(ch) < 0x20 or ch in "\x7f\u200b\u0301":
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def cel(value: Any, nested: bool = False) -> str:
    """A custom CEL value as the gateway renders it in text mode (serde-like ``": "``/``", "``)."""
    if value is None:
        assert nested
        return "()"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Text):
        return value.text
    if isinstance(value, str):
        return rust_debug(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{rust_debug(k)}: {cel(v, True)}" for k, v in value.items()) + "}"
    return "[" + ", ".join(cel(v, True) for v in value) + "]"


@dataclass(frozen=True)
class Text:
    """A float written exactly as ``text`` (Display ``0.25`` or pre-1.3 Debug ``2.0``, ``1e-7``)."""

    text: str


def expected_custom(value: Any) -> Any:
    if isinstance(value, Text):
        return float(value.text)
    if isinstance(value, dict):
        return {k: expected_custom(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expected_custom(v) for v in value]
    return value


SAFE = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789-_./:@()[]{}'\"=", min_size=1, max_size=12)
WORD = SAFE.filter(lambda s: "=" not in s or s.split("=", 1)[0] not in KEYS)
# raw values: words (with `=` and quotes) joined by SP; never a ` known-key=` fragment
RAW = st.lists(WORD, min_size=0, max_size=4).map(" ".join)
UNICODE = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from('"\\\n\t\0\u200b'),
    max_size=20,
)
DIGITS = st.integers(min_value=0, max_value=10**12)
FLOAT_TEXT = st.builds(
    lambda a, b: f"{a}.{b}", st.integers(-999, 10**6), st.from_regex(r"[0-9]{0,5}[1-9]", fullmatch=True)
)
NUMBER_TEXT = st.one_of(DIGITS.map(str), FLOAT_TEXT)
CUSTOM_SCALAR = st.one_of(
    UNICODE,
    st.integers(-(10**15), 10**15),
    FLOAT_TEXT.map(Text),
    st.sampled_from([Text("2.0"), Text("1e-7"), Text("-3.5e+12")]),
    st.booleans(),
)
CUSTOM_VALUE = st.recursive(
    CUSTOM_SCALAR,
    lambda inner: st.one_of(
        st.lists(inner | st.none(), max_size=3),
        st.dictionaries(UNICODE, inner | st.none(), max_size=3),
    ),
    max_leaves=6,
)
CUSTOM_KEY = st.from_regex(r"[a-z][a-z0-9_.]{0,12}", fullmatch=True).filter(lambda k: k not in KEYS)


@st.composite
def value_for(draw: st.DrawFn, spec: Any, tab_form: bool) -> tuple[str, Any]:
    """(text, expected value) for one built-in key, by the value class the grammar gives it."""
    terms = spec.values
    if "QUOTED" in terms and (terms == ("QUOTED",) or draw(st.booleans()) or (tab_form and spec.key == "jwt.sub")):
        s = draw(UNICODE)
        return rust_debug(s), s
    term = terms[-1]
    if term == "INT":
        n = draw(st.integers(-(10**9), 10**12))
        return str(n), n
    if term == "F64":
        t = draw(NUMBER_TEXT)
        return t, float(t)
    if term == "DECIMAL":
        t = draw(NUMBER_TEXT)
        return t, Decimal(t)
    if term == "WORD":
        t = draw(WORD)
        return t, t
    t = draw(RAW)
    if term == "ERROR_RAW":
        assume(not t.startswith('"'))
    if "QUOTED" in terms:  # a raw value of a quoted-or-raw key starting with a quote reads as quoted
        assume(not t.startswith('"'))
    return t, t


@st.composite
def lines(draw: st.DrawFn, hostile: bool = False) -> tuple[str, dict[str, Any], datetime]:
    """A request line, the fields the gateway meant, and its timestamp."""
    when = draw(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1)))
    frac = str(when.microsecond)
    if draw(st.booleans()):
        frac = frac.rjust(6, "0")  # after PR #3370
    ts = when.strftime("%Y-%m-%dT%H:%M:%S.") + frac + "Z"
    tab_form = draw(st.integers(0, 9)) == 0  # v0.6.0/0.6.1
    chosen = [s for s in BUILTINS if draw(st.integers(0, 2)) == 0]
    if tab_form and not chosen:
        chosen = [BUILTINS[7]]
    parts: list[str] = []
    fields: dict[str, Any] = {}
    raws = [i for i, spec in enumerate(chosen) if spec.values[-1] in ("RAW", "ERROR_RAW") or "QUOTED" in spec.values]
    target = draw(st.sampled_from(raws)) if hostile and raws else -1  # one forged value per line
    for i, spec in enumerate(chosen):
        text, value = draw(value_for(spec, tab_form))
        if i == target:
            # forge the same key, a neighbour that is (or is not) really there, any key, identity
            near = [s.key for s in chosen[max(0, i - 1) : i + 2]]
            forged_key = draw(st.sampled_from([*near, "duration", "user.email"]) | st.sampled_from(KEYS))
            forged_value = draw(st.sampled_from(["200", "1ms", "x y", '"ceo@corp"', ""]))
            forged = f" {forged_key}={forged_value}"
            if draw(st.integers(0, 3)) == 0:
                forged += ' duration=1ms user.email="ceo@corp"'
            if text.startswith('"'):  # inside a quoted value (escaped): jwt.sub may also read raw
                text = text[:-1] + forged.replace("\\", "\\\\").replace('"', '\\"') + '"'
            else:
                text += forged
            value = None  # the reading may legitimately differ (§10 residual)
        parts.append(f"{spec.key}={text}")
        fields[spec.key] = value
    duration = draw(st.integers(0, 10**7))
    parts.append(f"duration={duration}ms")
    fields["duration"] = duration
    for key, value in draw(st.dictionaries(CUSTOM_KEY, CUSTOM_VALUE, max_size=4)).items():
        parts.append(f"{key}={cel(value)}")
        fields[key] = expected_custom(value)
    sep = "\t" if tab_form else " "
    line = f"{ts}\tinfo\trequest{sep}" + " ".join(parts)
    return line, fields, when.replace(tzinfo=UTC)


def check_plan(line: str) -> ParsedLine | None:
    """Scan twice: the second read may come from the plan the first one widened; both, and the
    general path alone, must give the same reading (a plan never changes what a line means)."""
    first = SCAN.scan(line)
    again = SCAN.scan(line)
    assert again == first, line
    assert again is None or list(again.fields) == list(first.fields)
    assert SCAN._scan(line) == first, line
    return first


def check_agree(line: str) -> ParsedLine | str:
    ref = REF.parse(line)
    scanned = check_plan(line)
    if scanned is not None:
        assert isinstance(ref, ParsedLine), (line, ref)
        assert scanned.fields == ref.fields, line
        assert list(scanned.fields) == list(ref.fields), line
        assert scanned.ts == ref.ts
        assert all(type(scanned.fields[k]) is type(ref.fields[k]) for k in ref.fields)
    return ref


@given(lines())
def test_ordinary_lines_read_as_meant_and_scanner_accepts(case: tuple[str, dict[str, Any], datetime]) -> None:
    line, fields, when = case
    assume(line.count(" duration=") == 1)  # a custom string holding " duration=" is declined (fine)
    ref = REF.parse(line)
    assert isinstance(ref, ParsedLine), (line, ref)
    assert ref.fields == fields
    assert ref.ts == when
    scanned = check_plan(line)
    assert scanned is not None, line  # ordinary lines never leave the hot path
    assert scanned == ref


@given(lines(hostile=True))
def test_hostile_lines_scanner_agrees_and_identity_is_not_forged(
    case: tuple[str, dict[str, Any], datetime],
) -> None:
    line, fields, _ = case
    ref = check_agree(line)
    assert isinstance(ref, ParsedLine), (line, ref)
    assert ref.fields.get("user.email") == fields.get("user.email"), line
    for key, value in fields.items():
        if value is not None and key not in G.by_key:
            assert ref.fields[key] == value  # every real custom field survives


@given(lines(), st.data())
def test_mutated_lines_scanner_agrees(case: tuple[str, dict[str, Any], datetime], data: st.DataObject) -> None:
    line = case[0]
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(line)))
        j = data.draw(st.integers(i, min(len(line), i + 8)))
        line = (
            line[:i]
            + data.draw(st.sampled_from(["", " ", "=", '"', "\\", " duration=3ms", " http.status=", "{", "]"]))
            + line[j:]
        )
    check_agree(line)


@given(st.text(max_size=12))
def test_int_check_is_the_grammar_int(text: str) -> None:
    """The scanner's inline INT check accepts exactly what the grammar's INT terminal matches."""
    assert (_int(text) is not None) == (G.patterns["INT"].fullmatch(text) is not None)


def test_every_increasing_key_sequence_is_grammatical() -> None:
    """The scanner's rule (built-ins in the derived order) never accepts what the grammar rejects."""
    line = "2026-01-01T00:00:00.1Z\tinfo\trequest " + " ".join(
        f"{s.key}={'1' if s.values[-1] in ('INT', 'F64', 'DECIMAL') else 'x'}"
        if s.values[-1] != "QUOTED" else f'{s.key}="x"'
        for s in BUILTINS
    ) + " duration=1ms"  # fmt: skip
    ref = REF.parse(line)
    assert isinstance(ref, ParsedLine), ref
    assert list(ref.fields) == KEYS
    assert SCAN.scan(line) == ref


def test_quoted_or_raw_value_with_key_candidates_is_left_to_the_reference() -> None:
    """jwt.sub is Debug-quoted (v0.6.0/0.6.1) or raw: read raw, the candidates inside the quotes
    give more fields, so the scanner must not take the quoted reading on its own."""
    line = '2025-07-14T12:00:00.004211Z\tinfo\trequest\tjwt.sub="a protocol=x a2a.method=y" duration=1ms'
    ref = check_agree(line)
    assert isinstance(ref, ParsedLine)
    assert ref.fields == {"jwt.sub": '"a', "protocol": "x", "a2a.method": 'y"', "duration": 1}
    assert SCAN.scan(line) is None
