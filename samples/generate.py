"""Regenerate the committed sample logs, expected.json and README.md (seeded, stdlib only).

Why: every variant of the gateway's output (compose, JSON mode, docker json-file, CRI, legacy
versions, garbage) as small files whose true totals are known, so tests and demos can assert exact
numbers. All drawing and counting lives in ``bench/corpus.py`` (one generator); this script only
arranges the streams. Run: ``python samples/generate.py`` (rewrites the files next to it).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "bench"))

from corpus import (  # noqa: E402  (bench/ is not a package)
    USER_TEAMS,
    USERS,
    Generator,
    compose_prefix,
    cri,
    docker_json,
)

Line = str | bytes
WIDTH = len("agentgateway-1") + 1  # compose pads every prefix to the longest name + 1
GW = compose_prefix("agentgateway-1", WIDTH)


class Sample:
    """One sample file: its physical lines and the counts the generator cannot know by itself."""

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.lines: list[Line] = []
        self.held = 0  # physical lines an unwrapper holds (json-file/CRI partial chunks)
        self.malformed = 0  # look like request lines, no valid reading (truncated, LF-split)
        self.invalid_utf8_requests = 0

    def add(self, *lines: Line) -> None:
        self.lines.extend(lines)

    def truth(self) -> dict[str, Any]:
        invalid = sum(1 for x in self.lines if isinstance(x, bytes) and not _utf8(x))
        physical = len(self.lines)
        t = self.gen.tally.to_json()
        readings = physical - self.held
        return {
            "physical_lines": physical,
            "held_partials": self.held,
            "readings": readings,
            "request_lines": t.pop("request_lines"),
            "malformed_lines": self.malformed,
            "skipped_lines": readings - self.malformed - self.gen.tally.requests(),
            "invalid_utf8_lines": invalid,
            "invalid_utf8_request_lines": self.invalid_utf8_requests,
            **t,
        }

    def write(self, path: Path) -> None:
        data = b"".join((x if isinstance(x, bytes) else x.encode("utf-8")) + b"\n" for x in self.lines)
        path.write_bytes(data)


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _gen(seed: int, start: datetime, gap_ms: float = 2500.0) -> Generator:
    return Generator(seed=seed, start=start, mean_gap_ms=gap_ms)


def _uncounted(gen: Generator, needle: str) -> str:
    """Draw a request line containing ``needle`` without counting it (it is about to be damaged)."""
    saved = copy.deepcopy(gen.tally)
    line = ""
    while needle not in line:
        line, _ = gen.request()
    gen.tally = saved
    return line


# -- the files ------------------------------------------------------------------------------------
def compose_log() -> Sample:
    """`docker compose logs -f`: gateway + open-webui + keycloak, startup, traps, a panic and restart."""
    gen = _gen(101, datetime(2026, 8, 20, 8, 59, 50, tzinfo=UTC))
    s = Sample(gen)
    r = gen.rng.random
    webui, kc = compose_prefix("open-webui-1", WIDTH), compose_prefix("keycloak-1", WIDTH)
    s.add(*(kc + gen.keycloak_noise(gen.tick()) for _ in range(3)))
    s.add(*(GW + x for x in gen.startup(gen.tick())))
    s.add(
        webui + "INFO:     Started server process [1]", webui + "INFO:     Waiting for application startup."
    )
    s.add(webui + "INFO:     Application startup complete.")
    for i in range(760):
        if i == 600:  # the gateway panics (stderr shares the prefix) and compose restarts it
            s.add(*(GW + x for x in gen.panic()))
            s.add(*(GW + x for x in gen.startup(gen.tick())))
        x = r()
        if x < 0.58:
            s.add(GW + gen.request()[0])
        elif x < 0.80:
            s.add(webui + gen.webui_noise(gen.us))
        elif x < 0.88:
            s.add(kc + gen.keycloak_noise(gen.us))
        else:
            s.add(GW + gen.gateway_noise(gen.tick())[0])
    return s


def json_format_log() -> Sample:
    """LOG_FORMAT=json: request objects, tracing objects (incl. scope "request" with a message)."""
    gen = _gen(202, datetime(2026, 8, 21, 10, 0, 0, tzinfo=UTC))
    s = Sample(gen)
    ts = gen.ts(gen.tick(), 6)
    s.add(
        f'{{"level":"info","time":"{ts}","scope":"agentgateway_app::commands::run","message":"version: '
        '{\\n  \\"version\\": \\"1.4.1\\",\\n  \\"git_revision\\": \\"0123456789abcdef\\"\\n}"}'
    )
    s.add(gen.json_noise(gen.tick()))
    for _ in range(300):
        if gen.rng.random() < 0.93:
            s.add(gen.request(json_mode=True)[0])
        else:
            s.add(gen.json_noise(gen.tick()))
    return s


def docker_json_file_log() -> Sample:
    """json-file envelopes: stdout + stderr, one >16 KiB line in 3 chunks with stderr in between."""
    gen = _gen(303, datetime(2026, 8, 22, 7, 30, 0, tzinfo=UTC))
    s = Sample(gen)
    for x in gen.startup(gen.tick()):
        s.add(*docker_json(x, "stdout", gen.wrapper_ts(gen.us)))
    for i in range(300):
        if i == 150:
            big, us = gen.mcp_big(40_000)
            chunks = docker_json(big, "stdout", gen.wrapper_ts(us))
            s.add(
                chunks[0],
                *docker_json("thread 'main' warning: interleaved stderr", "stderr", gen.wrapper_ts(us)),
            )
            s.add(*chunks[1:])
            s.held += len(chunks) - 1
        if i == 280:
            for x in gen.panic():
                s.add(*docker_json(x, "stderr", gen.wrapper_ts(gen.us)))
            for x in gen.startup(gen.tick()):
                s.add(*docker_json(x, "stdout", gen.wrapper_ts(gen.us)))
        if gen.rng.random() < 0.92:
            line, us = gen.request()
        else:
            us = gen.tick()
            line = gen.gateway_noise(us)[0]
        s.add(*docker_json(line, "stdout", gen.wrapper_ts(us)))
    return s


def cri_log() -> Sample:
    """Kubernetes CRI files: F lines, one P/F split with a stderr line in between, a panic."""
    gen = _gen(404, datetime(2026, 9, 5, 13, 0, 0, tzinfo=UTC))
    s = Sample(gen)
    for x in gen.startup(gen.tick()):
        s.add(*cri(x, "stdout", gen.wrapper_ts(gen.us)))
    for i in range(300):
        if i == 120:
            big, us = gen.mcp_big(20_000)
            chunks = cri(big, "stdout", gen.wrapper_ts(us))
            s.add(chunks[0], *cri("interleaved stderr line", "stderr", gen.wrapper_ts(us)), *chunks[1:])
            s.held += len(chunks) - 1
        if i == 290:
            for x in gen.panic():
                s.add(*cri(x, "stderr", gen.wrapper_ts(gen.us)))
        if gen.rng.random() < 0.92:
            line, us = gen.request()
        else:
            us = gen.tick()
            line = gen.gateway_noise(us)[0]
        s.add(*cri(line, "stdout", gen.wrapper_ts(us)))
    return s


def legacy_log() -> Sample:
    """An upgrade story: v0.4 (R27 format), v0.6.0 (TAB form, quoted), v0.8.1 (raw error, llm.* keys)."""
    gen = _gen(505, datetime(2025, 4, 24, 20, 20, 59, tzinfo=UTC), gap_ms=20_000)
    s = Sample(gen)
    s.add(
        "2025-04-24T20:20:59.184422Z  INFO agentgateway: Reading config from file: config.json",
        "2025-04-24T20:20:59.185110Z  INFO agentgateway::inbound: serving a2a on [::]:3000",
    )
    for version, start, n in (("0.6.0", datetime(2025, 7, 14, 12, 0, tzinfo=UTC), 140),
                              ("0.8.1", datetime(2025, 8, 20, 10, 0, tzinfo=UTC), 160)):  # fmt: skip
        gen.us = int(start.timestamp()) * 1_000_000
        s.add(f'{gen.ts(gen.tick(), 6)}\tinfo\tproxy::gateway\tstarted bind\tbind="bind/3000"')
        for _ in range(n):
            if gen.rng.random() < 0.94:
                s.add(gen.legacy(version)[0])
            else:
                s.add(f"{gen.ts(gen.tick(), 6)}\twarn\tproxy::httpproxy\tproxy error: upstream call failed\t")
    return s


def noise_and_errors_log() -> Sample:
    """Good lines among garbage: truncation, LF injection, binary, NUL, non-UTF-8, traps, forged fields."""
    gen = _gen(606, datetime(2026, 8, 23, 14, 0, 0, tzinfo=UTC))
    s = Sample(gen)
    rng = gen.rng
    forged = False
    for _ in range(330):
        k = rng.random()
        if k < 0.62:
            line, _ = gen.request()
            if (
                not forged
                and "gen_ai.request.model=gpt-4o gen_ai.response" in line
                and "http.status=200" in line
            ):
                # §10: a client-controlled model name forging a user field; the real user stays the last one
                forgery = 'gen_ai.request.model=gpt-4o user.email="someone.else@example.com" '
                line = line.replace("gen_ai.request.model=gpt-4o ", forgery)
                forged = True
            s.add(line)
        elif k < 0.67:  # truncated (disk full, crash): no duration, malformed
            line = _uncounted(gen, " duration=")
            s.add(line[: 80 + int(rng.random() * (line.index(" duration=") - 80))])
            s.malformed += 1
        elif k < 0.69:  # raw value with an LF splits a record: first part malformed, second skipped
            line = _uncounted(gen, " gen_ai.request.model=")
            cut = line.index(" gen_ai.request.model=") + len(" gen_ai.request.model=") + 3
            s.add(line[:cut], line[cut:])
            s.malformed += 1
        elif k < 0.72:  # a request line whose custom header value holds raw Latin-1 bytes
            line, _ = gen.request()
            if ' user.name="' in line:
                a = line.index(' user.name="') + len(' user.name="')
                b = line.index('"', a)
                s.add(line[:a].encode() + "Jürgen Müller".encode("latin-1") + line[b:].encode())
                s.invalid_utf8_requests += 1
            else:
                s.add(line)
        elif k < 0.75:
            s.add(bytes(b for b in rng.randbytes(60 + int(rng.random() * 100)) if b != 10))
        elif k < 0.77:
            s.add(b"\x00" * (16 + int(rng.random() * 200)))
        elif k < 0.80:
            s.add("")
        elif k < 0.86:
            s.add(*gen.gateway_noise(gen.tick()))
        elif k < 0.89:  # C26: debug upstream request, target with a space, quoted duration
            s.add(
                f"{gen.ts(gen.tick(), 6)}\tdebug\tupstream request\ttarget=api.openai.com:443 "
                "endpoint=162.159.140.245:443 transport=tls http.method=POST http.host=api.openai.com "
                'http.path=/v1/chat/completions http.version=HTTP/1.1 http.status=200 duration="1710ms"'
            )
        elif k < 0.91:
            s.add(*gen.panic())
        elif k < 0.93:
            s.add(*gen.startup(gen.tick())[:7])
        elif k < 0.96:  # CRLF from a tty container: still a request line once the CR is stripped
            s.add(gen.request()[0] + "\r")
        else:  # doc-style line with the TABs rendered as spaces (R05): still a request line
            line, _ = gen.request()
            s.add(line.replace("Z\tinfo\trequest ", "Z     info    request ", 1))
    return s


def compose_timestamps_ansi_log() -> Sample:
    """`docker compose logs -f --timestamps` on a TTY: coloured prefixes (incl. `;1`), ollama with tty CR."""
    gen = _gen(707, datetime(2026, 8, 24, 16, 0, 0, tzinfo=UTC))
    s = Sample(gen)
    colors = {"agentgateway-1": "36", "open-webui-1": "33", "keycloak-1": "32", "postgres-1": "35",
              "redis-1": "34", "ollama-1": "36;1"}  # fmt: skip
    pre = {name: compose_prefix(name, WIDTH, c) for name, c in colors.items()}
    r = gen.rng.random

    def add(name: str, line: str, us: int) -> None:
        s.add(f"{pre[name]}{gen.wrapper_ts(us, trimmed=False)} {line}")

    for boot in gen.startup(gen.tick()):
        add("agentgateway-1", boot, gen.us)
    ready = "2026-08-24 16:00:01.112 UTC [1] LOG:  database system is ready to accept connections"
    add("postgres-1", ready, gen.us)
    add("redis-1", "1:M 24 Aug 2026 16:00:01.201 * Ready to accept connections tcp", gen.us)
    for _ in range(420):
        x = r()
        if x < 0.6:
            line, us = gen.request()
            add("agentgateway-1", line, us)
        elif x < 0.75:
            add("open-webui-1", gen.webui_noise(gen.us), gen.tick())
        elif x < 0.82:
            add("keycloak-1", gen.keycloak_noise(gen.us), gen.tick())
        elif x < 0.92:
            minute = int(r() * 60)
            gin = f'[GIN] 2026/08/24 - 16:{minute:02d}:07 | 200 |  2.41s | 172.18.0.4 | POST "/api/chat"\r'
            add("ollama-1", gin, gen.tick())
        else:
            us = gen.tick()
            add("agentgateway-1", gen.gateway_noise(us)[0], us)
    return s


DESCRIPTIONS = {
    "compose.log": "`docker compose logs -f` (compose v2, no TTY): agentgateway-1 with open-webui-1 and "
    "keycloak-1 noise, multi-line startup, `warn\\trequest\\t…` traps, R20, a panic on stderr, the restart",
    "json-format.log": "`LOG_FORMAT=json`: request objects plus tracing objects (a multi-line message "
    'escaped in JSON, `scope:"request"` with a `message`)',
    "docker-json-file.log": "docker json-file driver envelopes (stdout + stderr); one 40 KB MCP line split "
    "into 3 partial chunks with a stderr entry between them",
    "cri.log": "Kubernetes CRI (`/var/log/pods/…`): `F` lines, one 20 KB line as `P` + `F` with a stderr "
    "line in between, a panic on stderr",
    "legacy-v0.6-v0.8.log": "upgrade history: v0.4 lines (other format), v0.6.0 (TAB before the first "
    "pair, padded µs, quoted `jwt.sub`/`error`, no custom fields), v0.8.1 (raw `error` with spaces, raw "
    "`jwt.sub` with a space, `llm.*` keys, `user.email` custom field)",
    "noise-and-errors.log": "good lines among garbage: truncated and LF-split request lines (malformed), "
    "random binary, NUL runs, raw Latin-1 bytes in a request line, empty lines, C24/C26/R20 traps, "
    "panic, startup continuations, CRLF, a doc-style line with spaces for TABs, one model name forging "
    "`user.email`",
    "compose-timestamps-ansi.log": "`docker compose logs -f --timestamps` on a TTY: ANSI-coloured "
    "prefixes (36, 33, 32, 35, 34, `36;1`), 9-digit daemon timestamps, `ollama-1` with `tty: true` "
    "(lines end in CR)",
}
BUILDERS: dict[str, Callable[[], Sample]] = {
    "compose.log": compose_log,
    "json-format.log": json_format_log,
    "docker-json-file.log": docker_json_file_log,
    "cri.log": cri_log,
    "legacy-v0.6-v0.8.log": legacy_log,
    "noise-and-errors.log": noise_and_errors_log,
    "compose-timestamps-ansi.log": compose_timestamps_ansi_log,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Regenerate the sample logs, expected.json and README.md.")
    ap.add_argument("--out", type=Path, default=HERE, help="directory to write into (default: samples/)")
    out: Path = ap.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    for name, build in BUILDERS.items():
        sample = build()
        sample.write(out / name)
        files[name] = sample.truth()
    totals = {
        k: sum(f[k] for f in files.values())
        for k in ("physical_lines", "request_lines", "malformed_lines", "errors", "invalid_utf8_lines")
    }
    expected = {
        "generator": "samples/generate.py (drawing and counting in bench/corpus.py)",
        "counting": {
            "user": "the user.email custom field after duration; `unknown` when absent",
            "team": "user_teams[user]; `unassigned` when the user is unknown",
            "provider": "gen_ai.provider.name / llm.provider; `unknown` when absent",
            "model": "response model when logged, else request model; `unknown` when neither",
            "tokens.input": "as logged (includes cache tokens)",
            "errors": "request lines with http.status >= 400",
            "skipped_lines": "readings (physical lines minus held partials) that are neither request nor "
            "malformed lines",
        },
        "user_teams": USER_TEAMS,
        "users": {
            u.email: {
                "id": u.id,
                "name": u.name,
                "name_header": u.name_header,
                "role": u.role,
                "team": u.team,
            }
            for u in USERS
        },
        "totals": totals,
        "files": files,
    }
    (out / "expected.json").write_text(
        json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out / "README.md").write_text(_readme(files, totals), encoding="utf-8")
    for name, f in files.items():
        print(f"{name}: {f['physical_lines']} lines, {f['request_lines']} requests", file=sys.stderr)
    return 0


def _readme(files: dict[str, Any], totals: dict[str, int]) -> str:
    rows = "\n".join(
        f"| `{n}` | {f['physical_lines']} | {f['request_lines']} | {f['malformed_lines']} "
        f"| {f['held_partials']} | {f['errors']} | {f['tokens']['input']} / {f['tokens']['output']} "
        f"| {f['cost_usd']} | {DESCRIPTIONS[n]} |"
        for n, f in files.items()
    )
    teams: dict[str, list[str]] = {}
    for email, team in USER_TEAMS.items():
        teams.setdefault(team, []).append(email)
    team_rows = "\n".join(f"| {t} | {', '.join(sorted(e))} |" for t, e in sorted(teams.items()))
    users = "\n".join(f"| {u.email} | {u.name} | `{u.name_header}` | {u.role} | {u.team} |" for u in USERS)
    return f"""# Sample logs

