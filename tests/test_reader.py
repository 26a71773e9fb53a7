"""LineReader: injection (format doc §10), garbage that must never raise, JSON mode, outcomes."""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal

import pytest

from gwlog.events import Identity
from gwlog.reader import LineReader, Outcome, Reading

HEAD = "2026-08-20T09:16:41.203377Z\tinfo\trequest "
PRE = (
    "gateway=default/default listener=llm route=default/openai endpoint=api.openai.com:443 "
    "src.addr=172.18.0.7:38810 http.method=POST http.host=agentgateway:4000 "
    "http.path=/v1/chat/completions http.version=HTTP/1.1 http.status=200 "
)


def read(line: str) -> Reading:
    return LineReader().read(line)


def fields(line: str) -> dict[str, object]:
    reading = read(line)
    assert reading.outcome is Outcome.PARSED, reading.reason
    assert reading.event is not None
    return reading.event.fields


@pytest.mark.parametrize(
    "model",
    [
        'gpt-4o user.email="ceo@corp"',
        "gpt-4o http.status=500",
        'gpt-4o duration=1ms user.email="ceo@corp"',
        'gpt-4o gen_ai.provider.name=free duration=1ms user.email="ceo@corp" x=1',
        "gpt-4o gen_ai.request.model=other",  # a tie in field count: the shorter raw value wins
        "",
    ],
)
def test_forgery_inside_the_model_stays_in_the_model(model: str) -> None:
    line = (
        HEAD + PRE + "protocol=llm gen_ai.provider.name=openai gen_ai.request.model=" + model
        + " gen_ai.usage.input_tokens=311 duration=1733ms user.email=\"alice@example.com\""
    )  # fmt: skip
    f = fields(line)
    assert f["gen_ai.request.model"] == model
    assert f["user.email"] == "alice@example.com"
    assert f["http.status"] == 200
    assert f["gen_ai.provider.name"] == "openai"
    assert f["duration"] == 1733


@pytest.mark.parametrize(
    "sub",
    ["John Doe (ops=admin)", 'bob user.email="ceo@corp"', "bob http.status=200", "bob duration=1ms x=1"],
)
def test_forgery_inside_jwt_sub(sub: str) -> None:
    line = HEAD + PRE.replace(" http.status=200 ", " http.status=429 ") + f"jwt.sub={sub} protocol=llm duration=3ms"
    f = fields(line)
    assert f["jwt.sub"] == sub
    assert (f["http.status"], f["protocol"], f["duration"]) == (429, "llm", 3)
    assert "user.email" not in f


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("mcp.target", 'everything user.email="ceo@corp"'),
        ("mcp.resource.uri", "file:///My Report.md http.status=200"),
        ("gen_ai.tool.name", 'echo duration=1ms user.email="ceo@corp"'),
        ("mcp.session.id", "6b49 mcp.target=x"),
    ],
)
def test_forgery_inside_mcp_values(key: str, value: str) -> None:
    mcp = {
        "mcp.method.name": "tools/call",
        "mcp.target": "everything",
        "mcp.resource.type": "tool",
        "mcp.resource.uri": "file:///a",
        "gen_ai.tool.name": "echo",
        "mcp.session.id": "6b497ee9",
    }
    mcp[key] = value
    line = (
        HEAD + PRE + "protocol=mcp " + " ".join(f"{k}={v}" for k, v in mcp.items())
        + ' duration=7ms user.email="alice@example.com"'
    )  # fmt: skip
    f = fields(line)
    assert {k: f[k] for k in mcp} == mcp
    assert f["user.email"] == "alice@example.com"
    assert f["http.status"] == 200


def test_scanner_declines_forged_lines_and_reference_reads_them() -> None:
    line = HEAD + PRE + 'protocol=llm gen_ai.request.model=gpt-4o http.status=500 duration=1ms u="x"'
    reading = read(line)
    assert reading.parser == "reference"
    assert reading.event is not None and reading.event.status == 200


def test_quoted_custom_value_cannot_open_a_field() -> None:
    f = fields(HEAD + PRE + r'duration=2ms note="a \" user.email=\"ceo@corp\"" user.email="alice@example.com"')
    assert f["note"] == 'a " user.email="ceo@corp"'
    assert f["user.email"] == "alice@example.com"


