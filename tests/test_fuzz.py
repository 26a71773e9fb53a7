"""Fuzzing the reader and its wrapper layers (through ``LineReader``, which includes unwrap).

Properties, for any input line:
* no exception escapes ``read`` or ``flush``;
* the outcome is an ``Outcome``; a reading that is not ``parsed`` carries a one-line reason;
* a parsed event can be archived (``orjson.dumps(event.to_record())``);
* a known good line read right after it (same reader) is parsed with its exact fields;
* time per line is bounded (a 1 MB hostile line reads in < 2 s: no catastrophic backtracking).

Bounded for CI (the whole file well under 60 s on 2 cores). ``pytest --slow`` (or ``GWLOG_FUZZ_SCALE=N``)
multiplies the example counts and runs the ``slow`` variants.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gwlog.identity import IdentityResolver
from gwlog.reader import LineReader, Outcome, Reading
from tests.adversarial_corpus import LLM, fields_of, render

SLOW = "--slow" in sys.argv or os.environ.get("GWLOG_SLOW") == "1"
SCALE = int(os.environ.get("GWLOG_FUZZ_SCALE", "10" if SLOW else "1"))
EXAMPLES_FILE = Path(__file__).parent / "data" / "agentgateway-log-examples.jsonl"
EXAMPLES = [json.loads(line) for line in EXAMPLES_FILE.read_text().splitlines()]
SAMPLE_LINES = [ln for ex in EXAMPLES for ln in ex["line"].split("\n") if ln]
GOOD = render(LLM)
GOOD_FIELDS = fields_of(LLM)
BIG_LINE_SECONDS = 2.0


def fuzz_settings(n: int) -> settings:
    return settings(
        max_examples=n * SCALE,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=not SLOW,  # CI: reproducible; --slow explores new inputs every run
        database=None,
    )


def new_reader() -> LineReader:
    return LineReader(IdentityResolver.default().resolve)


def check_reading(reading: Reading, line: str) -> None:
    assert isinstance(reading.outcome, Outcome), reading
    if reading.outcome is not Outcome.PARSED:
        assert reading.reason, f"no reason for {reading.outcome} on {line[:120]!r}"
        assert "\n" not in reading.reason and "\r" not in reading.reason, reading.reason[:200]
        assert len(reading.reason) < 2000, "reason should quote the line, not carry it"
    if reading.outcome is Outcome.PARSED:
        assert reading.event is not None
    if reading.event is not None:
        orjson.dumps(reading.event.to_record())  # the archive's encoder must accept every event


def read_checked(reader: LineReader, line: str, budget: float = BIG_LINE_SECONDS) -> Reading:
    t0 = time.perf_counter()
    reading = reader.read(line)
    elapsed = time.perf_counter() - t0
    assert elapsed < budget, f"{elapsed:.2f}s for a {len(line)}-char line {line[:80]!r}"
    check_reading(reading, line)
    return reading


def assert_good_after(reader: LineReader, context: str) -> None:
    reading = read_checked(reader, GOOD)
    assert reading.outcome is Outcome.PARSED, f"good line after {context[:120]!r}: {reading.outcome} {reading.reason}"
    assert reading.event is not None and reading.event.fields == GOOD_FIELDS
    assert reading.event.user == "alice@example.com"


def fuzz_one(line: str) -> None:
    reader = new_reader()
    read_checked(reader, line)
    assert_good_after(reader, line)
    for r in reader.flush():
        check_reading(r, line)


# ---- strategies -------------------------------------------------------------------------------

MUTATIONS = ("flip", "insert", "delete", "truncate", "dup_key", "dup_span", "swap")
INTERESTING = [
    "=",
    " ",
    "\t",
    '"',
    "\\",
    "{",
    "}",
    "[",
    "]",
    "\x00",
    "\x1b[31m",
    "\r",
    "\ufffd",
    " duration=1ms",
    ' user.email="x"',
    " http.status=200",
    "()",
    "\u200b",
    "|",
    "Z\t",
]


@st.composite
def mutated_lines(draw: st.DrawFn) -> str:
    line = draw(st.sampled_from([*SAMPLE_LINES, GOOD]))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(MUTATIONS))
        n = len(line)
        i = draw(st.integers(0, max(n - 1, 0)))
        if kind == "flip" and n:
            line = line[:i] + chr(ord(line[i]) ^ (1 << draw(st.integers(0, 7)))) + line[i + 1 :]
        elif kind == "insert":
            ins = draw(st.one_of(st.sampled_from(INTERESTING), st.text(max_size=8)))
            line = line[:i] + ins + line[i:]
        elif kind == "delete" and n:
            line = line[:i] + line[i + draw(st.integers(1, 12)) :]
        elif kind == "truncate":
            line = line[:i]
        elif kind == "dup_key":
            keys = [tok.split("=", 1)[0] for tok in line.split(" ") if "=" in tok]
            if keys:
                key = draw(st.sampled_from(keys))
                value = draw(st.sampled_from(["1", "x", '"y"', "", "1ms"]))
                line = line[:i] + f" {key}={value}" + line[i:]
        elif kind == "dup_span" and n:
            j = draw(st.integers(i, min(n, i + 200)))
            line = line[:j] + line[i:j] + line[j:]
        elif kind == "swap" and n > 2:
            j = draw(st.integers(0, n - 1))
            a, b = sorted((i, j))
            line = line[:a] + line[b:] + line[a:b]
    return line


def decoded(data: bytes) -> str:
    """As the pipeline does: bytes → str with replacement characters, one physical line."""
    return data.decode("utf-8", "replace").split("\n", 1)[0]


# ---- properties ---------------------------------------------------------------------------------


@fuzz_settings(300)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data: bytes) -> None:
    fuzz_one(decoded(data))


@fuzz_settings(200)
@given(st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\n"), max_size=500))
def test_arbitrary_text(text: str) -> None:
    """Any str the pipeline can produce (bytes decoded with replacement: no lone surrogates)."""
    fuzz_one(text)


@fuzz_settings(400)
@given(mutated_lines())
def test_mutated_real_lines(line: str) -> None:
    fuzz_one(line)


@fuzz_settings(150)
@given(st.lists(mutated_lines(), min_size=1, max_size=8))
def test_good_lines_counted_between_bad_ones(bad: list[str]) -> None:
    """good, bad…, good on ONE reader: both good lines parsed exactly."""
    reader = new_reader()
    assert_good_after(reader, "start")
    for line in bad:
        read_checked(reader, line)
    assert_good_after(reader, " | ".join(bad))


@fuzz_settings(150)
@given(
    prefix=st.sampled_from(["", "agentgateway-1  | ", "\x1b[36magentgateway-1  | \x1b[0m", "[pod/p/c] ",
                            "2026-09-05T13:31:49.824825504Z ", "agentgateway_1 | "]),
    body=mutated_lines(),
    ansi=st.lists(st.sampled_from(["\x1b[0m", "\x1b[1;31m", "\x1b[", "\x1b]0;t\x07", "\x1b[2J"]), max_size=3),
)  # fmt: skip
def test_wrapped_mutations_and_ansi(prefix: str, body: str, ansi: list[str]) -> None:
    fuzz_one(prefix + "".join(ansi) + body)


@fuzz_settings(200)
@given(
    log=st.one_of(mutated_lines(), st.text(max_size=300)),
    stream=st.sampled_from(["stdout", "stderr", "", None, 1]),
    nl=st.booleans(),
    garbage=st.sampled_from(["", ',"attrs":{"a":1}', ',"log":1', ',"time":null', "}", ',"x":[', "garbage"]),
)
def test_json_file_envelopes_with_garbage(log: str, stream: object, nl: bool, garbage: str) -> None:
    env = json.dumps({"log": log + ("\n" if nl else ""), "stream": stream, "time": "2026-08-20T09:16:41.2Z"})
    fuzz_one(env[:-1] + garbage + "}" if garbage else env)


@fuzz_settings(100)
@given(st.lists(st.tuples(st.sampled_from(["stdout", "stderr"]), st.sampled_from(["P", "F", "X"]),
                          st.text(max_size=200)), max_size=20))  # fmt: skip
def test_cri_records_interleaved(records: list[tuple[str, str, str]]) -> None:
    reader = new_reader()
    for stream, tag, content in records:
        read_checked(reader, f"2026-09-05T13:33:11.066276208Z {stream} {tag} {content}")
    assert_good_after(reader, "cri records")
    for r in reader.flush():
        check_reading(r, "flush")


# ---- hostile shapes, big lines ---------------------------------------------------------------------

HEAD = GOOD.split(" gen_ai.request.model=")[0] + " gen_ai.request.model="
TAIL = " gen_ai.usage.input_tokens=311 duration=1733ms"
MB = 1 << 20


def _fill(unit: str, size: int = MB) -> str:
    return unit * (size // len(unit) + 1)


HOSTILE: dict[str, str] = {
    "spaces": HEAD + _fill(" ") + TAIL,
    "equals": HEAD + _fill("=") + TAIL,
    "forged_status": HEAD + _fill(" http.status=200") + TAIL,
    "forged_provider": HEAD + _fill(" gen_ai.provider.name=x") + TAIL,
    "forged_response_model": HEAD + _fill(" gen_ai.response.model=x") + TAIL,
    "forged_tokens": HEAD + _fill(" gen_ai.usage.input_tokens=1") + TAIL,
    "forged_duration": HEAD + _fill(" duration=1ms") + TAIL,
    "forged_duration_custom": HEAD + _fill(' duration=1ms u="x"') + TAIL,
    "forged_error": HEAD + _fill(' error="x" reason=X') + TAIL,
    "all_keys_raw": HEAD + _fill(" jwt.sub=a mcp.target=b a2a.method=c gen_ai.tool.name=d") + TAIL,
    "custom_many": GOOD + _fill(' k="v"'),
    "custom_many_ints": GOOD + _fill(" k=1"),
    "custom_unterminated_string": GOOD + ' k="' + _fill("a\\"),
    "custom_escapes": GOOD + ' k="' + _fill('\\u{1b}\\"') + '"',
    "custom_unbalanced_open": GOOD + " obj=" + _fill("{"),
    "custom_unbalanced_brackets": GOOD + " arr=" + _fill('["a", {"b": '),
    "custom_close_only": GOOD + " obj=" + _fill("}]"),
    "custom_string_of_duration": GOOD + ' k="' + _fill(" duration=1ms") + '"',
    "custom_tail_duration_pairs": GOOD + _fill(' duration=1ms user.email="x"'),
    "no_duration": HEAD + _fill("a b=c "),
    "nul": HEAD + _fill("\x00") + TAIL,
    "ansi": HEAD + _fill("\x1b[31m") + TAIL,
    "json_deep": '{"level":"info","time":"2026-08-20T09:16:41.2Z","scope":"request","x":' + "[" * 100_000,
    "json_big": '{"level":"info","time":"2026-08-20T09:16:41.2Z","scope":"request","duration":"1ms","x":"'
    + _fill("a")
    + '"}',
    "json_file_big": json.dumps({"log": GOOD + ' k="' + _fill('\\"') + '"\n', "stream": "stdout", "time": "x"}),
    "compose_prefix_repeat": _fill("agentgateway-1  | ") + GOOD,
    "timestamps_repeat": _fill("2026-09-05T13:31:49.824825504Z ") + GOOD,
}


def _nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


HOSTILE["custom_deep_object_10k"] = GOOD + " obj=" + _nested(10_000)
HOSTILE["custom_deep_array_10k"] = GOOD + " arr=" + "[" * 10_000 + "]" * 10_000
HOSTILE["custom_deep_unbalanced_10k"] = GOOD + " obj=" + '{"a": ' * 10_000 + "1" + "}" * 9_999
HOSTILE["custom_deep_then_real"] = GOOD + " obj=" + _nested(10_000) + ' user.name="Bob"'


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_line_bounded_time(name: str) -> None:
    """Each ~1 MB (or 10k-deep) hostile line reads in < 2 s, never raises, and a good line follows."""
    fuzz_one(HOSTILE[name])


def test_deep_nesting_is_one_field_or_malformed() -> None:
    """A 10k-deep custom object is read (typed, exactly) or reported malformed; never a RecursionError."""
    reader = new_reader()
    reading = read_checked(reader, HOSTILE["custom_deep_then_real"])
    if reading.outcome is Outcome.PARSED:
        assert reading.event is not None
        assert reading.event.fields["user.name"] == "Bob"
        assert reading.event.user == "alice@example.com"
        depth, node = 0, reading.event.fields["obj"]
        while isinstance(node, dict):
            node, depth = node["a"], depth + 1
        assert (depth, node) == (10_000, 1)


def test_cri_partial_never_terminated_is_bounded() -> None:
    """64 MiB of CRI ``P`` chunks with no ``F``: memory stays bounded (the join cap), other streams
    and bare lines keep parsing, and ``flush`` reports the partial instead of dropping it silently."""
    reader = new_reader()
    chunk = "2026-09-05T13:33:11.066276208Z stdout P " + "A" * 16384
    n = 4096 * (2 if SLOW else 1)
    t0 = time.perf_counter()
    for i in range(n):
        reading = reader.read(chunk)
        assert reading.outcome is Outcome.HELD, reading
        if i % 1024 == 0:
            assert_good_after(reader, "CRI P flood")
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5 * n / 1000 + 5, f"{elapsed:.1f}s for {n} partial chunks"
    held = reader._unwrap._held if hasattr(reader, "_unwrap") else None
    if held:
        assert sum(h.size for h in held.values()) <= 9 * MB
    flushed = reader.flush()
    assert flushed, "an unterminated partial must become a reading at end of stream"
    for r in flushed:
        check_reading(r, "flush")
        assert r.outcome is not Outcome.PARSED or r.event is not None


def test_json_file_partial_never_terminated_is_bounded() -> None:
    reader = new_reader()
    env = json.dumps({"log": "x" * 16384, "stream": "stdout", "time": "2026-08-20T09:16:41.2Z"})
    for _ in range(1024 * (4 if SLOW else 1)):
        assert reader.read(env).outcome is Outcome.HELD
    assert_good_after(reader, "json-file flood")
    for r in reader.flush():
        check_reading(r, "flush")


def test_lone_surrogate_from_json_file_is_archivable() -> None:
    """docker may have written an escaped lone surrogate; the event must still reach the archive."""
    env = (
        '{"log":"' + GOOD.replace("\t", "\\t").replace('"', '\\"').replace("alice@", "al\\ud800ice@")
        + '\\n","stream":"stdout","time":"2026-08-20T09:16:41.2Z"}'
    )  # fmt: skip
    reader = new_reader()
    reading = read_checked(reader, env)
    assert reading.outcome in (Outcome.PARSED, Outcome.INVALID_UTF8, Outcome.MALFORMED)


@pytest.mark.slow
@pytest.mark.parametrize("mb", [8, 32])
def test_huge_lines_slow(mb: int) -> None:
    """Multi-MB lines of the worst shapes: time grows linearly (< 2 s per MB)."""
    for unit in (" http.status=200", ' duration=1ms u="x"', " x"):
        line = HEAD + unit * (mb * MB // len(unit)) + TAIL
        reader = new_reader()
        read_checked(reader, line, budget=BIG_LINE_SECONDS * mb)
        assert_good_after(reader, unit)


@pytest.mark.parametrize("ctrl", ["\r", "\x1b[2J", "\x00", "\x0b", "\x85", "\u2028"])
def test_reason_is_one_line_for_control_chars(ctrl: str) -> None:
    """Found by the --slow fuzz run: a reason quoting a line must not carry its CR (or other
    line-breaking/terminal control characters) into logs and `gwlog explain` output."""
    line = f"2026-03-02T17:48:28.726670Z\twarn\tdownstream connection{ctrl}failed to terminate TLS\tsrc.addr=1:2"
    reading = new_reader().read(line)
    assert reading.outcome is Outcome.SKIPPED
    assert reading.reason is not None
    assert not any(c in reading.reason for c in "\r\n\x1b\x00\x0b\x85\u2028"), repr(reading.reason)