Generated by `python samples/generate.py` (seeded, stdlib only; the drawing and counting live in
`bench/corpus.py`, shared with the benchmark corpus). Do not edit by hand: change the generator and
rerun. `expected.json` holds the exact ground truth per file: request lines per user, team, provider,
model and status, tokens per type, gateway cost, errors, malformed and held lines.

| file | lines | requests | malformed | held | errors | input / output tokens | cost USD | what it shows |
|---|---|---|---|---|---|---|---|---|
{rows}

"held" = partial chunks an unwrapper holds for joining; "errors" = request lines with status ≥ 400;
cost = sum of the gateway's `agw.ai.usage.cost.total`. Totals: {totals["physical_lines"]} lines,
{totals["request_lines"]} request lines, {totals["malformed_lines"]} malformed, {totals["errors"]}
errors, {totals["invalid_utf8_lines"]} lines that are not valid UTF-8.

How the truth counts (also in `expected.json` → `counting`): the user is the `user.email` custom
field after `duration` (`unknown` when absent, e.g. v0.6.0 lines, 401s from scripts, MCP calls); the
team comes from the mapping below (`unassigned` for unknown users); the model is the response model
when logged, else the request model; input tokens are as logged (they include cache tokens); errors
are request lines with `http.status` ≥ 400. In `noise-and-errors.log` one request line carries a
forged `user.email` inside its raw model name: its true user is the one after `duration`.

## Users and teams (Open WebUI forwarded headers)

The gateway logs `user.email`, `user.id`, `user.name` (percent-encoded by Open WebUI), `user.role`
and `chat.id` as custom fields after `duration`.

| team | users |
|---|---|
{team_rows}

| user.email | name | user.name as logged | role | team |
|---|---|---|---|---|
{users}

Providers: `openai`, `anthropic`, `gcp.gemini`, `gcp.vertex_ai`, `bedrock`, `ollama`; gateway cost
(`agw.ai.usage.cost.total`) is logged for OpenAI and Anthropic models only.
"""


if __name__ == "__main__":
    raise SystemExit(main())
