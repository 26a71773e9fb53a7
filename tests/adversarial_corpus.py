"""Adversarial corpus: hostile gateway lines and the EXACT reading the format doc requires.

Every case is derived from the format doc (/work/shared/agentgateway-log-format.md §3, §4, §7,
§9, §10), never from what gwlog happens to do. Run this module to (re)write the JSONL form that
non-Python tools use: ``.venv/bin/python tests/adversarial_corpus.py > tests/adversarial_corpus.jsonl``.

A case is ``{"id", "doc", "lines", "expect", "residual"}``: ``lines`` are physical lines fed, in
order, to ONE ``LineReader``; ``expect`` has one entry per reading (``outcome``, and for parsed
lines ``event`` attributes and either the exact ``fields`` dict or a ``fields_subset``).
``residual`` marks the §10 residual: a forged built-in that is later in the key order than the raw
field and absent from the real line is indistinguishable from a real one; it is asserted as the
format dictates (the forged field is read) and documented as an accepted limit.
"""

from __future__ import annotations

import json
import sys
from typing import Any

TS = "2026-08-20T09:16:41.203377Z"
TS_ISO = "2026-08-20T09:16:41.203377+00:00"
ALICE = "alice@example.com"

# The union key order of grammars/agentgateway.lark (format doc §4, plus pre-v1 names where the
# grammar places them); used only to decide which forgeries the §10 rules can defeat.
ORDER = [
    "connection.id",
    "request.id",
    "gateway",
    "listener",
    "route_rule",
    "route",
    "endpoint",
    "src.addr",
    "src.identity",
    "http.method",
    "http.host",
    "http.path",
    "http.version",
    "http.status",
    "grpc.status",
    "tls.sni",
    "trace.id",
    "span.id",
    "jwt.sub",
    "protocol",
    "a2a.method",
    "a2a.response.outcome",
    "a2a.response.error_code",
    "a2a.result.kind",
    "a2a.task.state",
    "a2a.context.id",
    "mcp.method.name",
    "mcp.method",
    "mcp.target",
    "mcp.tool",
    "mcp.resource.type",
    "mcp.resource",
    "mcp.resource.uri",
    "mcp.resource.name",
    "gen_ai.tool.name",
    "gen_ai.prompt.name",
    "mcp.session.id",
    "mcp.error.code",
    "mcp.error.message",
    "inferencepool.selected_endpoint",
    "llm.provider",
    "llm.request.model",
    "llm.request.tokens",
    "llm.response.model",
    "llm.response.tokens",
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "agw.ai.time_to_first_token",
    "agw.ai.time_per_output_token",
    "agw.ai.usage.cost.total",
    "retry.attempt",
    "error",
    "reason",
    "duration",
]
RANK = {k: i for i, k in enumerate(ORDER)}

# (key, text as written, typed value) — a line is built from these, so the expected fields are exact.
Pair = tuple[str, str, Any]


def p(key: str, value: Any, text: str | None = None) -> Pair:
    return (key, str(value) if text is None else text, value)


def q(key: str, value: str) -> Pair:
    """A Rust-Debug quoted value (``error``, ``mcp.error.message``, custom strings)."""
    esc = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    esc = esc.replace("\t", "\\t").replace("\x1b", "\\u{1b}")
    return (key, f'"{esc}"', value)


ROUTE = [
    p("gateway", "default/default"),
    p("listener", "llm"),
    p("route", "default/openai"),
    p("endpoint", "api.openai.com:443"),
    p("src.addr", "172.18.0.7:38810"),
]
HTTP = [
    p("http.method", "POST"),
    p("http.host", "agentgateway"),
    p("http.path", "/v1/chat/completions"),
    p("http.version", "HTTP/1.1"),
    p("http.status", 429),
]
TAIL = [p("duration", 1733, "1733ms"), q("user.email", ALICE)]