@pytest.mark.parametrize(
    ("line", "outcome", "reason_part"),
    [
        ("", Outcome.SKIPPED, "empty line"),
        ("\x00" * 100, Outcome.SKIPPED, "NUL"),
        ("\x00\x01\x02\xff\xfe garbage", Outcome.SKIPPED, "NUL"),
        (HEAD + PRE + "protocol=llm gen_ai.request.model=gpt", Outcome.MALFORMED, "duration"),  # truncated
        (HEAD + PRE[:40], Outcome.MALFORMED, "duration"),
        (HEAD + "gateway=a duration=12", Outcome.MALFORMED, "DURATION"),
        (HEAD + "http.status=abc duration=1ms", Outcome.MALFORMED, "no reading"),
        (HEAD + 'duration=1ms x=unquoted', Outcome.MALFORMED, "not typed"),
        (HEAD + "duration=1ms x=" + "[" * 10_000, Outcome.MALFORMED, "nested"),
        ("2026-08-20T09:16:41.203377Z\twarn\trequest\tfailed to enqueue\terr=Full(..)", Outcome.SKIPPED,
         "tracing event (warn request: message, not key=value)"),
        ("2026-13-45T09:16:41.2Z\tinfo\trequest gateway=a duration=1ms", Outcome.MALFORMED, "timestamp"),
        ('{"level":"info","scope":"request","duration":"1ms"', Outcome.MALFORMED, "does not decode"),
        ('{"level":"warn","time":"2026-08-20T09:16:41.2Z","scope":"request"}', Outcome.SKIPPED, "level=warn"),
        ('{"level":"info","scope":"request","message":"hi"}', Outcome.SKIPPED, "has a message"),
        ("[1, 2]", Outcome.SKIPPED, "without timestamp"),
        ('{"a": 1}', Outcome.SKIPPED, "not a gateway log line"),
    ],
)  # fmt: skip
def test_outcomes_and_reasons(line: str, outcome: Outcome, reason_part: str) -> None:
    reading = read(line)
    assert reading.outcome is outcome
    assert reading.reason is not None and reason_part in reading.reason and "\n" not in reading.reason


def test_megabyte_lines_never_raise_and_stay_bounded() -> None:
    reader = LineReader()
    big_custom = HEAD + PRE + 'duration=9ms blob="' + "A" * 2_000_000 + '"'
    hostile = HEAD + "gen_ai.request.model=" + "x gen_ai.response.model=y duration=1ms u=1 " * 20_000 + "duration=5ms"
    for line, outcome in [
        (big_custom, Outcome.PARSED),
        (hostile, Outcome.MALFORMED),
        ("x" * 3_000_000, Outcome.SKIPPED),
    ]:
        start = time.perf_counter()
        reading = reader.read(line)
        assert reading.outcome is outcome, reading.reason
        assert time.perf_counter() - start < 10
    assert reader.read(big_custom).event is not None


def test_replacement_character_keeps_the_event() -> None:
    reading = read(HEAD + PRE + "protocol=llm gen_ai.request.model=gpt-4o\ufffd duration=5ms")
    assert reading.outcome is Outcome.INVALID_UTF8
    assert reading.event is not None and reading.event.request_model == "gpt-4o\ufffd"
    garbage = read("\ufffd\ufffd binary")
    assert garbage.outcome is Outcome.INVALID_UTF8 and garbage.event is None
    assert garbage.reason is not None and "skipped" in garbage.reason


def test_lone_surrogate_becomes_a_replacement_character() -> None:
    reading = read(HEAD + PRE + 'duration=5ms user.email="al\ud800ice"')
    assert reading.outcome is Outcome.INVALID_UTF8
    assert reading.event is not None and reading.event.fields["user.email"] == "al\ufffdice"


def test_json_mode_types_and_duplicates() -> None:
    line = (
        '{"level":"info","time":"2026-08-20T09:14:03.48213Z","scope":"request","http.status":429,'
        '"gen_ai.usage.input_tokens":12,"agw.ai.time_to_first_token":1,"agw.ai.usage.cost.total":"0.000393",'
        '"duration":"2603ms","obj":{"a":[1,null]},"level":"warn","http.status":200}'
    )
    reading = read(line)
    assert (reading.outcome, reading.parser) == (Outcome.PARSED, "json")
    assert reading.event is not None
    f = reading.event.fields
    assert f == {
        "http.status": 429,
        "gen_ai.usage.input_tokens": 12,
        "agw.ai.time_to_first_token": 1.0,
        "agw.ai.usage.cost.total": Decimal("0.000393"),
        "duration": 2603,
        "obj": {"a": [1, None]},
    }
    assert reading.event.ts.microsecond == 48213


@pytest.mark.parametrize(
    ("bad", "reason"),
    [('"http.status":"200"', "expected a number"), ('"duration":2603', "expected duration text"),
     ('"gen_ai.request.model":5', "expected a string"), ('"agw.ai.usage.cost.total":"abc"', "decimal")],
)  # fmt: skip
def test_json_mode_wrong_types_are_malformed(bad: str, reason: str) -> None:
    reading = read('{"level":"info","time":"2026-08-20T09:14:03.4Z","scope":"request",' + bad + "}")
    assert reading.outcome is Outcome.MALFORMED and reading.reason is not None and reason in reading.reason


def test_identity_is_applied() -> None:
    seen = []

    def resolve(f: dict[str, object], ts: datetime) -> Identity:
        seen.append((f, ts))
        return Identity(user=str(f.get("user.email")), team="t")

    reading = LineReader(resolve).read(HEAD + PRE + 'duration=1ms user.email="alice@example.com"')
    assert reading.event is not None
    assert (reading.event.user, reading.event.team) == ("alice@example.com", "t")
    assert seen and seen[0][0]["user.email"] == "alice@example.com"
    assert seen[0][1] == reading.event.ts  # the line's own time: JWT expiry is checked against it


def test_partials_are_held_and_flushed() -> None:
    reader = LineReader()
    first = reader.read("2026-09-05T13:33:11.066276208Z stdout P " + HEAD + "gateway=a")
    assert first.outcome is Outcome.HELD and reader.holding
    (flushed,) = reader.flush()
    assert flushed.outcome is Outcome.MALFORMED and "unterminated" in flushed.layers
    assert not reader.holding
