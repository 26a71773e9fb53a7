"""What a request cost: the gateway's own figure, a configured override, or genai-prices.

``Pricer.price`` runs once per event. ``genai_prices.calc_price`` costs ~65 µs a call, too slow for
backfill, so the price table of a (provider, model, day) is looked up once and turned into linear
per-token rates (per tier bucket); the per-event work is a handful of Decimal multiplications.
The rates are read off genai-prices itself by probing its calculator, so they agree with it exactly.
"""

from __future__ import annotations

import fnmatch
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from genai_prices.types import ModelInfo, ModelPrice

# genai_prices (pydantic models + the price snapshot: ~13 MiB, ~0.1 s) is imported only when an
# event needs it; runs whose lines all carry the gateway's own cost never load it.

from gwlog.errors import ConfigError, check_keys, expect_bool
from gwlog.events import Event

_MTOK = Decimal(1_000_000)
_ZERO = Decimal(0)
_CACHE_MAX = 65536

# AgentGateway's provider names (short config names and OTel gen_ai.provider.name values) →
# genai-prices provider ids. ``None``: never price with genai-prices (local models cost nothing
# per token; an override still applies). Names not listed are passed through unchanged.
DEFAULT_PROVIDERS: dict[str, str | None] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "gcp.gemini": "google",
    "google": "google",
    "vertex": "google",
    "vertexai": "google",
    "gcp.vertex_ai": "google",
    "bedrock": "aws",
    "aws.bedrock": "aws",
    "azure": "azure",
    "azureopenai": "azure",
    "azure.openai": "azure",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
    "ollama": None,
    "vllm": None,
}
# Hosts that serve other vendors' models (Claude on Vertex/Bedrock): on a miss, let genai-prices
# find the vendor from the model name.
_MULTI_VENDOR = frozenset({"google", "aws", "azure"})


def _usd(value: Any, file: str, key: str) -> Decimal:
    """A price in USD per million tokens: a number, or a string for exact decimals."""
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidOperation
        out = Decimal(str(value).strip())
    except InvalidOperation:
        out = Decimal(-1)
    if not out.is_finite() or out < 0:
        raise ConfigError(
            file,
            key,
            f"expected a non-negative price in USD per million tokens, got {value!r}",
            f"write {key.split()[-1]} = 2.5",
        )
    return out