# Realistic lines, one per family of client-controlled raw values (values to forge in marked).
LLM = [
    *ROUTE,
    p("src.identity", "spiffe://cluster.local/ns/default/sa/client"),
    *HTTP,
    p("trace.id", "4bf92f3577b34da6a3ce929d0e0e4736"),
    p("span.id", "00f067aa0ba902b7"),
    p("jwt.sub", "bob"),
    p("protocol", "llm"),
    p("gen_ai.operation.name", "chat"),
    p("gen_ai.provider.name", "openai"),
    p("gen_ai.request.model", "gpt-4o"),
    p("gen_ai.response.model", "gpt-4o-2024-08-06"),
    p("gen_ai.usage.input_tokens", 311),
    p("gen_ai.usage.output_tokens", 97),
    *TAIL,
]
MCP = [
    *ROUTE[:2],
    p("route", "default/mcp"),
    p("src.addr", "127.0.0.1:61990"),
    p("http.method", "POST"),
    p("http.host", "localhost"),
    p("http.path", "/mcp"),
    p("http.version", "HTTP/1.1"),
    p("http.status", 200),
    p("protocol", "mcp"),
    p("mcp.method.name", "tools/call"),
    p("mcp.target", "everything"),
    p("mcp.resource.type", "tool"),
    p("mcp.resource.uri", "file:///srv/docs/My Report.md"),
    p("gen_ai.tool.name", "echo"),
    p("gen_ai.prompt.name", "greet"),
    p("mcp.session.id", "6b497ee9-3710-428a-96d2-31ebeab73dcd"),
    p("mcp.error.code", -32601),
    q("mcp.error.message", "Method not found"),
    p("duration", 7, "7ms"),
    q("user.email", ALICE),
]
MCP_SHORT = [
    *MCP[:10],
    p("mcp.target", "everything"),
    p("mcp.session.id", "6b497ee9"),
    p("duration", 7, "7ms"),
    q("user.email", ALICE),
]
A2A = [
    *ROUTE[:2],
    p("route", "default/agent"),
    p("endpoint", "localhost:9999"),
    p("src.addr", "127.0.0.1:57408"),
    p("http.method", "POST"),
    p("http.host", "localhost"),
    p("http.path", "/"),
    p("http.version", "HTTP/1.1"),
    p("http.status", 200),
    p("protocol", "a2a"),
    p("a2a.method", "message/send"),
    p("a2a.response.outcome", "success"),
    p("a2a.result.kind", "task"),
    p("a2a.task.state", "completed"),
    p("a2a.context.id", "8f2b1c94-2d1e-4c1b-9a55-0b7e6f3a2c11"),
    p("duration", 912, "912ms"),
    q("user.email", ALICE),
]
TLS = [
    p("gateway", "default/default"),
    p("listener", "tls"),
    p("route", "default/passthrough"),
    p("endpoint", "10.96.0.30:443"),
    p("src.addr", "10.0.0.3:50040"),
    p("src.identity", "spiffe://cluster.local/ns/db/sa/client"),
    p("tls.sni", "db.internal.example"),
    p("protocol", "tcp"),
    p("duration", 15342, "15342ms"),
    q("user.email", ALICE),
]
# v0.6.2–v0.8.x: `error` raw with spaces, llm.* names.
OLD = [
    p("gateway", "bind/3000"),
    p("listener", "listener0"),
    p("route", "route0"),
    p("endpoint", "localhost:8080"),
    p("src.addr", "[::1]:60001"),
    p("http.method", "POST"),
    p("http.host", "localhost"),
    p("http.path", "/v1/chat/completions"),
    p("http.version", "HTTP/1.1"),
    p("http.status", 503),
    p("llm.provider", "openai"),
    p("llm.request.model", "gpt-4o"),
    p("llm.request.tokens", 10),
    p("error", "upstream call failed: Connect: tcp connect error: Connection refused (os error 111)"),
    p("duration", 1, "1ms"),
    q("user.email", ALICE),
]

