"""Realistic AgentGateway log corpus with ground truth: the one generator behind bench/ and samples/.

Why one generator: benchmarks, committed samples and end-to-end tests must agree on what a
"realistic" stream is and on the true totals, so every line is drawn here and counted as it is
drawn. Stdlib only and seeded: the same seed gives the same bytes on every machine.

    python bench/corpus.py --lines 100000 --format compose --out /tmp/c.log [--seed N]

writes FILE and FILE.expected.json (true counts: requests per user/team/provider/model/status,
tokens per type, cost, errors). Formats: text | compose | json | docker-json | cri.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

FORMATS = ("text", "compose", "json", "docker-json", "cri")
SPLIT = 16 * 1024  # docker copier buffer and containerd max_container_log_line_size
START = datetime(2026, 8, 20, 9, 0, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class User:
    """An Open WebUI user as forwarded in X-OpenWebUI-* headers."""

    email: str
    id: str
    name: str
    role: str
    team: str
    models: tuple[str, ...]  # request models this user picks from (repeats = weight)

    @property
    def name_header(self) -> str:
        """Open WebUI sends the name percent-encoded with spaces kept (peers.md §7)."""
        return quote(self.name.strip(), safe=" ")


USERS = (
    User(
        "alice.smith@example.com",
        "9f1c2a4e-1b7d-4c33-8f0a-2d5e6b7c8a91",
        "Alice Smith",
        "user",
        "Marketing",
        ("gpt-4o", "gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash"),
    ),
    User(
        "juergen.mueller@example.com",
        "3b8e0d52-7c41-4f9e-a1d6-5e2f8c9b0a17",
        "Jürgen Müller",
        "admin",
        "Platform",
        (
            "llama3.1:8b",
            "qwen2.5-coder:7b",
            "o3-mini",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "gpt-4o-mini",
        ),
    ),
    User(
        "chloe.dubois@example.com",
        "c2d4e6f8-0a1b-4c3d-9e5f-7a8b9c0d1e2f",
        "Chloé Dubois",
        "user",
        "Marketing",
        ("gpt-4o-mini", "gpt-4o-mini", "gemini-2.5-flash", "claude-3-5-haiku-latest"),
    ),
    User(
        "ravi.patel@example.com",
        "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
        "Ravi Patel",
        "user",
        "Platform",
        ("o3-mini", "qwen2.5-coder:7b", "anthropic.claude-3-5-sonnet-20240620-v1:0", "gemini-2.5-pro"),
    ),
    User(
        "sofia.garcia@example.com",
        "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b",
        "Sofía García",
        "user",
        "Security",
        ("claude-sonnet-4-5", "claude-sonnet-4-5", "gemini-2.5-pro", "gpt-4o"),
    ),
    User(
        "mei.chen@example.com",
        "7d8e9f0a-1b2c-4d3e-9f4a-5b6c7d8e9f0a",
        "Mei Chen",
        "admin",
        "Security",
        ("claude-3-5-haiku-latest", "llama3.1:8b", "gemini-2.5-flash"),
    ),
    User(
        "bob.oconnor@example.com",
        "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
        "Bob O'Connor",
        "user",
        "Marketing",
        ("gpt-4o", "claude-3-5-haiku-latest"),
    ),
    User(
        "ola.nordmann@example.com",
        "2f3a4b5c-6d7e-4f8a-9b0c-1d2e3f4a5b6c",
        "Ola Nordmann",
        "user",
        "Platform",
        ("llama3.1:8b", "gpt-4o-mini"),
    ),
)
USER_TEAMS = {u.email: u.team for u in USERS}
USER_WEIGHTS = (8, 6, 5, 4, 4, 3, 2, 1)  # some users are much heavier than others


@dataclass(frozen=True, slots=True)
class Model:
    """One model behind one route; prices in nano-USD per token (None = no cost catalog entry)."""

    provider: str
    request: str
    response: str
    route: str
    endpoint: str
    prices: tuple[int, int, int, int] | None  # input, output, cache_read, cache_write
    reasoning: bool = False
    cache: str = ""  # "" | "read" | "anthropic" (read + creation)


MODELS = {
    m.request: m
    for m in (
        Model(
            "openai",
            "gpt-4o",
            "gpt-4o-2024-08-06",
            "default/openai",
            "api.openai.com:443",
            (2500, 10000, 1250, 0),
            cache="read",
        ),
        Model(
            "openai",
            "gpt-4o-mini",
            "gpt-4o-mini-2024-07-18",
            "default/openai",
            "api.openai.com:443",
            (150, 600, 75, 0),
            cache="read",
        ),
        Model(
            "openai",
            "o3-mini",
            "o3-mini-2025-01-31",
            "default/openai",
            "api.openai.com:443",
            (1100, 4400, 550, 0),
            reasoning=True,
            cache="read",
        ),
        Model(
            "anthropic",
            "claude-sonnet-4-5",
            "claude-sonnet-4-5-20250929",
            "default/anthropic",
            "api.anthropic.com:443",
            (3000, 15000, 300, 3750),
            cache="anthropic",
        ),
        Model(
            "anthropic",
            "claude-3-5-haiku-latest",
            "claude-3-5-haiku-20241022",
            "default/anthropic",
            "api.anthropic.com:443",
            (800, 4000, 80, 1000),
            cache="anthropic",
        ),
        Model(
            "gcp.gemini",
            "gemini-2.5-flash",
            "gemini-2.5-flash",
            "default/gemini",
            "generativelanguage.googleapis.com:443",
            None,
            reasoning=True,
        ),
        Model(
            "gcp.vertex_ai",
            "gemini-2.5-pro",
            "gemini-2.5-pro",
            "default/vertex",
            "europe-west4-aiplatform.googleapis.com:443",
            None,
            reasoning=True,
        ),
        Model(
            "bedrock",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "default/bedrock",
            "bedrock-runtime.eu-central-1.amazonaws.com:443",
            None,
        ),
        Model("ollama", "llama3.1:8b", "llama3.1:8b", "default/ollama", "ollama:11434", None),
        Model("ollama", "qwen2.5-coder:7b", "qwen2.5-coder:7b", "default/ollama", "ollama:11434", None),
    )
}

TEMPERATURES = (("0.7", "0.7"), ("1", "1.0"), ("0.2", "0.2"), ("0.5", "0.5"))  # (text Display, JSON)
# Error messages as the gateway holds them; text mode Debug-quotes them (_rq), JSON mode does not.
ERR_503 = (
    'upstream call failed: Connect("tcp connect error", Os { code: 111, kind: ConnectionRefused, '
    'message: "Connection refused" })'
)
ERR_500 = "ai: failed to parse response: missing field `choices` at line 1 column 117"


def _rq(s: str) -> str:
    """Rust Debug quoting of a plain printable string (how `error` is written since v0.9.0)."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dec(nano: int) -> str:
    """Nano-units as a plain decimal (Rust Display / rust_decimal): no exponent, no trailing zeros."""
    s = f"{nano // 1_000_000_000}.{nano % 1_000_000_000:09d}".rstrip("0")
    return s[:-1] if s[-1] == "." else s