@dataclass(frozen=True, slots=True)
class Override:
    """Configured rates in USD per million tokens, as written; ``_per_token`` is what ``cost`` uses."""

    pattern: str
    provider: str | None
    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    reasoning: Decimal
    _per_token: tuple[Decimal, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rates = (self.input, self.cache_read, self.cache_write, self.output, self.reasoning)
        object.__setattr__(self, "_per_token", tuple(r / _MTOK for r in rates))

    def matches(self, provider: str | None, model: str) -> bool:
        if self.provider is not None and provider != self.provider:
            return False
        return fnmatch.fnmatchcase(model, self.pattern)

    def cost(self, inp: int, cr: int, cw: int, out: int, rs: int) -> Decimal:
        r_in, r_cr, r_cw, r_out, r_rs = self._per_token
        return (inp - cr - cw) * r_in + cr * r_cr + cw * r_cw + (out - rs) * r_out + rs * r_rs


_OVERRIDE_KEYS = ("input", "output", "cache_read", "cache_write", "reasoning", "provider")


@dataclass(frozen=True, slots=True)
class PricingConfig:
    """``[pricing]``: gwlog's own cost calculation (the gateway's cost, when logged, is kept)."""

    enabled: bool = True
    prefer_gateway: bool = True
    overrides: tuple[Override, ...] = ()
    providers: Mapping[str, str | None] = field(default_factory=lambda: dict(DEFAULT_PROVIDERS))

    KEYS = ("enabled", "prefer_gateway", "overrides", "providers")

    @classmethod
    def from_section(cls, section: dict[str, Any], file: str) -> Self:
        check_keys(section, cls.KEYS, file, "[pricing]")
        kw: dict[str, Any] = {}
        for key in ("enabled", "prefer_gateway"):
            if key in section:
                kw[key] = expect_bool(section[key], file, f"[pricing] {key}")
        if "providers" in section:
            table = section["providers"]
            if not isinstance(table, dict):
                raise ConfigError(
                    file,
                    "[pricing] providers",
                    f"expected a table, got {table!r}",
                    'write [pricing.providers] with "my-openai" = "openai"',
                )
            providers = dict(DEFAULT_PROVIDERS)
            for name, target in table.items():
                if not isinstance(target, str):
                    raise ConfigError(
                        file,
                        f'[pricing.providers] "{name}"',
                        f"expected a string, got {target!r}",
                        'write "my-openai" = "openai", or "" to never use genai-prices',
                    )
                providers[name.lower()] = target.strip().lower() or None
            kw["providers"] = providers
        if "overrides" in section:
            kw["overrides"] = cls._overrides(section["overrides"], file)
        return cls(**kw)

    @staticmethod
    def _overrides(table: Any, file: str) -> tuple[Override, ...]:
        example = '[pricing.overrides."gpt-4o*"] with input = 2.5, output = 10'
        if not isinstance(table, dict):
            raise ConfigError(file, "[pricing] overrides", f"expected a table, got {table!r}", f"write {example}")
        exact: list[Override] = []
        globs: list[Override] = []
        for pattern, rates in table.items():
            name = f'pricing.overrides."{pattern}"'
            if not isinstance(rates, dict):
                raise ConfigError(file, f"[{name}]", f"expected a table, got {rates!r}", f"write {example}")
            check_keys(rates, _OVERRIDE_KEYS, file, f"[{name}]")
            for required in ("input", "output"):
                if required not in rates:
                    raise ConfigError(
                        file,
                        f"[{name}] {required}",
                        "is missing",
                        f"write {required} = <USD per million tokens> (0 if never billed)",
                    )
            usd = {k: _usd(rates[k], file, f"[{name}] {k}") for k in _OVERRIDE_KEYS[:5] if k in rates}
            provider = rates.get("provider")
            if provider is not None and (not isinstance(provider, str) or not provider.strip()):
                raise ConfigError(
                    file,
                    f"[{name}] provider",
                    f"expected a provider name, got {provider!r}",
                    'write provider = "openai" (as in gen_ai.provider.name)',
                )
            override = Override(
                pattern=pattern.lower(),
                provider=provider.strip().lower() if provider else None,
                input=usd["input"],
                output=usd["output"],
                cache_read=usd.get("cache_read", usd["input"]),
                cache_write=usd.get("cache_write", usd["input"]),
                reasoning=usd.get("reasoning", usd["output"]),
            )
            (globs if any(c in pattern for c in "*?[") else exact).append(override)
        return (*exact, *globs)


class _Rates:
    """Linear per-token rates of one genai-prices ``ModelPrice``, per tier bucket.

    Within a bucket (total input tokens between two tier starts) the price is linear in the token
    counts, so five probes of genai-prices' own calculator give exact coefficients.
    """

    __slots__ = ("_buckets", "_price", "_starts")

    def __init__(self, price: ModelPrice) -> None:
        from genai_prices.types import TieredPrices

        self._price = price
        starts: set[int] = set()
        for value in vars(price).values():
            if isinstance(value, TieredPrices):
                starts.update(tier.start for tier in value.tiers)
        self._starts = sorted(starts)
        self._buckets: dict[int, tuple[Decimal, ...] | None] = {}

    def cost(self, inp: int, cr: int, cw: int, out: int, rs: int) -> Decimal | None:
        bucket = bisect_left(self._starts, inp)  # tiers apply when total input > start
        coef = self._buckets.get(bucket, ())
        if coef == ():
            coef = self._buckets[bucket] = self._probe(bucket)
        if coef is None:  # bucket too narrow to probe, or a table genai-prices rejects
            try:
                return self._calc(inp, cr, cw, out, rs)
            except ValueError:
                return None
        c0, a_in, a_cr, a_cw, a_out, a_rs = coef
        return c0 + (inp - cr - cw) * a_in + cr * a_cr + cw * a_cw + (out - rs) * a_out + rs * a_rs

    def _calc(self, inp: int, cr: int, cw: int, out: int, rs: int) -> Decimal:
        from genai_prices import Usage

        usage = Usage(
            input_tokens=inp,
            cache_read_tokens=cr,
            cache_write_tokens=cw,
            output_tokens=out,
            output_reasoning_tokens=rs,
        )
        return self._price.calc_price(usage)["total_price"]

    def _probe(self, bucket: int) -> tuple[Decimal, ...] | None:
        low = self._starts[bucket - 1] + 1 if bucket else 0
        high = self._starts[bucket] if bucket < len(self._starts) else None
        r = max(low, 1)  # probes need r and r + 1 input tokens inside the bucket
        if high is not None and r + 1 > high:
            return None
        p = self._calc
        try:
            base = p(r, 0, 0, 0, 0)
            a_in = p(r + 1, 0, 0, 0, 0) - base
            return (
                base - r * a_in,
                a_in,
                p(r, 1, 0, 0, 0) - base + a_in,
                p(r, 0, 1, 0, 0) - base + a_in,
                p(r, 0, 0, 1, 0) - base,
                p(r, 0, 0, 1, 1) - base,
            )
        except ValueError:
            return None


@dataclass(slots=True)
class _Model:
    """A genai-prices model with its rates per validity slot (UTC day, or minute for off-peak prices)."""

    info: ModelInfo
    by_minute: bool
    slots: dict[int, _Rates] = field(default_factory=dict)

    def rates(self, ts: datetime) -> _Rates:
        if ts.tzinfo is not None and ts.utcoffset():
            ts = ts.astimezone(UTC)
        slot = ts.toordinal()
        if self.by_minute:
            slot = slot * 1440 + ts.hour * 60 + ts.minute
        rates = self.slots.get(slot)
        if rates is None:
            if len(self.slots) >= 4096:
                self.slots.clear()
            rates = self.slots[slot] = _Rates(self.info.get_prices(ts.replace(tzinfo=UTC)))
        return rates


def _by_minute(info: ModelInfo) -> bool:
    from genai_prices.types import TimeOfDateConstraint

    return isinstance(info.prices, list) and any(isinstance(p.constraint, TimeOfDateConstraint) for p in info.prices)


class Pricer:
    """Sets ``event.cost_usd`` / ``cost_source``; leaves both None when nothing prices the event."""

    def __init__(self, config: PricingConfig) -> None:
        self.config = config
        self._overrides: dict[tuple[str | None, str], Override | None] = {}
        self._models: dict[tuple[str | None, str], _Model | None] = {}

    def price(self, event: Event) -> None:
        """Price one event in place (gateway cost kept when present and ``prefer_gateway``)."""
        cfg = self.config
        if not cfg.enabled or (event.cost_source == "gateway" and cfg.prefer_gateway):
            return
        cost, source = self._cost(
            event.provider,
            (event.response_model, event.request_model),
            event.ts,
            event.input_tokens,
            event.cache_read_tokens,
            event.cache_write_tokens,
            event.output_tokens,
            event.reasoning_tokens,
        )
        if cost is not None:
            event.cost_usd, event.cost_source = cost, source

    def reprice(self, record: dict[str, Any]) -> tuple[Decimal | None, str | None]:
        """Cost of an archive record with today's tables: override, genai-prices, else its gateway cost."""
        ts_raw = record.get("ts")
        try:
            ts = datetime.fromisoformat(ts_raw) if isinstance(ts_raw, str) else datetime.now(UTC)
        except ValueError:
            ts = datetime.now(UTC)
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        if self.config.enabled:
            cost, source = self._cost(
                record.get("provider"),
                (record.get("response_model"), record.get("request_model"), record.get("model")),
                ts,
                _int(record.get("input_tokens")),
                _int(record.get("cache_read_tokens")),
                _int(record.get("cache_write_tokens")),
                _int(record.get("output_tokens")),
                _int(record.get("reasoning_tokens")),
            )
            if cost is not None:
                return cost, source
        if record.get("cost_source") == "gateway" and record.get("cost_usd") is not None:
            try:
                return Decimal(str(record["cost_usd"])), "gateway"
            except InvalidOperation:
                return None, None
        return None, None

    def _cost(
        self,
        provider: str | None,
        models: tuple[str | None, ...],
        ts: datetime,
        inp: int | None,
        cr: int | None,
        cw: int | None,
        out: int | None,
        rs: int | None,
    ) -> tuple[Decimal | None, str | None]:
        if inp is None and out is None:
            return None, None  # no usage logged (failed request, non-LLM route): nothing to price
        inp, cr, cw, out, rs = inp or 0, cr or 0, cw or 0, out or 0, rs or 0
        # Gateways normalise input to include cache tokens and output to include reasoning; when
        # the parts exceed the whole, this line's counts were not normalised: add them up.
        if cr + cw > inp:
            inp += cr + cw
        if rs > out:
            out += rs
        prov = provider.lower() if provider else None
        for model in models:
            if model:
                override = self._override(prov, model)
                if override is not None:
                    return override.cost(inp, cr, cw, out, rs), "override"
        for model in models:
            if model:
                entry = self._model(prov, model)
                if entry is not None and (cost := entry.rates(ts).cost(inp, cr, cw, out, rs)) is not None:
                    return cost, "genai-prices"
        return None, None

    def _override(self, provider: str | None, model: str) -> Override | None:
        key = (provider, model)
        try:
            return self._overrides[key]
        except KeyError:
            lowered = model.lower()
            found = next((o for o in self.config.overrides if o.matches(provider, lowered)), None)
            if len(self._overrides) >= _CACHE_MAX:
                self._overrides.clear()
            self._overrides[key] = found
            return found

    def _model(self, provider: str | None, model: str) -> _Model | None:
        key = (provider, model)
        try:
            return self._models[key]
        except KeyError:
            entry = self._lookup(provider, model)
            if len(self._models) >= _CACHE_MAX:
                self._models.clear()
            self._models[key] = entry
            return entry

    def _lookup(self, provider: str | None, model: str) -> _Model | None:
        """Find the genai-prices model once per (provider, model); unknown → None (unpriced)."""
        target: str | None = provider
        if provider is not None and provider in self.config.providers:
            target = self.config.providers[provider]
            if target is None:
                return None
        from genai_prices import data_snapshot

        snapshot = data_snapshot.get_snapshot()
        attempts = [target]
        if target is None or target in _MULTI_VENDOR:
            attempts.append(None)
        for provider_id in dict.fromkeys(attempts):
            try:
                _, info = snapshot.find_provider_model(model, None, provider_id, None)
            except LookupError:
                continue
            return _Model(info, _by_minute(info))
        return None


def _int(value: Any) -> int | None:
    return value if type(value) is int else None
