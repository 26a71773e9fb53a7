"""Wrapper layers: every W example of the format doc, partial joins, ANSI, CRLF and garbage."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gwlog import unwrap
from gwlog.unwrap import Unwrapped, Unwrapper

EXAMPLES = Path(__file__).parent / "data" / "agentgateway-log-examples.jsonl"

# The inner gateway line shared by W01–W09 (W06 is it, bare).
GW = (
    "2026-08-20T09:16:41.203377Z\tinfo\trequest gateway=default/default listener=llm route=default/openai "
    "endpoint=api.openai.com:443 src.addr=172.18.0.7:38810 http.method=POST http.host=agentgateway:4000 "
    "http.path=/v1/chat/completions http.version=HTTP/1.1 http.status=200 protocol=llm "
    "gen_ai.operation.name=chat gen_ai.provider.name=openai gen_ai.request.model=gpt-4o "
    "gen_ai.usage.input_tokens=311 gen_ai.usage.output_tokens=97 duration=1733ms "
    'user.email="alice@example.com"'
)
OWUI = 'INFO:     172.18.0.1:51234 - "GET /api/models HTTP/1.1" 200 OK'
W10_INNER = (
    '{"level":"info","time":"2026-08-20T09:16:41.203377Z","scope":"request","gateway":"default/default",'
    '"http.status":200,"duration":"1733ms","user.email":"alice@example.com"}'
)
W11_HEAD = (
    "2026-08-20T09:30:00.1Z\tinfo\trequest gateway=default/default listener=mcp route=default/mcp "
    "src.addr=127.0.0.1:61990 http.method=POST http.host=localhost http.path=/mcp http.version=HTTP/1.1 "
    "http.status=200 protocol=mcp mcp.method.name=tools/call duration=9ms "
    'tool_result={"content": [{"type": "text", "text": "AAAA<...rest of the first 16384 bytes elided...>'
)
W12_INNER = (
    "2026-09-05T13:29:20.3270Z\tinfo\trequest gateway=default/waypoint listener=proxy route=default/reviews "
    "endpoint=10.244.1.17:9080 src.addr=10.244.1.12:43210 http.method=GET "
    "http.host=reviews.default.svc.cluster.local http.path=/reviews/0 http.version=HTTP/1.1 http.status=200 "
    "protocol=http duration=3ms"
)
W13_HEAD = (
    "2026-09-05T13:33:11.66179Z\tinfo\trequest gateway=default/default listener=mcp route=default/mcp ... "
    'tool_args={"blob": "AAAA<...16 KiB...>'
)
W13_TIME = "2026-09-05T13:33:11.066276208Z"
W14_INNER = (
    "2026-09-05T13:31:49.824736Z\tinfo\trequest gateway=default/default listener=http route=default/httpbin "
    "endpoint=httpbin:80 src.addr=10.0.0.3:50400 http.method=GET http.host=localhost http.path=/get "
    "http.version=HTTP/1.1 http.status=200 protocol=http duration=1ms"
)
W15_INNER = (
    "2026-09-05T13:34:10.422787Z\tinfo\trequest gateway=agentgateway-system/agentgateway-proxy listener=http "
    "route=httpbin/httpbin endpoint=10.244.0.4:8080 src.addr=10.244.0.1:46886 http.method=GET "
    "http.host=www.example.com http.path=/get http.version=HTTP/1.1 http.status=200 "
    "protocol=http duration=0ms"
)


def _jf(log: str, time: str, stream: str = "stdout") -> str:
    """A docker json-file entry as moby writes it (ASCII-safe JSON, <>& as \\u00XX)."""
    enc = json.dumps(log).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'{{"log":{enc},"stream":"{stream}","time":"{time}"}}'


# Physical lines of each W example, exactly as in agentgateway-log-examples.jsonl.
W_LINES: dict[str, list[str]] = {
    "W01": ["agentgateway-1  | " + GW],
    "W02": ["agentgateway-1  | " + GW, "open-webui-1    | " + OWUI],
    "W03": ["agentgateway  | " + GW],
    "W04": ["agentgateway_1 | " + GW],
    "W05": ["agentgateway-1  | 2026-08-20T09:16:41.203391112Z " + GW],
    "W06": [GW],
    "W07": ["\x1b[36magentgateway-1  | \x1b[0m" + GW],
    "W08": ["agentgateway-1  | " + GW + "\r"],
    "W09": [_jf(GW + "\n", "2026-08-20T09:16:41.20339111Z")],
    "W10": [_jf(W10_INNER + "\n", "2026-08-20T09:16:41.203391112Z")],
    "W11": [
        _jf(W11_HEAD, "2026-08-20T09:30:00.000123Z"),
        _jf('AAAA"}]}\n', "2026-08-20T09:30:00.000124Z"),
    ],
    "W12": ["2026-09-05T13:29:20.003363962Z stdout F " + W12_INNER],
    "W13": [
        "2026-09-05T13:33:11.066276208Z stdout P " + W13_HEAD,
        '2026-09-05T13:33:11.066301114Z stdout F AAAA"} duration=4ms',
    ],
    "W14": ["2026-09-05T13:31:49.824825504Z " + W14_INNER],
    "W15": ["[pod/agentgateway-proxy-7d9c8b5f6-x2k4q/agentgateway] " + W15_INNER],
}

# Expected feed() results per physical line (None = held partial).
W_EXPECTED: dict[str, list[Unwrapped | None]] = {
    "W01": [Unwrapped(GW, ("compose-v2:agentgateway-1",))],
    "W02": [Unwrapped(GW, ("compose-v2:agentgateway-1",)), Unwrapped(OWUI, ("compose-v2:open-webui-1",))],
    "W03": [Unwrapped(GW, ("compose-v2:agentgateway",))],
    "W04": [Unwrapped(GW, ("compose-v1:agentgateway_1",))],
    "W05": [Unwrapped(GW, ("compose-v2:agentgateway-1", "timestamp"), "2026-08-20T09:16:41.203391112Z")],
    "W06": [Unwrapped(GW, ())],
    "W07": [Unwrapped(GW, ("compose-v2:agentgateway-1", "ansi"))],
    "W08": [Unwrapped(GW, ("compose-v2:agentgateway-1", "cr"))],
    "W09": [Unwrapped(GW, ("docker-json-file",), "2026-08-20T09:16:41.20339111Z")],
    "W10": [Unwrapped(W10_INNER, ("docker-json-file",), "2026-08-20T09:16:41.203391112Z")],
    "W11": [
        None,
        Unwrapped(W11_HEAD + 'AAAA"}]}', ("docker-json-file", "joined:2"), "2026-08-20T09:30:00.000123Z"),
    ],
    "W12": [Unwrapped(W12_INNER, ("cri:stdout",), "2026-09-05T13:29:20.003363962Z")],
    "W13": [
        None,
        Unwrapped(W13_HEAD + 'AAAA"} duration=4ms', ("cri:stdout", "joined:2"), "2026-09-05T13:33:11.066276208Z"),
    ],
    "W14": [Unwrapped(W14_INNER, ("timestamp",), "2026-09-05T13:31:49.824825504Z")],
    "W15": [Unwrapped(W15_INNER, ("kubectl-prefix:pod/agentgateway-proxy-7d9c8b5f6-x2k4q/agentgateway",))],
}


def _feed_all(lines: list[str]) -> list[Unwrapped | None]:
    u = Unwrapper()
    return [u.feed(line) for line in lines]


def test_w_lines_are_the_documented_bytes() -> None:
    """The literal W lines above are byte-identical to the shared example file."""
    doc = {}
    for raw in EXAMPLES.read_text(encoding="utf-8").splitlines():
        obj = json.loads(raw)
        if obj["id"].startswith("W"):
            doc[obj["id"]] = obj["line"].split("\n")
    assert doc == W_LINES


@pytest.mark.parametrize("wid", sorted(W_LINES))
def test_w_examples(wid: str) -> None:
    assert _feed_all(W_LINES[wid]) == W_EXPECTED[wid]


def test_bare_line_fast_path_is_a_normal_frozen_unwrapped() -> None:
    got = Unwrapper().feed(GW)
    assert got == Unwrapped(GW, ()) and hash(got) == hash(Unwrapped(GW, ()))
    assert got is not None and got.wrapper_time is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.text = "x"  # type: ignore[misc]


def test_tracing_and_json_lines_pass_through() -> None:
    u = Unwrapper()
    for line in (
        "2026-08-20T09:26:00.000100Z\twarn\trequest\tfailed to enqueue request log database record\terr=Full(..)",
        '{"level":"info","time":"2025-12-16T15:58:18.245221Z","scope":"x","message":"a | b","address":"1"}',
        W10_INNER,
        '  "version": "1.4.1",',
        "thread 'tokio-runtime-worker' panicked at crates/agentgateway/src/proxy/httpproxy.rs:812:10:",
    ):
        assert u.feed(line) == Unwrapped(line, ())


def test_doc_style_spaces_keep_the_gateway_timestamp() -> None:
    """R05 (TABs rendered as spaces): a gateway timestamp followed by SP is not an outer one."""
    line = "2026-08-06T21:10:58.810727Z     info    request gateway=default/default duration=2ms"
    assert Unwrapper().feed(line) == Unwrapped(line, ())


def test_outer_timestamp_only_before_another_timestamp_or_json() -> None:
    u = Unwrapper()
    noise = "2026-08-20T09:16:41.203391112Z INFO:     started"
    assert u.feed(noise) == Unwrapped(noise, ())
    assert u.feed("2026-08-20T09:16:41Z " + GW) == Unwrapped(GW, ("timestamp",), "2026-08-20T09:16:41Z")
    assert u.feed("2026-08-20T09:16:41.5+02:00 " + W10_INNER) == Unwrapped(
        W10_INNER, ("timestamp",), "2026-08-20T09:16:41.5+02:00"
    )


def test_compose_timestamps_with_ansi_and_json_under_prefix() -> None:
    u = Unwrapper()
    ts = "2026-08-20T09:16:41.203391112Z"
    assert u.feed(f"\x1b[33;1magentgateway-1  | \x1b[0m{ts} {GW}") == Unwrapped(
        GW, ("compose-v2:agentgateway-1", "ansi", "timestamp"), ts
    )
    assert u.feed("agentgateway-1  | " + W10_INNER) == Unwrapped(W10_INNER, ("compose-v2:agentgateway-1",))


@pytest.mark.parametrize("code", ["36", "33", "32", "35", "34", "36;1", "1;33", "0", ""])
def test_ansi_variants(code: str) -> None:
    line = f"\x1b[{code}mopen-webui-1    | \x1b[0m{OWUI}"
    assert Unwrapper().feed(line) == Unwrapped(OWUI, ("compose-v2:open-webui-1", "ansi"))


def test_kubectl_prefix_with_timestamps() -> None:
    ts = "2026-09-05T13:31:49.824825504Z"
    got = Unwrapper().feed(f"[pod/gw-abc/agentgateway] {ts} {W14_INNER}")
    assert got == Unwrapped(W14_INNER, ("kubectl-prefix:pod/gw-abc/agentgateway", "timestamp"), ts)


def test_crlf_variants() -> None:
    u = Unwrapper()
    assert u.feed(GW + "\r") == Unwrapped(GW, ("cr",))
    assert u.feed(GW + "\r\n") == Unwrapped(GW, ("cr",))
    assert u.feed(W10_INNER + "\r") == Unwrapped(W10_INNER, ("cr",))
    t = "2026-08-20T09:16:41.2Z"
    assert u.feed(_jf(GW + "\r\n", t)) == Unwrapped(GW, ("docker-json-file", "cr"), t)
    assert u.feed(f"{t} stdout F {GW}\r") == Unwrapped(GW, ("cri:stdout", "cr"), t)


def test_json_file_partials_join_per_stream_interleaved() -> None:
    u = Unwrapper()
    a, b = GW[:300], GW[300:]
    e1, e2, e3 = "thread 'main' panicked at x.rs:1:1:", "called `Option::unwrap()`", " on a `None` value"
    t = [f"2026-08-20T09:16:41.{i}Z" for i in range(7)]
    out = [
        u.feed(_jf(a, t[0])),
        u.feed(_jf(e1 + "\n", t[1], "stderr")),
        u.feed(_jf(e2, t[2], "stderr")),
        u.feed(_jf(b[:50], t[3])),
        u.feed(_jf(e3 + "\n", t[4], "stderr")),
        u.feed(_jf(b[50:] + "\n", t[5])),
        u.feed(_jf(GW + "\n", t[6])),
    ]
    assert out == [
        None,
        Unwrapped(e1, ("docker-json-file",), t[1]),
        None,
        None,
        Unwrapped(e2 + e3, ("docker-json-file", "joined:2"), t[2]),
        Unwrapped(GW, ("docker-json-file", "joined:3"), t[0]),
        Unwrapped(GW, ("docker-json-file",), t[6]),
    ]
    assert u.flush() == []


def test_json_file_attrs_and_escapes() -> None:
    line = (
        r'{"log":"2026-08-20T09:16:41.1Z\tinfo\trequest http.path=/a?x=\u003cb\u003e\u0026y duration=1ms'
        r' user.name=\"J%C3%BCrgen M%C3%BCller\" note=\"\u00fc\ufffd\"\n","stream":"stdout",'
        r'"attrs":{"tag":"gw"},"time":"2026-08-20T09:16:41.1Z"}'
    )
    got = Unwrapper().feed(line)
    inner = (
        "2026-08-20T09:16:41.1Z\tinfo\trequest http.path=/a?x=<b>&y duration=1ms "
        'user.name="J%C3%BCrgen M%C3%BCller"'
        ' note="ü\ufffd"'
    )
    assert got == Unwrapped(inner, ("docker-json-file",), "2026-08-20T09:16:41.1Z")


def test_cri_partials_join_per_stream_interleaved() -> None:
    u = Unwrapper()
    ts = "2026-09-05T13:33:11.066276208Z"
    out = [
        u.feed(f"{ts} stdout P {GW[:100]}"),
        u.feed(f"{ts} stderr P first "),
        u.feed(f"{ts} stdout P {GW[100:200]}"),
        u.feed(f"{ts} stderr F half"),
        u.feed(f"{ts} stdout F {GW[200:]}"),
        u.feed(f"{ts} stdout F "),
        u.feed(f"{ts} stdout F"),
    ]
    assert out == [
        None,
        None,
        None,
        Unwrapped("first half", ("cri:stderr", "joined:2"), ts),
        Unwrapped(GW, ("cri:stdout", "joined:3"), ts),
        Unwrapped("", ("cri:stdout",), ts),
        Unwrapped("", ("cri:stdout",), ts),
    ]


def test_flush_emits_held_partials_as_joined_so_far() -> None:
    u = Unwrapper()
    ts = "2026-09-05T13:33:11.1Z"
    assert not u.holding
    assert u.feed(f"{ts} stdout P {GW[:100]}") is None
    assert u.holding
    assert u.feed(f"{ts} stdout P {GW[100:]}") is None
    assert u.feed(_jf("half a line", ts, "stderr")) is None
    assert u.flush() == [
        Unwrapped(GW, ("cri:stdout", "joined:2", "unterminated"), ts),
        Unwrapped("half a line", ("docker-json-file", "joined:1", "unterminated"), ts),
    ]
    assert u.flush() == [] and not u.holding


def test_join_is_capped_and_the_rest_of_the_line_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unwrap, "MAX_JOIN_CHARS", 1000)
    u = Unwrapper()
    ts = "2026-09-05T13:33:11.1Z"
    for _ in range(50):
        assert u.feed(f"{ts} stdout P " + "A" * 100) is None
    got = u.feed(f"{ts} stdout F tail")
    assert got is not None
    assert got.layers == ("cri:stdout", "joined:6", "truncated-join")  # 6 x (100 + 64) fit in 1000
    assert got.text == "A" * 600
    assert u._held == {}
    assert u.feed(f"{ts} stdout F {GW}") == Unwrapped(GW, ("cri:stdout",), ts)


def test_many_empty_partials_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unwrap, "MAX_JOIN_CHARS", 10_000)
    u = Unwrapper()
    for _ in range(5000):
        u.feed('{"log":"","stream":"weird"}')
    assert sum(len(h.parts) for h in u._held.values()) <= 10_000 // 64
    (got,) = u.flush()
    assert got.layers == ("docker-json-file", f"joined:{10_000 // 64}", "truncated-join", "unterminated")


GARBAGE = [
    "",
    "\r",
    "\n",
    "\x00\x00\x00",
    "\ufffd\ufffdPNG\x1a\x00",
    "\udcff\udcfe raw bytes via surrogateescape",
    '{"log":',
    '{"log":"unterminated',
    '{"log": 5, "stream": "stdout"}',
    '{"log":"\\ud800 lone surrogate\\n","stream":"stdout"}',
    '["log"]',
    "{" * 5000 + '"log"',
    '{"log":' + "[" * 100_000,
    "2026-08-20T09:16:41Z stdout X nope",
    "2026-08-20T09:16:41Z stdout",
    "\x1b[",
    "\x1b[999999999999m",
    " | ",
    "| x",
    "[pod/] x",
    "[pod/a/b]",
    "2026-08-20T09:16:41.203391112Z ",
    "9" * 40,
    "2026-08-20T09:16:41.2Z\t",
]


@pytest.mark.parametrize("line", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_never_raises(line: str) -> None:
    u = Unwrapper()
    got = u.feed(line)
    assert got is None or isinstance(got.text, str)
    for held in u.flush():
        assert isinstance(held.text, str)


_WRAPPER_CHARS = st.sampled_from(list('{}[]"\\:log stdoutPF|\x1b[0;36m\r\n\t2026-T.Z'))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=_WRAPPER_CHARS) | st.text()))
def test_fuzz_never_raises(lines: list[str]) -> None:
    u = Unwrapper()
    for line in lines:
        got = u.feed(line)
        assert got is None or (isinstance(got.text, str) and isinstance(got.layers, tuple))
    u.flush()


# -- the committed samples and the bench corpus unwrap to their ground truth ---------------------------
ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
REQUEST_SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,6}Z[\t ]+info[\t ]+request[ \t][^\s=]+=")


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = sys.modules.setdefault(name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


def _is_request_shaped(text: str) -> bool:
    if text.startswith('{"level":"info"'):
        return '"scope":"request"' in text and '"message"' not in text
    return REQUEST_SHAPE.match(text) is not None


def _unwrap_file(data: bytes) -> tuple[list[Unwrapped], int]:
    u = Unwrapper()
    out, held = [], 0
    for raw in data.split(b"\n")[:-1]:
        got = u.feed(raw.decode("utf-8", "replace"))
        if got is None:
            held += 1
        else:
            out.append(got)
    return out + u.flush(), held


def test_samples_are_what_the_generator_writes(tmp_path: Path) -> None:
    _load(SAMPLES / "generate.py", "gwlog_samples_generate").main(["--out", str(tmp_path)])
    for path in [*sorted(SAMPLES.glob("*.log")), SAMPLES / "expected.json", SAMPLES / "README.md"]:
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.log")))
def test_samples_unwrap_to_their_ground_truth(name: str) -> None:
    truth = json.loads((SAMPLES / "expected.json").read_text(encoding="utf-8"))["files"][name]
    out, held = _unwrap_file((SAMPLES / name).read_bytes())
    assert held == truth["held_partials"]
    assert len(out) == truth["readings"]
    shaped = [o for o in out if _is_request_shaped(o.text)]
    assert len(shaped) == truth["request_lines"] + truth["malformed_lines"]
    assert all(not o.text.endswith("\r") and "\x1b" not in o.text for o in shaped)


@pytest.mark.parametrize("fmt", ["text", "compose", "json", "docker-json", "cri"])
def test_bench_corpus_unwraps_to_its_ground_truth(fmt: str) -> None:
    corpus = _load(ROOT / "bench" / "corpus.py", "gwlog_bench_corpus")
    batches, gen = corpus.corpus(fmt, 3000, seed=7, noise=0.05)
    lines = [line for batch in batches for line in batch]
    out, _ = _unwrap_file(("\n".join(lines) + "\n").encode())
    shaped = sum(1 for o in out if _is_request_shaped(o.text))
    assert shaped == gen.tally.requests() == gen.tally.to_json()["request_lines"]


@pytest.mark.parametrize(
    "second",
    [
        "agentgateway-1  | 2026-01-01T00:00:00.2Z\tinfo\trequest duration=2ms",
        "agentgateway-1  | \x1b[32m2026-01-01T00:00:00.2Z\tinfo\trequest duration=2ms\x1b[0m",
        "agentgateway-1  | 2026-01-01T00:00:00.2Z\tinfo\trequest duration=2ms\r",
        "agentgateway-1  | 2026-01-01T00:00:00.2Z 2026-01-01T00:00:00.2Z\tinfo\trequest duration=2ms",
        "agentgateway-1  | not a gateway line | with bars",
    ],
)
def test_a_known_compose_prefix_unwraps_as_on_first_sight(second: str) -> None:
    """The cached-prefix fast path gives what the full routing gives a fresh stream."""
    warm = Unwrapper()
    assert warm.feed("agentgateway-1  | 2026-01-01T00:00:00.1Z\tinfo\trequest duration=1ms") is not None
    assert warm.feed(second) == Unwrapper().feed(second)
