"""Hostile input: every case of tests/adversarial_corpus.py gives EXACTLY the reading the format doc
requires (identity, status, provider, models, tokens, duration and, where stated, every field).

The expectations come from the format doc's rules (§4 order, §9.4 tokenisation, §10 security
notes), not from the implementation. ``residual`` cases are the §10 limits, asserted as the format
dictates and listed in docs/reliability.md.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gwlog.identity import IdentityResolver
from gwlog.reader import LineReader, Outcome, Reading
from tests.adversarial_corpus import LLM, all_cases, p, q, render, replace

CASES = all_cases()


def read_all(lines: list[str]) -> list[Reading]:
    reader = LineReader(IdentityResolver.default().resolve)
    return [reader.read(line) for line in lines]


def describe(reading: Reading) -> str:
    ev = reading.event
    if ev is None:
        return f"{reading.outcome.value}: {reading.reason}"
    return f"{reading.outcome.value} parser={reading.parser} fields={ev.fields!r}"


def check(reading: Reading, want: dict[str, Any], cid: str) -> None:
    assert reading.outcome.value == want["outcome"], f"{cid}: got {describe(reading)}"
    if want["outcome"] != "parsed":
        assert reading.event is None, cid
        assert reading.reason and "\n" not in reading.reason, f"{cid}: reason must be one line: {reading.reason!r}"
        return
    ev = reading.event
    assert ev is not None, cid
    for attr, value in want["event"].items():
        got = ev.ts.isoformat() if attr == "ts" else getattr(ev, attr)
        assert got == value, f"{cid}: {attr}: want {value!r}, got {got!r}  ({describe(reading)})"
    if "fields" in want:
        assert ev.fields == want["fields"], f"{cid}: fields differ"
    for key, value in want.get("fields_subset", {}).items():
        assert ev.fields.get(key) == value, f"{cid}: fields[{key!r}]: want {value!r}, got {ev.fields.get(key)!r}"


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_adversarial_case(case: dict[str, Any]) -> None:
    readings = read_all(case["lines"])
    assert len(readings) == len(case["expect"])
    for reading, want in zip(readings, case["expect"], strict=True):
        check(reading, want, case["id"])


def test_no_forgery_changes_identity_or_counts() -> None:
    """Across the whole forgery matrix, the user is always the real header's (alice) and the forged
    status/tokens/provider appear only in the §10 residual cases."""
    for case in CASES:
        if not case["id"].startswith("forge-"):
            continue
        (reading,) = read_all(case["lines"])
        assert reading.outcome is Outcome.PARSED, f"{case['id']}: {describe(reading)}"
        ev = reading.event
        assert ev is not None
        assert ev.user == "alice@example.com", case["id"]
        assert ev.user_email == "alice@example.com", case["id"]
        if not case["residual"]:
            assert ev.provider != "free", case["id"]
            assert ev.status != 200 or case["expect"][0]["event"]["status"] == 200, case["id"]
            assert ev.input_tokens != 0, case["id"]


def test_corpus_jsonl_is_current() -> None:
    """tests/adversarial_corpus.jsonl (for non-Python tools) is the rendering of the Python corpus."""
    path = Path(__file__).with_name("adversarial_corpus.jsonl")
    stored = [json.loads(line) for line in path.read_text().splitlines()]
    assert stored == json.loads(json.dumps(CASES)), "regenerate: python tests/adversarial_corpus.py > ...jsonl"


def test_good_lines_around_every_hostile_line_are_counted() -> None:
    """Interleave every hostile physical line with a known good line on ONE reader: every good line
    is parsed with its exact fields (no state leaks from the hostile line to the next)."""
    from tests.adversarial_corpus import fields_of

    good = render(LLM)
    reader = LineReader(IdentityResolver.default().resolve)
    for case in CASES:
        for line in case["lines"]:
            reader.read(line)
            r = reader.read(good)
            if r.outcome is Outcome.HELD:  # a hostile json-file/CRI partial holds its own stream only
                pytest.fail(f"{case['id']}: good line held after {line[:80]!r}")
            assert r.outcome is Outcome.PARSED, f"{case['id']}: {describe(r)}"
            assert r.event is not None and r.event.fields == fields_of(LLM), case["id"]


# ---- end to end through `gwlog parse` (pipeline + sinks), black box -----------------------------

GWLOG = [sys.executable, "-m", "gwlog"]


def parse_counts(tmp_path: Path, data: bytes) -> tuple[int, dict[str, float], dict[str, float]]:
    """Run `gwlog parse --archive` on data; return (exit code, requests by user, lines by outcome)."""
    out, archive = tmp_path / "final.prom", tmp_path / "events.jsonl"
    proc = subprocess.run(
        [*GWLOG, "parse", "--no-serve", "--metrics-out", str(out), "--archive", str(archive)],
        input=data, capture_output=True, timeout=60,
    )  # fmt: skip
    users: dict[str, float] = {}
    lines: dict[str, float] = {}
    text = out.read_text() if out.exists() else ""
    for row in text.splitlines():
        if row.startswith("gwlog_requests_total{"):
            user = re.search(r'user="([^"]*)"', row)
            key = user.group(1) if user else "?"
            users[key] = users.get(key, 0) + float(row.rsplit(" ", 1)[1])
        elif row.startswith("gwlog_lines_total{"):
            outcome = re.search(r'outcome="([^"]*)"', row)
            lines[outcome.group(1) if outcome else "?"] = float(row.rsplit(" ", 1)[1])
    return proc.returncode, users, lines


def test_e2e_replacement_char_in_model_is_still_counted(tmp_path: Path) -> None:
    """A client-chosen model name holding U+FFFD (valid UTF-8, EF BF BD) must not hide the request:
    the reader reports invalid_utf8 WITH an event, and that event must be counted."""
    line = render(replace(LLM, "gen_ai.request.model", p("gen_ai.request.model", "gpt-4o\ufffd")))
    code, users, lines = parse_counts(tmp_path, (line + "\n" + render(LLM) + "\n").encode())
    assert code == 0
    assert users == {"alice@example.com": 2.0}, (users, lines)


def test_e2e_lone_surrogate_in_json_file_does_not_crash(tmp_path: Path) -> None:
    """docker json-file may carry an escaped lone surrogate (`\\ud800`); gwlog must count the line
    and keep going (no crash loop on a poison line), with --archive enabled."""
    inner = render(replace(LLM, "user.email", q("user.email", "al\ud800ice@example.com")))
    env = json.dumps({"log": inner + "\n", "stream": "stdout", "time": "2026-08-20T09:16:41.2Z"})
    assert "\\ud800" in env
    code, users, lines = parse_counts(tmp_path, (env + "\n" + render(LLM) + "\n").encode())
    assert code == 0, "gwlog parse crashed on a lone surrogate"
    assert sum(users.values()) == 2.0 and users.get("alice@example.com") == 1.0, (users, lines)


def test_e2e_forgery_matrix_counts(tmp_path: Path) -> None:
    """All non-residual forgery lines through the real pipeline: every request is alice's, none is
    lost, and the line outcomes add up."""
    lines = [c["lines"][0] for c in CASES if c["id"].startswith("forge-") and not c["residual"]]
    code, users, outcomes = parse_counts(tmp_path, ("\n".join(lines) + "\n").encode())
    assert code == 0
    assert users == {"alice@example.com": float(len(lines))}, users
    assert outcomes.get("parsed") == len(lines), outcomes
