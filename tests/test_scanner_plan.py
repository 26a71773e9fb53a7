"""The scanner's plan (one compiled pattern widened from accepted lines) reads exactly what the
general path reads: on real corpora of every wrapper format and on the edge cases of its rules."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gwlog.grammar import load
from gwlog.reference import ReferenceParser
from gwlog.scanner import Scanner
from gwlog.unwrap import Unwrapper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import corpus  # noqa: E402

G = load()
HEAD = "2026-08-20T09:00:00.5Z\tinfo\trequest "
ADVERSARIAL = Path(__file__).with_name("adversarial_corpus.jsonl")


def planned(scanner: Scanner, line: str) -> bool:
    return scanner._plan is not None and scanner._plan.regex.fullmatch(line) is not None


def texts(path: Path) -> list[str]:
    unwrap = Unwrapper()
    out = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        u = unwrap.feed(raw)
        if u is not None:
            out.append(u.text)
    return out


@pytest.mark.parametrize("fmt", corpus.FORMATS)
def test_plan_reads_every_corpus_line_as_the_general_path(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"c.{fmt}.log"
    corpus.main(["--lines", "3000", "--format", fmt, "--out", str(path), "--seed", "11"])
    scanner = Scanner(G)
    lines = texts(path)
    hits = 0
    for line in lines:
        hits += planned(scanner, line)
        got = scanner.scan(line)
        assert got == scanner._scan(line), line[:200]
        assert got is None or list(got.fields) == list(scanner._scan(line).fields)  # type: ignore[union-attr]
    if fmt != "json":  # JSON-mode lines are not text lines: never the scanner's
        assert hits > 0.8 * len(lines)  # the plan carries the stream once its keys are seen


def test_samples_read_the_same_with_and_without_the_plan() -> None:
    for path in sorted((ROOT / "samples").glob("*.log")):
        scanner = Scanner(G)
        for line in texts(path):
            assert scanner.scan(line) == scanner._scan(line), (path.name, line[:200])


def learned(*lines: str) -> Scanner:
    scanner = Scanner(G)
    for line in lines:
        assert scanner.scan(line) is not None, line
    return scanner


def test_a_line_with_a_subset_of_the_seen_keys_takes_the_plan() -> None:
    scanner = learned(
        HEAD + 'http.status=200 gen_ai.provider.name=openai gen_ai.usage.input_tokens=5 duration=3ms user.email="a@x"',
        HEAD + 'gen_ai.request.model=gpt-4o gen_ai.usage.output_tokens=7 duration=3ms chat.id="c1"',
    )
    line = HEAD + 'http.status=500 gen_ai.request.model=o3 duration=12ms user.email="b@x" chat.id="c2"'
    assert planned(scanner, line)
    parsed = scanner.scan(line)
    assert parsed is not None
    assert parsed.fields == {
        "http.status": 500, "gen_ai.request.model": "o3", "duration": 12, "user.email": "b@x", "chat.id": "c2",
    }  # fmt: skip
    assert list(parsed.fields) == ["http.status", "gen_ai.request.model", "duration", "user.email", "chat.id"]


def test_a_second_duration_inside_a_custom_value_is_declined_by_the_plan_too() -> None:
    scanner = learned(HEAD + 'http.status=200 duration=3ms user.email="a@x"')
    line = HEAD + 'http.status=200 duration=3ms user.email="a duration=9ms"'
    assert planned(scanner, line)
    assert scanner.scan(line) is None
    assert scanner._scan(line) is None


def test_custom_keys_in_another_order_take_the_general_path() -> None:
    scanner = learned(HEAD + 'http.status=200 duration=3ms user.email="a@x" user.role="admin"')
    line = HEAD + 'http.status=200 duration=3ms user.role="user" user.email="b@x"'
    assert not planned(scanner, line)
    parsed = scanner.scan(line)
    assert parsed is not None
    assert list(parsed.fields) == ["http.status", "duration", "user.role", "user.email"]
    assert scanner._plan is not None
    assert scanner._plan.keys[-2:] == ("user.email", "user.role")  # the first order seen stays


def test_new_custom_keys_are_merged_in_the_order_of_their_line() -> None:
    scanner = learned(
        HEAD + 'http.status=200 duration=3ms user.email="a@x" user.role="admin"',
        HEAD + 'http.status=200 duration=3ms user.email="a@x" user.name="A" user.role="admin" chat.id="c"',
    )
    assert scanner._plan is not None
    assert scanner._plan.keys[-4:] == ("user.email", "user.name", "user.role", "chat.id")


def test_raw_values_with_spaces_and_forged_keys_stay_with_the_general_path() -> None:
    scanner = learned(HEAD + "gen_ai.request.model=gpt-4o gen_ai.usage.input_tokens=5 duration=3ms")
    forged = HEAD + "gen_ai.request.model=x gen_ai.usage.input_tokens=999 gen_ai.usage.input_tokens=5 duration=3ms"
    spaced = HEAD + "gen_ai.request.model=llama 3 70b gen_ai.usage.input_tokens=5 duration=3ms"
    for line in (forged, spaced):
        assert not planned(scanner, line)
        assert scanner.scan(line) == scanner._scan(line)
    parsed = scanner.scan(spaced)
    assert parsed is not None and parsed.fields["gen_ai.request.model"] == "llama 3 70b"


def test_typed_values_are_checked_by_the_plan() -> None:
    scanner = learned(
        HEAD + "http.status=200 agw.ai.time_to_first_token=0.5 agw.ai.usage.cost.total=0.001 duration=3ms"
    )
    for bad in ("http.status=2x0", "agw.ai.time_to_first_token=1e5", "agw.ai.usage.cost.total=inf"):
        line = HEAD + f"{bad} duration=3ms"
        assert not planned(scanner, line)
        assert scanner.scan(line) == scanner._scan(line) == ReferenceParser(G).parse(line) or scanner.scan(line) is None


def test_an_empty_body_after_a_tab_is_not_read_by_the_plan() -> None:
    scanner = learned(HEAD + 'http.status=200 duration=3ms user.email="a@x"')
    tab = "2026-08-20T09:00:00.5Z\tinfo\trequest\tduration=3ms"
    assert scanner.scan(tab) == scanner._scan(tab)
    space = "2026-08-20T09:00:00.5Z\tinfo\trequest duration=3ms"
    assert planned(scanner, space)
    assert scanner.scan(space) == scanner._scan(space)


def test_hostile_corpus_reads_the_same_through_a_plan_that_knows_every_key() -> None:
    """A plan warmed with every built-in key and the usual custom keys never reads a hostile line
    (forged keys inside client values, second durations, injected types) differently."""
    every = " ".join(
        f"{s.key}={'1' if s.values[-1] in ('INT', 'F64', 'DECIMAL') else 'x'}"
        if s.values[-1] != "QUOTED"
        else f'{s.key}="x"'
        for s in G.keys[:-1]
    )
    custom = ' user.email="a@x" user.id="1" user.name="A" user.role="user" chat.id="c" x-openwebui-user-email="a@x"'
    scanner = learned(HEAD + every + " duration=1ms" + custom)
    assert scanner._plan is not None and len(scanner._plan.keys) == len(G.keys) + 6
    reference = ReferenceParser(G)
    cases = [json.loads(row) for row in ADVERSARIAL.read_text().splitlines()]
    lines = [line for case in cases for line in case["lines"]]
    assert len(lines) > 100
    for line in lines:
        text = Unwrapper().feed(line)
        if text is None:
            continue
        got = scanner.scan(text.text)
        assert got == scanner._scan(text.text), text.text[:200]
        if got is not None:
            assert got == reference.parse(text.text), text.text[:200]