TARGETS: list[tuple[str, str, list[Pair]]] = [
    ("request_model", "gen_ai.request.model", LLM),
    ("response_model", "gen_ai.response.model", LLM),
    ("jwt_sub", "jwt.sub", LLM),
    ("src_identity", "src.identity", LLM),
    ("src_identity_tcp", "src.identity", TLS),
    ("tls_sni", "tls.sni", TLS),
    ("mcp_target", "mcp.target", MCP),
    ("mcp_target_short", "mcp.target", MCP_SHORT),
    ("mcp_resource_uri", "mcp.resource.uri", MCP),
    ("tool_name", "gen_ai.tool.name", MCP),
    ("prompt_name", "gen_ai.prompt.name", MCP),
    ("mcp_session_id", "mcp.session.id", MCP),
    ("mcp_session_id_short", "mcp.session.id", MCP_SHORT),
    ("a2a_method", "a2a.method", A2A),
    ("a2a_result_kind", "a2a.result.kind", A2A),
    ("a2a_task_state", "a2a.task.state", A2A),
    ("a2a_context_id", "a2a.context.id", A2A),
    ("raw_error_pre_0_9", "error", OLD),
]

# (name, forged text appended to the raw value, [(forged key, typed value)] it would create)
FORGERIES: list[tuple[str, str, list[tuple[str, Any]]]] = [
    ("email", ' user.email="ceo@corp"', [("user.email", "ceo@corp")]),
    ("status", " http.status=200", [("http.status", 200)]),
    ("duration_email", ' duration=1ms user.email="x"', [("duration", 1), ("user.email", "x")]),
    ("provider", " gen_ai.provider.name=free", [("gen_ai.provider.name", "free")]),
    ("input_tokens", " gen_ai.usage.input_tokens=0", [("gen_ai.usage.input_tokens", 0)]),
]


def render(pairs: list[Pair], ts: str = TS) -> str:
    return f"{ts}\tinfo\trequest " + " ".join(f"{k}={t}" for k, t, _ in pairs)


def fields_of(pairs: list[Pair]) -> dict[str, Any]:
    return {k: v for k, _, v in pairs}


def event_of(fields: dict[str, Any]) -> dict[str, Any]:
    """The Event attributes the format doc implies for these fields (events.py key precedence)."""

    def first(*keys: str) -> Any:
        return next((fields[k] for k in keys if fields.get(k) is not None), None)

    sub = fields.get("jwt.sub")
    return {
        "ts": TS_ISO,
        "user": fields.get("user.email") or sub,
        "user_email": fields.get("user.email"),
        "user_id": sub.strip() or None if isinstance(sub, str) else None,
        "status": fields.get("http.status"),
        "provider": first("gen_ai.provider.name", "llm.provider"),
        "request_model": first("gen_ai.request.model", "llm.request.model"),
        "response_model": first("gen_ai.response.model", "llm.response.model"),
        "input_tokens": first("gen_ai.usage.input_tokens", "llm.request.tokens"),
        "output_tokens": first("gen_ai.usage.output_tokens", "llm.response.tokens"),
        "duration_ms": fields["duration"],
        "error": None if fields.get("error") is None else str(fields["error"]),
    }


def forgery_is_read(target: str, forged_key: str, pairs: list[Pair]) -> bool:
    """§10: the forged key becomes a field iff it is a built-in later than the raw field, absent from
    the real line, and every real built-in after the raw field is later still (order stays valid).
    ``duration`` never: the real suffix after a forged duration is untyped, so that reading fails."""
    if forged_key not in RANK or forged_key == "duration":
        return False
    keys = [k for k, _, _ in pairs if k in RANK]
    if forged_key in keys or RANK[forged_key] <= RANK[target]:
        return False
    after = keys[keys.index(target) + 1 :]
    return all(RANK[k] > RANK[forged_key] for k in after)


