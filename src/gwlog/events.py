"""The typed request event: what one gateway access-log line means.

The scanner and the reference parser both produce a ``ParsedLine`` (timestamp + typed fields,
exactly as the gateway wrote them); ``Event.from_parsed`` derives everything the sinks need
(provider, models, tokens by type, identity, cost) in one place so every sink agrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

# Field names as the gateway wrote them; the legacy ``llm.*`` names (v0.6–v0.9) are the fallbacks
# spelled out in ``Event.from_parsed``.
CACHE_READ_KEY = "gen_ai.usage.cache_read.input_tokens"
CACHE_WRITE_KEY = "gen_ai.usage.cache_creation.input_tokens"
REASONING_KEY = "gen_ai.usage.reasoning_tokens"
TTFT_KEY = "agw.ai.time_to_first_token"
COST_KEY = "agw.ai.usage.cost.total"

TOKEN_TYPES = ("input", "output", "cache_read", "cache_write", "reasoning")

# The archive schema, in order (issue #2); ``Event.to_record`` emits exactly these keys.
ARCHIVE_FIELDS = (
    "id", "ts", "user", "user_id", "user_email", "user_name", "user_role", "team", "chat_id",
    "provider", "model", "request_model", "response_model", "route", "gateway", "listener",
    "endpoint", "method", "host", "path", "status", "protocol", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "duration_ms", "ttft_s",
    "cost_usd", "cost_source", "error", "reason", "trace_id", "span_id", "source", "offset", "fields",
)  # fmt: skip


@dataclass(slots=True)
class ParsedLine:
    """A request line as the gateway wrote it: end-of-request time and every field, typed.

    ``fields`` values are int, float, str, bool, None, Decimal (cost), dict or list (custom CEL
    values); ``duration`` is an int of milliseconds. ``fmt`` is ``text`` or ``json``.
    """

    ts: datetime
    fields: dict[str, Any]
    fmt: str = "text"


@dataclass(slots=True)
class Identity:
    """Who sent the request, resolved from the configured candidate keys."""

    user: str | None = None
    user_id: str | None = None
    user_email: str | None = None
    user_name: str | None = None
    user_role: str | None = None
    chat_id: str | None = None
    team: str | None = None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(slots=True)
class Event:
    """One request, typed, with the derived fields every sink uses (archive schema of issue #2)."""

    ts: datetime
    fields: dict[str, Any]
    id: str | None = None
    source: str | None = None
    offset: int | None = None
    user: str | None = None
    user_id: str | None = None
    user_email: str | None = None
    user_name: str | None = None
    user_role: str | None = None
    team: str | None = None
    chat_id: str | None = None
    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    status: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    duration_ms: int | None = None
    ttft_s: float | None = None
    cost_usd: Decimal | None = None
    cost_source: str | None = None

    @classmethod
    def from_parsed(cls, parsed: ParsedLine) -> Event:
        """Derive provider, models, tokens, duration and gateway cost from the raw fields."""
        # Hot path (once per line): plain lookups; a newest-name value that is None falls back to the
        # legacy llm.* name.
        f = parsed.fields
        get = f.get
        cost = get(COST_KEY)
        ttft = get(TTFT_KEY)
        provider = get("gen_ai.provider.name")
        if provider is None:
            provider = get("llm.provider")
        req = get("gen_ai.request.model")
        if req is None:
            req = get("llm.request.model")
        resp = get("gen_ai.response.model")
        if resp is None:
            resp = get("llm.response.model")
        inp = get("gen_ai.usage.input_tokens")
        if inp is None:
            inp = get("llm.request.tokens")
        out = get("gen_ai.usage.output_tokens")
        if out is None:
            out = get("llm.response.tokens")
        status = get("http.status")
        cr = get(CACHE_READ_KEY)
        cw = get(CACHE_WRITE_KEY)
        rs = get(REASONING_KEY)
        dur = get("duration")
        gateway_cost = isinstance(cost, Decimal)
        tt = type(ttft)
        return cls(
            parsed.ts,
            f,
            provider=provider or None,
            request_model=req or None,
            response_model=resp or None,
            status=status if type(status) is int else None,
            input_tokens=inp if type(inp) is int else None,
            output_tokens=out if type(out) is int else None,
            cache_read_tokens=cr if type(cr) is int else None,
            cache_write_tokens=cw if type(cw) is int else None,
            reasoning_tokens=rs if type(rs) is int else None,
            duration_ms=dur if type(dur) is int else None,
            ttft_s=float(ttft) if tt is float or tt is int or _number(ttft) else None,  # type: ignore[arg-type]
            cost_usd=cost if gateway_cost else None,
            cost_source="gateway" if gateway_cost else None,
        )

    def apply_identity(self, identity: Identity) -> None:
        self.user = identity.user
        self.user_id = identity.user_id
        self.user_email = identity.user_email
        self.user_name = identity.user_name
        self.user_role = identity.user_role
        self.chat_id = identity.chat_id
        self.team = identity.team

    @property
    def model(self) -> str | None:
        """The model that answered when known, else the one asked for."""
        return self.response_model or self.request_model

    @property
    def error(self) -> str | None:
        value = self.fields.get("error")
        return None if value is None else str(value)

    @property
    def reason(self) -> str | None:
        value = self.fields.get("reason")
        return None if value is None else str(value)

    def tokens(self) -> dict[str, int]:
        """Tokens by type as gwlog counts them (``input`` includes cache tokens, as logged)."""
        out = {}
        for name, value in (
            ("input", self.input_tokens),
            ("output", self.output_tokens),
            ("cache_read", self.cache_read_tokens),
            ("cache_write", self.cache_write_tokens),
            ("reasoning", self.reasoning_tokens),
        ):
            if value:
                out[name] = value
        return out

    def to_record(self) -> dict[str, Any]:
        """The archive / ``explain --json`` object: ARCHIVE_FIELDS in order, absent values null."""
        f = self.fields
        return {
            "id": self.id,
            "ts": self.ts.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "user": self.user,
            "user_id": self.user_id,
            "user_email": self.user_email,
            "user_name": self.user_name,
            "user_role": self.user_role,
            "team": self.team,
            "chat_id": self.chat_id,
            "provider": self.provider,
            "model": self.model,
            "request_model": self.request_model,
            "response_model": self.response_model,
            "route": f.get("route"),
            "gateway": f.get("gateway"),
            "listener": f.get("listener"),
            "endpoint": f.get("endpoint"),
            "method": f.get("http.method"),
            "host": f.get("http.host"),
            "path": f.get("http.path"),
            "status": self.status,
            "protocol": f.get("protocol"),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "duration_ms": self.duration_ms,
            "ttft_s": self.ttft_s,
            "cost_usd": None if self.cost_usd is None else str(self.cost_usd),
            "cost_source": self.cost_source,
            "error": self.error,
            "reason": self.reason,
            "trace_id": f.get("trace.id"),
            "span_id": f.get("span.id"),
            "source": self.source,
            "offset": self.offset,
            "fields": {k: (str(v) if isinstance(v, Decimal) else v) for k, v in f.items()},
        }