@dataclass(slots=True)
class Tally:
    """Ground truth, accumulated per (user, team, provider, model, status) and summed on export."""

    cells: dict[tuple[str, str, str, str, int], list[int]] = field(default_factory=dict)
    error_field_lines: int = 0
    ttft_lines: int = 0
    cost_lines: int = 0
    first_us: int | None = None
    last_us: int | None = None

    def add(self, user: str, team: str, provider: str, model: str, status: int, inp: int, out: int,
            cread: int, cwrite: int, reas: int, cost: int, ts_us: int) -> None:  # fmt: skip
        """Count one request line."""
        key = (user, team, provider, model, status)
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = [0, 0, 0, 0, 0, 0, 0]
        cell[0] += 1
        cell[1] += inp
        cell[2] += out
        cell[3] += cread
        cell[4] += cwrite
        cell[5] += reas
        cell[6] += cost
        if self.first_us is None:
            self.first_us = ts_us
        self.last_us = ts_us

    def requests(self) -> int:
        """Request lines counted so far."""
        return sum(cell[0] for cell in self.cells.values())

    def to_json(self) -> dict[str, Any]:
        """The ground-truth object tests assert against (cost as an exact decimal string)."""
        per: dict[str, dict[str, int]] = {k: {} for k in ("user", "team", "provider", "model", "status")}
        tokens = dict.fromkeys(("input", "output", "cache_read", "cache_write", "reasoning"), 0)
        tokens_by_user: dict[str, dict[str, int]] = {}
        cost_by_team: dict[str, int] = {}
        total = cost = errors = 0
        for (user, team, provider, model, status), cell in sorted(self.cells.items()):
            n = cell[0]
            total += n
            cost += cell[6]
            errors += n if status >= 400 else 0
            for name, value in zip(per, (user, team, provider, model, str(status)), strict=True):
                per[name][value] = per[name].get(value, 0) + n
            by_user = tokens_by_user.setdefault(user, dict.fromkeys(tokens, 0))
            for i, name in enumerate(tokens):
                tokens[name] += cell[i + 1]
                by_user[name] += cell[i + 1]
            if cell[6]:
                cost_by_team[team] = cost_by_team.get(team, 0) + cell[6]
        return {
            "request_lines": total,
            "per_user": per["user"],
            "per_team": per["team"],
            "per_provider": per["provider"],
            "per_model": per["model"],
            "per_status": per["status"],
            "tokens": tokens,
            "tokens_by_user": tokens_by_user,
            "cost_usd": _dec(cost),
            "cost_usd_by_team": {t: _dec(c) for t, c in sorted(cost_by_team.items())},
            "cost_lines": self.cost_lines,
            "errors": errors,
            "error_field_lines": self.error_field_lines,
            "ttft_lines": self.ttft_lines,
            "first_ts": _iso(self.first_us),
            "last_ts": _iso(self.last_us),
        }