def matrix_cases() -> list[dict[str, Any]]:
    cases = []
    for tname, target, base in TARGETS:
        for fname, forged, created in FORGERIES:
            residual = all(forgery_is_read(target, k, base) for k, _ in created)
            verdict = "§10 residual: read as a field" if residual else "stays in the value"
            pairs: list[Pair] = []
            for k, t, v in base:
                if k != target:
                    pairs.append((k, t, v))
                elif residual:  # the forged pair is read as a field of its own
                    pairs.append((k, t, v))
                    pairs.extend((fk, forged.split("=", 1)[1], fv) for fk, fv in created)
                else:
                    pairs.append((k, t + forged, v + forged))
            fields = fields_of(pairs)
            line = render(pairs)
            assert forged in line
            cases.append(
                {
                    "id": f"forge-{fname}-in-{tname}",
                    "doc": f"{forged.strip()!r} inside raw {target} ({verdict})",
                    "lines": [line],
                    "expect": [{"outcome": "parsed", "event": event_of(fields), "fields": fields}],
                    "residual": residual,
                }
            )
    return cases


def parsed(pairs: list[Pair], **event: Any) -> dict[str, Any]:
    fields = fields_of(pairs)
    return {"outcome": "parsed", "event": {**event_of(fields), **event}, "fields": fields}


def replace(pairs: list[Pair], key: str, new: Pair) -> list[Pair]:
    return [new if k == key else (k, t, v) for k, t, v in pairs]


def special_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []

    def add(cid: str, doc: str, lines: list[str], expect: list[dict[str, Any]], residual: bool = False) -> None:
        cases.append({"id": cid, "doc": doc, "lines": lines, "expect": expect, "residual": residual})

    # --- quotes and escapes inside header (custom) values: typed strings, unescaped exactly ---
    for cid, name in [
        ("hdr-escaped-quote", 'Bob " user.email="ceo@corp'),
        ("hdr-backslash", "c:\\tmp\\"),
        ("hdr-backslash-before-quote", 'x\\" user.email="ceo@corp'),
        ("hdr-escape-esc", "\x1b[31mred\x1b[0m"),
        ("hdr-escape-newline", 'line1\nline2 user.email="ceo@corp"'),
        ("hdr-duration-inside", 'x duration=5ms user.email="ceo@corp"'),
        ("hdr-tab-cr", "a\tb\rc"),
    ]:
        pairs = [*LLM, q("user.name", name)]
        add(
            cid,
            f"custom header value {name!r}: Rust-Debug escaped, read back exactly; never a new field",
            [render(pairs)],
            [parsed(pairs)],
        )
    pairs = [*LLM, ("user.name", '"J\\u{fc}rgen\\u{200b}"', "Jürgen\u200b")]
    add("hdr-unicode-escape", "\\u{hex} escapes in a custom value", [render(pairs)], [parsed(pairs)])

    # --- an LF inside a raw value splits the physical line (§10) ---
    line = render(replace(LLM, "gen_ai.request.model", p("gen_ai.request.model", "gpt-4o\nevil")))
    first, second = line.split("\n")
    add(
        "lf-in-model",
        "raw model with LF: part 1 lacks duration (malformed); part 2 is no request (skipped)",
        [first, second],
        [{"outcome": "malformed"}, {"outcome": "skipped"}],
    )
    inj = f"gpt-4o\n{TS}\tinfo\trequest src.addr=6.6.6.6:1 gen_ai.request.model=free"
    line = render(replace(LLM, "gen_ai.request.model", p("gen_ai.request.model", inj)))
    first, second = line.split("\n")
    tail = LLM[LLM.index(p("gen_ai.request.model", "gpt-4o")) + 1 :]
    injected = [p("src.addr", "6.6.6.6:1"), p("gen_ai.request.model", "free"), *tail]
    add(
        "lf-injects-request",
        "§10: LF + a forged timestamp counts an extra request, but its identity, tokens "
        "and status come from the real line's tail (the sender's own header)",
        [first, second],
        [{"outcome": "malformed"}, parsed(injected)],
        residual=True,
    )

    # --- duplicate built-ins ---
    c13 = [
        p("src.addr", "10.0.0.3:50031"),
        p("http.method", "GET"),
        p("http.host", "nope.example"),
        p("http.path", "/"),
        p("http.version", "HTTP/1.1"),
        p("http.status", 404),
        p("http.status", 200),
        q("error", "listener not found"),
        p("reason", "NotFound"),
        p("duration", 0, "0ms"),
    ]
    add(
        "dup-builtin-status-no-raw",
        "http.status twice with no raw value before it to absorb it: malformed",
        [render(c13)],
        [{"outcome": "malformed"}],
    )
    dup = [*LLM[:-2], p("gen_ai.usage.output_tokens", 5), *LLM[-2:]]
    absorbed = replace(
        [x for x in dup if x[0] != "gen_ai.usage.input_tokens" and x[2] != 97],
        "gen_ai.response.model",
        p(
            "gen_ai.response.model",
            "gpt-4o-2024-08-06 gen_ai.usage.input_tokens=311 gen_ai.usage.output_tokens=97",
        ),
    )
    add(
        "dup-builtin-tokens-absorbed",
        "output_tokens twice after a raw value: the only consistent reading "
        "puts the first pair inside the nearest raw value (response model); the later one is the field",
        [render(dup)],
        [parsed(absorbed)],
    )

    # --- custom keys imitating built-ins after duration: typed customs, built-ins unchanged ---
    for cid, extra in [
        ("custom-http-status-string", q("http.status", "x")),
        ("custom-http-status-int", p("http.status", 200)),
        ("custom-input-tokens", p("gen_ai.usage.input_tokens", 0)),
        ("custom-provider", q("gen_ai.provider.name", "free")),
        ("custom-model", q("gen_ai.request.model", "free")),
    ]:
        line = render([*LLM, extra])
        real = parsed(LLM)
        del real["fields"]
        add(
            cid,
            f"custom {extra[0]}={extra[1]} after duration: the built-in value stays",
            [line],
            [{**real, "fields_subset": {extra[0]: fields_of(LLM)[extra[0]]}}],
        )
    no_out = [x for x in LLM if x[0] != "gen_ai.usage.output_tokens"]
    real = parsed(no_out)
    del real["fields"]
    add(
        "custom-absent-builtin-string",
        "custom string named like an absent built-in never becomes a count",
        [render([*no_out, q("gen_ai.usage.output_tokens", "999999")])],
        [{**real, "event": {**real["event"], "output_tokens": None}}],
    )

    # --- ANSI inside values ---
    model = 'gpt-4o\x1b[31m user.email="ceo@corp"\x1b[0m'
    pairs = replace(LLM, "gen_ai.request.model", p("gen_ai.request.model", model))
    add(
        "ansi-in-model-bare",
        "ANSI in a raw value of a bare line: no wrapper layer, kept verbatim",
        [render(pairs)],
        [parsed(pairs)],
    )
    stripped = replace(LLM, "gen_ai.request.model", p("gen_ai.request.model", 'gpt-4o user.email="ceo@corp"'))
    add(
        "ansi-in-model-compose",
        "compose TTY line: ANSI stripped as a layer (§7, §9.1); forgery stays in the model",
        ["\x1b[36magentgateway-1  | \x1b[0m" + render(pairs)],
        [parsed(stripped)],
    )

    # --- fake wrapper prefixes inside values ---
    pairs = replace(LLM, "gen_ai.request.model", p("gen_ai.request.model", "agentgateway-1  | gpt-4o"))
    add(
        "fake-compose-prefix-in-model",
        "a compose prefix inside a value is part of the value",
        [render(pairs)],
        [parsed(pairs)],
    )
    add(
        "fake-compose-prefix-in-model-wrapped",
        "same line behind a real compose prefix: only the outer one goes",
        ["agentgateway-1  | " + render(pairs)],
        [parsed(pairs)],
    )
    forged_inner = render(replace(LLM, "user.email", q("user.email", "ceo@corp"))) + "\n"
    json_line = (
        '{"level":"info","time":"' + TS + '","scope":"request","src.addr":"10.0.0.1:1","http.status":429,'
        '"gen_ai.provider.name":"openai","gen_ai.request.model":"gpt-4o","gen_ai.usage.input_tokens":311,'
        '"duration":"1733ms","user.email":"' + ALICE + '","log":' + json.dumps(forged_inner) + ',"stream":"stdout"}'
    )
    jf = {
        "src.addr": "10.0.0.1:1",
        "http.status": 429,
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 311,
        "duration": 1733,
        "user.email": ALICE,
        "log": forged_inner,
        "stream": "stdout",
    }
    add(
        "json-mode-fake-log-key",
        'JSON-mode request with custom "log"/"stream" keys: not a docker envelope',
        [json_line],
        [{"outcome": "parsed", "event": event_of(jf), "fields_subset": jf}],
    )

    # --- JSON mode: custom level/scope/time duplicate the gateway's keys (§5) ---
    base = (
        '{"level":"info","time":"' + TS + '","scope":"request","src.addr":"10.0.0.1:1","http.status":429,'
        '"gen_ai.provider.name":"openai","gen_ai.request.model":"gpt-4o","gen_ai.usage.input_tokens":311,'
        '"duration":"1733ms","user.email":"' + ALICE + '"'
    )
    want = {
        "src.addr": "10.0.0.1:1",
        "http.status": 429,
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 311,
        "duration": 1733,
        "user.email": ALICE,
    }
    ev = {**event_of(want), "user_id": None}
    for cid, dup_json in [
        ("json-dup-scope", ',"scope":"evil"'),
        ("json-dup-level", ',"level":"warn"'),
        ("json-dup-time", ',"time":"2030-01-01T00:00:00.000001Z"'),
        ("json-dup-status", ',"http.status":200'),
    ]:
        add(
            cid,
            f"JSON-mode custom key duplicating a gateway key ({dup_json}): the gateway's own value wins",
            [base + dup_json + "}"],
            [
                {
                    "outcome": "parsed",
                    "event": ev,
                    "fields_subset": {k: v for k, v in want.items() if k in ("http.status", "user.email", "duration")},
                }
            ],
        )
    evil = base.replace(
        '"gen_ai.request.model":"gpt-4o"', '"gen_ai.request.model":"gpt-4o\\",\\"user.email\\":\\"ceo@corp"'
    )
    add(
        "json-forged-email-in-model",
        "JSON escaping keeps a forged key inside the model string",
        [evil + "}"],
        [
            {
                "outcome": "parsed",
                "event": {**ev, "request_model": 'gpt-4o","user.email":"ceo@corp'},
                "fields_subset": {"user.email": ALICE},
            }
        ],
    )

    # --- §10 residual, stated on its own: forged later built-in absent from the real line ---
    failed = [
        *ROUTE,
        *HTTP,
        p("protocol", "llm"),
        p("gen_ai.provider.name", "openai"),
        p("gen_ai.request.model", "gpt-4o"),
        p("gen_ai.usage.output_tokens", 999999),
        q("error", "rate limited"),
        p("reason", "RateLimit"),
        p("duration", 3, "3ms"),
        q("user.email", ALICE),
    ]
    line = render(failed)
    assert "gen_ai.request.model=gpt-4o gen_ai.usage.output_tokens=999999 " in line
    add(
        "residual-output-tokens-in-failed-request",
        "§10 residual: model `gpt-4o gen_ai.usage.output_tokens=999999` in a failed request (no real usage) "
        "is indistinguishable from real output tokens; it type-checks, adds a field, stays attributed to "
        "the sender",
        [line],
        [parsed(failed)],
        residual=True,
    )

    # --- a good line right after each hostile one is read exactly ---
    add(
        "good-after-partial-json",
        "an unterminated json-file partial of another stream does not eat a bare line",
        [
            '{"log":"2026-08-20T09:30:00.1Z\\tinfo\\trequest src.addr=1.1.1.1:1 duration=","stream":"stdout",'
            '"time":"2026-08-20T09:30:00.000123Z"}',
            render(LLM),
        ],
        [{"outcome": "held"}, parsed(LLM)],
    )
    return cases


def all_cases() -> list[dict[str, Any]]:
    return matrix_cases() + special_cases()


if __name__ == "__main__":
    for case in all_cases():
        sys.stdout.write(json.dumps(case, ensure_ascii=False) + "\n")