def _iso(us: int | None) -> str | None:
    if us is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(us // 1_000_000)) + f".{us % 1_000_000:06d}Z"


class Generator:
    """Draws gateway request lines, tracing noise and neighbour-service noise, counting the truth.

    ``padded=False`` writes the pre-PR #3370 unpadded microsecond fraction (v1.4.1 and older).
    """

    def __init__(
        self, seed: int = 1, start: datetime = START, mean_gap_ms: float = 2000.0, padded: bool = False
    ) -> None:
        self.rng = random.Random(seed)
        self.us = int(start.timestamp()) * 1_000_000
        self.gap_us = int(mean_gap_ms * 2000)  # uniform(0, 2*mean)
        self.padded = padded
        self.tally = Tally()
        self._sec = -1
        self._sec_s = ""
        pool = [u for u, w in zip(USERS, USER_WEIGHTS, strict=True) for _ in range(w)]
        self._users = pool
        self._chat: dict[str, str] = {}
        self._tails = {u.email: self._user_tail(u) for u in USERS}
        self._pieces = {name: self._model_pieces(m) for name, m in MODELS.items()}

    # -- time -----------------------------------------------------------------------------------
    def tick(self) -> int:
        """Advance the clock by a random gap; return µs since the epoch."""
        self.us += int(self.rng.random() * self.gap_us) + 1
        return self.us

    def ts(self, us: int, digits: int | None = None) -> str:
        """Timestamp text: gateway style (unpadded µs) or fixed ``digits`` (wrappers, tracing)."""
        sec, frac = divmod(us, 1_000_000)
        if sec != self._sec:
            self._sec = sec
            self._sec_s = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        if digits is None:
            return f"{self._sec_s}.{frac:06d}Z" if self.padded else f"{self._sec_s}.{frac}Z"
        if digits == 9:
            return f"{self._sec_s}.{frac:06d}{us % 997:03d}Z"
        return f"{self._sec_s}.{frac:06d}Z"

    def wrapper_ts(self, us: int, trimmed: bool = True) -> str:
        """Docker/CRI RFC3339Nano (trailing zeros trimmed) or RFC3339NanoFixed, a little after ``us``."""
        s = self.ts(us + 31, 9)
        if not trimmed:
            return s
        body = s[:-1].rstrip("0").rstrip(".")
        return body + "Z"

    # -- identity -------------------------------------------------------------------------------
    @staticmethod
    def _user_tail(u: User) -> tuple[str, str]:
        text = f' user.email="{u.email}" user.id="{u.id}" user.name="{u.name_header}" user.role="{u.role}"'
        js = (
            f',"user.email":"{u.email}","user.id":"{u.id}","user.name":{json.dumps(u.name_header)},'
            f'"user.role":"{u.role}"'
        )
        return text, js

    @staticmethod
    def _model_pieces(m: Model) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Constant text per model (route, route+endpoint, provider+request model, response model)."""
        text = (
            f"route={m.route}",
            f"route={m.route} endpoint={m.endpoint}",
            f" protocol=llm gen_ai.operation.name=chat gen_ai.provider.name={m.provider}"
            f" gen_ai.request.model={m.request}",
            f" gen_ai.response.model={m.response} gen_ai.usage.input_tokens=",
        )
        js = (
            f'"route":"{m.route}"',
            f'"route":"{m.route}","endpoint":"{m.endpoint}"',
            f',"protocol":"llm","gen_ai.operation.name":"chat","gen_ai.provider.name":"{m.provider}",'
            f'"gen_ai.request.model":"{m.request}"',
            f',"gen_ai.response.model":"{m.response}","gen_ai.usage.input_tokens":',
        )
        return text, js

    def _uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def _chat_id(self, email: str) -> str | None:
        r = self.rng.random()
        if r < 0.08:  # background tasks (title/tags generation) carry no chat id
            return None
        chat = self._chat.get(email)
        if chat is None or r > 0.9:
            chat = self._chat[email] = self._uuid()
        return chat

    # -- request lines --------------------------------------------------------------------------
    def request(self, json_mode: bool = False) -> tuple[str, int]:
        """One current-format LLM request line (text or LOG_FORMAT=json) and its end time in µs."""
        rng = self.rng
        r = rng.random
        us = self.tick()
        kind = r()
        if kind < 0.02:
            return self._unauthorized(us, json_mode), us
        if kind < 0.05:
            return self._models_list(us, json_mode), us
        user = self._users[int(r() * len(self._users))]
        model = MODELS[user.models[int(r() * len(user.models))]]
        roll = r()
        status, endpoint, error, reason = 200, True, "", ""
        if roll < 0.035:
            if roll < 0.012:
                status, endpoint, error, reason = 429, False, "rate limit exceeded", "RateLimit"
            elif roll < 0.02:
                status = 429  # the provider's own limit: response came from upstream, no error field
            elif roll < 0.026:
                status, error, reason = 500, ERR_500, "Internal"
            elif roll < 0.032:
                status, error, reason = 503, ERR_503, "UpstreamFailure"
            else:
                status, endpoint, error, reason = 503, False, "no healthy backends", "NoHealthyBackend"
        # Small draws from one word: sample 0-7, jitter 8-15, temperature 16-18, ip 19-20, port 21-34,
        # per-token pace 35-38, streamed 39-41, cache write 42-43, cache read 44.
        bits = rng.getrandbits(45)
        inp = out = cread = cwrite = reas = ttft = tpot = cost = 0
        if status == 200:
            inp = 40 + int(r() * r() * 6000)
            out = 10 + int(r() * 900)
            if model.cache and bits >> 44:
                cread = int(inp * r() * 0.8)
                if model.cache == "anthropic" and bits >> 42 & 3 == 0:
                    cwrite = int((inp - cread) * r() * 0.5)
            if model.reasoning:
                reas = int(out * r() * 0.8)
            if bits >> 39 & 7 < 6:  # streamed (75 %): the gateway records time to first token
                # ns, never ending in 0, so "{s}.{ns:09d}" is already Rust's shortest Display
                ttft = 150_000_001 + 10 * int(r() * 140_000_000)
                tpot = 4_000_001 + 10 * int(r() * 2_600_000)
                dur = (ttft + out * tpot) // 1_000_000 + (bits >> 8 & 31)
            else:
                dur = 300 + out * (5 + (bits >> 35 & 15)) + (bits >> 8 & 255)
            if model.prices is not None:
                pi, po, pr, pw = model.prices
                cost = (inp - cread - cwrite) * pi + cread * pr + cwrite * pw + out * po
        elif endpoint:
            dur = 50 + int(r() * (30000 if status == 503 else 900))
        else:
            dur = bits >> 8 & 3
        chat = self._chat_id(user.email)
        # Count the truth inline: this runs once per line and a call would cost a tenth of the budget.
        tally = self.tally
        key = (
            user.email,
            user.team,
            model.provider,
            model.response if status == 200 else model.request,
            status,
        )
        cell = tally.cells.get(key)
        if cell is None:
            cell = tally.cells[key] = [0, 0, 0, 0, 0, 0, 0]
        cell[0] += 1
        if status == 200:
            cell[1] += inp
            cell[2] += out
            cell[3] += cread
            cell[4] += cwrite
            cell[5] += reas
            cell[6] += cost
            tally.ttft_lines += ttft > 0
            tally.cost_lines += model.prices is not None
        elif error:
            tally.error_field_lines += 1
        if tally.first_us is None:
            tally.first_us = us
        tally.last_us = us
        d = (us, model, endpoint, bits, status, inp, cread, cwrite, out, reas, ttft, tpot, cost, error,
             reason, dur, user.email, chat)  # fmt: skip
        return (self._json(d) if json_mode else self._text(d)), us

    def _text(self, d: tuple[Any, ...]) -> str:
        """Render a drawn request in text mode (fields in the §4 order)."""
        us, m, endpoint, bits, status, inp, cread, cwrite, out, reas, ttft, tpot, cost, error, reason, dur, \
            email, chat = d  # fmt: skip
        route, route_ep, mid, resp = self._pieces[m.request][0]
        usage = trace = extra = ""
        if status == 200:
            usage = f"{resp}{inp}"
            if cwrite:
                usage += f" gen_ai.usage.cache_creation.input_tokens={cwrite}"
            if m.cache:
                usage += f" gen_ai.usage.cache_read.input_tokens={cread}"
            usage += f" gen_ai.usage.output_tokens={out}"
            if m.reasoning:
                usage += f" gen_ai.usage.reasoning_tokens={reas}"
            if ttft:
                usage += (
                    f" agw.ai.time_to_first_token={ttft // 1_000_000_000}.{ttft % 1_000_000_000:09d}"
                    f" agw.ai.time_per_output_token=0.{tpot:09d}"
                )
            if m.prices is not None:
                usage += f" agw.ai.usage.cost.total={_dec(cost)}"
        if bits & 0xFF < 154:  # 60 % sampled
            ids = f"{self.rng.getrandbits(192):048x}"
            trace = f" trace.id={ids[:32]} span.id={ids[32:]}"
        t = bits >> 16 & 7
        if t < 4:
            extra = f" gen_ai.request.temperature={TEMPERATURES[t][0]}"
        if error:
            extra += f" error={_rq(error)} reason={reason}"
        tail = self._tails[email][0]
        if chat:
            tail += f' chat.id="{chat}"'
        return (
            f"{self.ts(us)}\tinfo\trequest gateway=default/default listener=llm"
            f" {route_ep if endpoint else route}"
            f" src.addr=172.18.0.{5 + (bits >> 19 & 3)}:{32768 + (bits >> 21 & 16383)} http.method=POST"
            f" http.host=agentgateway:4000 http.path=/v1/chat/completions http.version=HTTP/1.1"
            f" http.status={status}{trace}{mid}{usage}{extra} duration={dur}ms{tail}"
        )

    def _json(self, d: tuple[Any, ...]) -> str:
        """Render the same drawn request as a LOG_FORMAT=json line (C02 shape)."""
        us, m, endpoint, bits, status, inp, cread, cwrite, out, reas, ttft, tpot, cost, error, reason, dur, \
            email, chat = d  # fmt: skip
        route, route_ep, mid, resp = self._pieces[m.request][1]
        usage = trace = extra = ""
        if status == 200:
            usage = f"{resp}{inp}"
            if cwrite:
                usage += f',"gen_ai.usage.cache_creation.input_tokens":{cwrite}'
            if m.cache:
                usage += f',"gen_ai.usage.cache_read.input_tokens":{cread}'
            usage += f',"gen_ai.usage.output_tokens":{out}'
            if m.reasoning:
                usage += f',"gen_ai.usage.reasoning_tokens":{reas}'
            if ttft:
                usage += (
                    f',"agw.ai.time_to_first_token":{ttft // 1_000_000_000}.{ttft % 1_000_000_000:09d},'
                    f'"agw.ai.time_per_output_token":0.{tpot:09d}'
                )
            if m.prices is not None:
                usage += f',"agw.ai.usage.cost.total":"{_dec(cost)}"'
        if bits & 0xFF < 154:
            ids = f"{self.rng.getrandbits(192):048x}"
            trace = f',"trace.id":"{ids[:32]}","span.id":"{ids[32:]}"'
        t = bits >> 16 & 7
        if t < 4:
            extra = f',"gen_ai.request.temperature":{TEMPERATURES[t][1]}'
        if error:
            extra += f',"error":{json.dumps(error)},"reason":"{reason}"'
        tail = self._tails[email][1]
        if chat:
            tail += f',"chat.id":"{chat}"'
        return (
            f'{{"level":"info","time":"{self.ts(us)}","scope":"request","gateway":"default/default",'
            f'"listener":"llm",{route_ep if endpoint else route},"src.addr":"172.18.0.{5 + (bits >> 19 & 3)}:'
            f'{32768 + (bits >> 21 & 16383)}","http.method":"POST","http.host":"agentgateway:4000",'
            f'"http.path":"/v1/chat/completions","http.version":"HTTP/1.1","http.status":{status}'
            f'{trace}{mid}{usage}{extra},"duration":"{dur}ms"{tail}}}'
        )

    def _unauthorized(self, us: int, json_mode: bool) -> str:
        """A script without a token: 401 JwtAuth, no identity headers, no gen_ai fields (C05)."""
        port = 40000 + int(self.rng.random() * 20000)
        self.tally.add("unknown", "unassigned", "unknown", "unknown", 401, 0, 0, 0, 0, 0, 0, us)
        self.tally.error_field_lines += 1
        if json_mode:
            return (
                f'{{"level":"info","time":"{self.ts(us)}","scope":"request","gateway":"default/default",'
                f'"listener":"llm","route":"default/openai","src.addr":"172.18.0.1:{port}","http.method":"POST",'
                f'"http.host":"agentgateway:4000","http.path":"/v1/chat/completions","http.version":"HTTP/1.1",'
                f'"http.status":401,"protocol":"llm","error":"authentication failure: no bearer token found",'
                f'"reason":"JwtAuth","duration":"0ms"}}'
            )
        return (
            f"{self.ts(us)}\tinfo\trequest gateway=default/default listener=llm route=default/openai"
            f" src.addr=172.18.0.1:{port} http.method=POST http.host=agentgateway:4000"
            f" http.path=/v1/chat/completions http.version=HTTP/1.1 http.status=401 protocol=llm"
            f' error="authentication failure: no bearer token found" reason=JwtAuth duration=0ms'
        )

    def _models_list(self, us: int, json_mode: bool) -> str:
        """Open WebUI polling the model list: a request line without gen_ai fields."""
        user = self._users[int(self.rng.random() * len(self._users))]
        dur = 20 + int(self.rng.random() * 200)
        self.tally.add(user.email, user.team, "unknown", "unknown", 200, 0, 0, 0, 0, 0, 0, us)
        if json_mode:
            return (
                f'{{"level":"info","time":"{self.ts(us)}","scope":"request","gateway":"default/default",'
                f'"listener":"llm","route":"default/openai","endpoint":"api.openai.com:443",'
                f'"src.addr":"172.18.0.5:41000","http.method":"GET","http.host":"agentgateway:4000",'
                f'"http.path":"/v1/models","http.version":"HTTP/1.1","http.status":200,"protocol":"llm",'
                f'"duration":"{dur}ms"{self._tails[user.email][1]}}}'
            )
        return (
            f"{self.ts(us)}\tinfo\trequest gateway=default/default listener=llm route=default/openai"
            f" endpoint=api.openai.com:443 src.addr=172.18.0.5:41000 http.method=GET"
            f" http.host=agentgateway:4000"
            f" http.path=/v1/models http.version=HTTP/1.1 http.status=200 protocol=llm duration={dur}ms"
            f"{self._tails[user.email][0]}"
        )

    def mcp_big(self, size: int) -> tuple[str, int]:
        """An MCP tools/call line with a huge custom field (> 16 KiB: split by docker and containerd)."""
        us = self.tick()
        self.tally.add("unknown", "unassigned", "unknown", "unknown", 200, 0, 0, 0, 0, 0, 0, us)
        blob = ("AHOVCJQXELSZGNUBIPWDKRYFMT" * (size // 26 + 1))[:size]
        return (
            f"{self.ts(us)}\tinfo\trequest gateway=default/default listener=mcp route=default/mcp"
            f" src.addr=172.18.0.9:61990 http.method=POST http.host=agentgateway:4000 http.path=/mcp"
            f" http.version=HTTP/1.1 http.status=200 protocol=mcp mcp.method.name=tools/call mcp.target=files"
            f" mcp.resource.type=tool gen_ai.tool.name=read_file duration=9ms"
            f' tool_result={{"content": [{{"type": "text", "text": "{blob}"}}]}}'
        ), us

    def legacy(self, version: str) -> tuple[str, int]:
        """A v0.6.0/0.6.1 (TAB form, quoted jwt.sub/error) or v0.6.2–v0.8 (raw error) request line."""
        r = self.rng.random
        us = self.tick()
        user = self._users[int(r() * len(self._users))]
        model = MODELS[("gpt-4o", "gpt-4o-mini", "claude-3-5-haiku-latest")[int(r() * 3)]]
        old = version in ("0.6.0", "0.6.1")
        ts = self.ts(us, 6) if old else self.ts(us)
        port = 50000 + int(r() * 15000)
        roll = r()
        status = 200 if roll > 0.1 else (401 if roll < 0.04 else 503)
        inp, out = 20 + int(r() * 3000), 5 + int(r() * 700)
        sub = f'"{user.name}"' if old else user.name  # raw jwt.sub may hold spaces (C09)
        head = (
            f"{ts}\tinfo\trequest{chr(9) if old else ' '}gateway=bind/3000 listener=listener0 route=route0"
            f"{'' if status == 401 else ' endpoint=' + model.endpoint} src.addr=127.0.0.1:{port}"
            f" http.method=POST http.host=localhost:3000 http.path=/v1/chat/completions http.version=HTTP/1.1"
            f" http.status={status}"
        )
        email, team = (user.email, user.team) if not old else ("unknown", "unassigned")
        if status == 401:
            self.tally.add(email, team, "unknown", "unknown", 401, 0, 0, 0, 0, 0, 0, us)
            self.tally.error_field_lines += 1
            err = "authentication failure: token expired"
            line = f"{head} error={_rq(err) if old else err} duration=0ms"
        else:
            ok = status == 200
            if not ok:
                inp = out = 0
            counted = model.response if ok else model.request
            self.tally.add(email, team, model.provider, counted, status, inp, out, 0, 0, 0, 0, us)
            llm = f" llm.provider={model.provider} llm.request.model={model.request}"
            if ok:
                llm += f" llm.request.tokens={inp} llm.response.model={model.response} llm.response.tokens={out}"
                tail = f" duration={200 + out * 12}ms"
            else:
                self.tally.error_field_lines += 1
                e = "upstream call failed: Connect: tcp connect error: Connection refused (os error 111)"
                tail = f" error={_rq(e) if old else e} duration=3ms"
            line = f"{head} jwt.sub={sub}{llm}{tail}"
        if not old:
            line += f' user.email="{user.email}" user.name="{user.name_header}"'
        return line, us

    # -- noise ----------------------------------------------------------------------------------
    def gateway_noise(self, us: int) -> list[str]:
        """One tracing event from the gateway's stdout (text mode), including the traps of §8."""
        ts = self.ts(us, 6)
        k = int(self.rng.random() * 6)
        if k == 0:  # R20, very frequent behind load balancers
            return [
                f"{ts}\twarn\tdownstream connection\tfailed to terminate TLS\tsrc.addr=10.200.14.241:51767 "
                'protocol=tls error="unexpected end of file"'
            ]
        if k == 1:  # C24: target `request`, level warn, message after TAB: NOT an access log
            return [f"{ts}\twarn\trequest\tfailed to enqueue request log database record\terr=Full(..)"]
        if k == 2:
            return [
                f"{ts}\tinfo\tmanagement::hyper_helpers\tlistener established\taddress=127.0.0.1:15000 "
                'component="admin"'
            ]
        if k == 3:
            return [f"{ts}\twarn\tproxy::httpproxy\tproxy error: upstream call failed\tconnection.id=41 request.id=977"]
        if k == 4:
            return [f"{ts}\tinfo\tagentgateway::state_manager\tconfig reloaded\t"]
        return [f"{ts}\twarn\trequest\tfailed to enqueue request log database record\terr=Closed"]

    def json_noise(self, us: int) -> str:
        """A LOG_FORMAT=json tracing event (R23 shape): has ``message``, scope is a module path."""
        ts = self.ts(us, 6)
        if self.rng.random() < 0.5:
            return (
                f'{{"level":"warn","time":"{ts}","scope":"request","message":"failed to enqueue request log '
                'database record","err":"Full(..)"}'
            )
        return (
            f'{{"level":"info","time":"{ts}","scope":"agentgateway::management::hyper_helpers",'
            '"message":"listener established","address":"127.0.0.1:15000","component":"admin"}'
        )

    def startup(self, us: int, version: str = "1.4.1") -> list[str]:
        """Multi-line startup output (C25): continuation lines carry no timestamp."""
        t = [self.ts(us + i * 117, 6) for i in range(6)]
        return [
            f"{t[0]}\tinfo\tagentgateway_app::commands::run\tversion: {{",
            f'  "version": "{version}",',
            '  "git_revision": "0123456789abcdef",',
            '  "rust_version": "1.98.0",',
            '  "build_profile": "release",',
            '  "build_target": "x86_64-unknown-linux-gnu"',
            "}\t",
            f"{t[1]}\tinfo\tagentgateway_app::commands::run\trunning with config: logging:",
            "  level: info",
            "  format: text",
            "  fields:",
            "    add:",
            "      user.email: 'request.headers[\"x-openwebui-user-email\"]'",
            "...\t",
            f'{t[2]}\tinfo\tmanagement::hyper_helpers\tlistener established\taddress=127.0.0.1:15000 component="admin"',
            f'{t[3]}\tinfo\tmanagement::hyper_helpers\tlistener established\taddress=[::]:15020 component="stats"',
            f'{t[4]}\tinfo\tproxy::gateway\tstarted bind\tbind="bind/4000"',
            f"{t[5]}\tinfo\tagentgateway::app\tserving UI at http://localhost:15000/ui\t",
        ]

    @staticmethod
    def panic() -> list[str]:
        """Rust's default panic message on stderr (C27)."""
        return [
            "thread 'tokio-runtime-worker' panicked at crates/agentgateway/src/proxy/httpproxy.rs:812:10:",
            "called `Option::unwrap()` on a `None` value",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        ]

    def webui_noise(self, us: int) -> str:
        """Open WebUI (uvicorn access log or loguru line; loguru itself contains ' | ')."""
        r = self.rng.random
        local = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(us // 1_000_000)) + f".{us // 1000 % 1000:03d}"
        k = int(r() * 4)
        if k == 0:
            return f'INFO:     172.18.0.1:{40000 + int(r() * 20000)} - "GET /api/models HTTP/1.1" 200 OK'
        if k == 1:
            port = 40000 + int(r() * 20000)
            return f'INFO:     172.18.0.1:{port} - "POST /api/chat/completions HTTP/1.1" 200 OK'
        if k == 2:
            return f"{local} | INFO     | open_webui.routers.openai:get_all_models:398 - get_all_models() - {{}}"
        return (
            f"{local} | INFO     | uvicorn.protocols.http.httptools_impl:send:476 - 172.18.0.1:0 - "
            '"GET /_app/version.json HTTP/1.1" 200 - {}'
        )

    def keycloak_noise(self, us: int) -> str:
        """Keycloak (Quarkus) log lines."""
        local = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(us // 1_000_000)) + f",{us // 1000 % 1000:03d}"
        if self.rng.random() < 0.7:
            return (
                f'{local} WARN  [org.keycloak.events] (executor-thread-4) type="LOGIN_ERROR", '
                'realmId="acme", clientId="open-webui", userId="null", ipAddress="172.18.0.1", '
                'error="user_not_found"'
            )
        return (
            f"{local} INFO  [org.keycloak.services] (executor-thread-2) KC-SERVICES0077: Created temporary "
            "admin user with username admin"
        )


# -- wrappers -------------------------------------------------------------------------------------
def compose_prefix(name: str, width: int, color: str | None = None) -> str:
    """Compose v2 prefix: name padded to ``width`` then ' | ', optionally ANSI-coloured (W01, W07)."""
    p = f"{name:<{width}} | "
    return f"\x1b[{color}m{p}\x1b[0m" if color else p


def docker_json(line: str, stream: str, wtime: str) -> list[str]:
    """json-file entries for one line: split every 16 KiB, only the last chunk ends in \\n (W09, W11)."""
    data = line + "\n"
    chunks = [data[i : i + SPLIT] for i in range(0, len(data), SPLIT)] if len(data) > SPLIT else [data]
    out = []
    for chunk in chunks:
        enc = json.dumps(chunk)
        if "<" in enc or ">" in enc or "&" in enc:
            enc = enc.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        out.append(f'{{"log":{enc},"stream":"{stream}","time":"{wtime}"}}')
    return out


def cri(line: str, stream: str, wtime: str) -> list[str]:
    """CRI lines for one line: containerd splits at 16 KiB into P… then F (W12, W13)."""
    if len(line) <= SPLIT:
        return [f"{wtime} {stream} F {line}"]
    chunks = [line[i : i + SPLIT] for i in range(0, len(line), SPLIT)]
    return [f"{wtime} {stream} {'F' if i == len(chunks) - 1 else 'P'} {c}" for i, c in enumerate(chunks)]


# -- corpus ---------------------------------------------------------------------------------------
def corpus(fmt: str, lines: int, seed: int = 1, noise: float = 0.03) -> tuple[Iterator[list[str]], Generator]:
    """Batches of physical lines of a ``fmt`` corpus (about ``lines`` in all) and the generator.

    The generator's ``tally`` holds the truth once the iterator is exhausted. ``noise`` is the share
    of non-request events (gateway tracing lines, other compose services).
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    gen = Generator(seed=seed, mean_gap_ms=30.0)
    return _batches(gen, fmt, lines, noise), gen


def _batches(gen: Generator, fmt: str, n: int, noise: float, size: int = 4096) -> Iterator[list[str]]:
    r = gen.rng.random
    request = gen.request
    json_mode = fmt == "json"
    width = len("agentgateway-1") + 1
    gw, webui, kc = (compose_prefix(s, width) for s in ("agentgateway-1", "open-webui-1", "keycloak-1"))
    wrap = {"docker-json": docker_json, "cri": cri}.get(fmt)
    batch: list[str] = [gw + line for line in gen.startup(gen.us)] if fmt == "compose" else []
    emitted = len(batch)
    add = batch.append
    while emitted < n:
        x = r()
        if x >= noise:
            line, us = request(json_mode)
        elif x < 0.0003 and not json_mode:  # now and then a > 16 KiB MCP line (split by docker, containerd)
            line, us = gen.mcp_big(18_000 + int(r() * 30_000))
        else:
            us = gen.us
            if json_mode:
                line = gen.json_noise(us)
            elif fmt == "compose" and r() < 0.7:
                add((webui if r() < 0.75 else kc) + (gen.webui_noise(us) if r() < 0.75 else gen.keycloak_noise(us)))
                emitted += 1
                continue
            else:
                line = gen.gateway_noise(us)[0]
        if wrap is not None:
            chunks = wrap(line, "stdout", gen.wrapper_ts(us))
            batch.extend(chunks)
            emitted += len(chunks)
        else:
            add(gw + line if fmt == "compose" else line)
            emitted += 1
        if len(batch) >= size:
            yield batch
            batch = []
            add = batch.append
    if batch:
        yield batch


def write_corpus(out: Path, fmt: str, lines: int, seed: int = 1) -> dict[str, Any]:
    """Write the corpus and ``<out>.expected.json``; return the truth."""
    batches, gen = corpus(fmt, lines, seed)
    physical = 0
    with out.open("wb") as f:
        for batch in batches:
            f.write(("\n".join(batch) + "\n").encode())
            physical += len(batch)
    truth = {"format": fmt, "seed": seed, "physical_lines": physical, **gen.tally.to_json()}
    truth["user_teams"] = USER_TEAMS
    Path(f"{out}.expected.json").write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return truth


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--lines", type=int, default=100_000, help="physical lines to write (about)")
    ap.add_argument("--format", choices=FORMATS, default="text")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    truth = write_corpus(args.out, args.format, args.lines, args.seed)
    dt = time.perf_counter() - t0
    n = truth["physical_lines"]
    print(
        f"{args.out}: {n} lines ({truth['request_lines']} requests) in {dt:.2f}s, {n / dt:,.0f} lines/s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
