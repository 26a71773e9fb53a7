"""Cost: gateway figure kept, overrides, genai-prices (hand-computed), unpriced, reprice, config errors."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from genai_prices import Usage, calc_price

from gwlog.errors import ConfigError
from gwlog.events import Event, ParsedLine
from gwlog.pricing import Pricer, PricingConfig

TS = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)


def event(
    provider: str | None,
    model: str | None,
    inp: int | None,
    out: int | None,
    cr: int | None = None,
    cw: int | None = None,
    rs: int | None = None,
    request_model: str | None = None,
) -> Event:
    return Event(
        ts=TS,
        fields={},
        provider=provider,
        response_model=model,
        request_model=request_model,
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=cr,
        cache_write_tokens=cw,
        reasoning_tokens=rs,
    )


def priced(e: Event, **config: Any) -> Event:
    Pricer(PricingConfig.from_section(config, "gwlog.toml")).price(e)
    return e


C01 = {  # agentgateway-log-format.md C01: gateway cost from its own catalog
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.usage.input_tokens": 1834,
    "gen_ai.usage.cache_read.input_tokens": 1536,
    "gen_ai.usage.output_tokens": 212,
    "gen_ai.usage.reasoning_tokens": 64,
    "agw.ai.usage.cost.total": Decimal("0.00045942"),
    "duration": 2874,
}


def test_gateway_cost_is_kept() -> None:
    e = priced(Event.from_parsed(ParsedLine(TS, dict(C01))))
    assert (e.cost_usd, e.cost_source) == (Decimal("0.00045942"), "gateway")


def test_prefer_gateway_false_prices_with_genai_prices() -> None:
    e = priced(Event.from_parsed(ParsedLine(TS, dict(C01))), prefer_gateway=False)
    # gpt-4o-mini: $0.15 input, $0.075 cache read, $0.60 output per MTok; input includes the cache
    # read, output includes reasoning (no separate reasoning rate).
    expected = (298 * Decimal("0.15") + 1536 * Decimal("0.075") + 212 * Decimal("0.6")) / 1_000_000
    assert expected == Decimal("0.0002871")
    assert (e.cost_usd, e.cost_source) == (expected, "genai-prices")


def test_genai_prices_peers_example() -> None:
    # peers.md §8: 1 000 uncached × $3 + 8 000 × $0.30 + 1 000 × $3.75 + 500 × $15, per MTok
    e = priced(event("anthropic", "claude-sonnet-4-20250514", 10_000, 500, cr=8_000, cw=1_000))
    assert e.cost_source == "genai-prices"
    assert e.cost_usd == Decimal("0.01665")


def test_tiered_prices_switch_all_tokens() -> None:
    # gemini-2.5-pro: $1.25 / $10 per MTok up to 200k input tokens, $2.50 / $15 above (all tokens)
    small = priced(event("gcp.gemini", "gemini-2.5-pro", 100_000, 1_000))
    large = priced(event("gcp.gemini", "gemini-2.5-pro", 250_000, 1_000))
    assert small.cost_usd == Decimal("0.125") + Decimal("0.010")
    assert large.cost_usd == Decimal("0.625") + Decimal("0.015")


def test_unnormalised_counts_are_added_up() -> None:
    # Anthropic-style uncached input (200) smaller than the cache read: the parts are the total.
    e = priced(event("anthropic", "claude-sonnet-4-20250514", 200, 500, cr=8_000, cw=1_000))
    assert e.cost_usd == (200 * 3 + 8_000 * Decimal("0.3") + 1_000 * Decimal("3.75") + 500 * 15) / 1_000_000


def test_request_model_used_when_response_model_unknown() -> None:
    e = priced(event("openai", "my-deployment-xyz", 1_000_000, 0, request_model="gpt-4o-mini"))
    assert (e.cost_usd, e.cost_source) == (Decimal("0.15"), "genai-prices")


def test_provider_mapping_for_bedrock_and_vertex_hosted_claude() -> None:
    for provider, model in [
        ("aws.bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0"),
        ("gcp.vertex_ai", "claude-sonnet-4@20250514"),
    ]:
        e = priced(event(provider, model, 1_000, 100))
        assert e.cost_usd == Decimal("0.0045"), provider


def test_fast_path_matches_calc_price() -> None:
    rng = random.Random(7)
    pricer = Pricer(PricingConfig())
    models = [
        ("openai", "openai", "gpt-4o-mini"),
        ("anthropic", "anthropic", "claude-sonnet-4-20250514"),
        ("gcp.gemini", "google", "gemini-2.5-pro"),
        ("azure", "azure", "gpt-4o"),
        ("openai", "openai", "o3"),
    ]
    for i in range(300):
        provider, provider_id, model = models[i % len(models)]
        inp = rng.randint(0, 400_000)
        cr, cw, out = rng.randint(0, inp // 2), rng.randint(0, inp // 4), rng.randint(0, 8_000)
        rs = rng.randint(0, out)
        e = event(provider, model, inp, out, cr, cw, rs)
        pricer.price(e)
        usage = Usage(
            input_tokens=inp,
            output_tokens=out,
            cache_read_tokens=cr,
            cache_write_tokens=cw,
            output_reasoning_tokens=rs,
        )
        ref = calc_price(usage, model, provider_id=provider_id, genai_request_timestamp=TS).total_price
        assert e.cost_usd == ref, (model, inp, cr, cw, out, rs)


OVERRIDES = {
    "overrides": {
        "my-finetune-*": {"input": 2, "output": "8.5", "cache_read": 0.5, "reasoning": 20},
        "gpt-4o-mini*": {"input": 1, "output": 1, "provider": "azure"},
        "llama3*": {"input": 0.1, "output": 0.2},
    }
}


def test_override_rates() -> None:
    e = priced(event("openai", "my-finetune-v2", 10_000, 3_000, cr=4_000, cw=1_000, rs=1_000), **OVERRIDES)
    # cache_write defaults to the input rate, reasoning has its own rate
    expected = (5_000 * 2 + 4_000 * Decimal("0.5") + 1_000 * 2 + 2_000 * Decimal("8.5") + 1_000 * 20) / 1_000_000
    assert expected == Decimal("0.051")
    assert (e.cost_usd, e.cost_source) == (expected, "override")


def test_override_beats_genai_prices_and_respects_provider() -> None:
    azure = priced(event("azure", "gpt-4o-mini", 1_000_000, 1_000_000), **OVERRIDES)
    openai = priced(event("openai", "gpt-4o-mini", 1_000_000, 1_000_000), **OVERRIDES)
    assert (azure.cost_usd, azure.cost_source) == (Decimal(2), "override")
    assert (openai.cost_usd, openai.cost_source) == (Decimal("0.75"), "genai-prices")


def test_override_prices_local_models() -> None:
    assert priced(event("ollama", "llama3.1:8b", 1_000, 1_000)).cost_usd is None
    assert priced(event("ollama", "llama3.1:8b", 1_000_000, 1_000_000), **OVERRIDES).cost_usd == Decimal("0.3")


@pytest.mark.parametrize(
    "e",
    [
        event("openai", "no-such-model-2099", 100, 10),
        event("ollama", "llama3", 100, 10),
        event("openai", None, 100, 10),
        event("openai", "gpt-4o-mini", None, None),
    ],
    ids=["unknown-model", "local-provider", "no-model", "no-usage"],
)
def test_unpriced_stays_none(e: Event) -> None:
    priced(e)
    assert e.cost_usd is None and e.cost_source is None


def test_disabled_and_custom_provider_map() -> None:
    assert priced(event("openai", "gpt-4o-mini", 100, 10), enabled=False).cost_usd is None
    e = priced(event("corp-proxy", "gpt-4o-mini", 1_000_000, 0), providers={"corp-proxy": "openai"})
    assert e.cost_usd == Decimal("0.15")
    assert priced(event("openai", "gpt-4o-mini", 100, 10), providers={"openai": ""}).cost_usd is None


def test_reprice_archive_records() -> None:
    pricer = Pricer(PricingConfig())
    record = Event.from_parsed(ParsedLine(TS, dict(C01))).to_record()
    assert pricer.reprice(record) == (Decimal("0.0002871"), "genai-prices")
    record.update(model="no-such-model", response_model="no-such-model", request_model=None)
    assert pricer.reprice(record) == (Decimal("0.00045942"), "gateway")
    record.update(cost_usd=None, cost_source=None)
    assert pricer.reprice(record) == (None, None)


@pytest.mark.parametrize(
    ("section", "key", "fix_part"),
    [
        ({"enabled": "yes"}, "[pricing] enabled", "no quotes"),
        ({"prefer_gateway": 1}, "[pricing] prefer_gateway", "true"),
        ({"overides": {}}, "[pricing] overides", "did you mean 'overrides'"),
        ({"overrides": {"gpt-4o": {"input": 1}}}, '[pricing.overrides."gpt-4o"] output', "output ="),
        (
            {"overrides": {"gpt-4o": {"input": -1, "output": 1}}},
            '[pricing.overrides."gpt-4o"] input',
            "input = 2.5",
        ),
        (
            {"overrides": {"gpt-4o": {"input": "cheap", "output": 1}}},
            '[pricing.overrides."gpt-4o"] input',
            "2.5",
        ),
        (
            {"overrides": {"gpt-4o": {"input": 1, "output": 1, "cached": 1}}},
            '[pricing.overrides."gpt-4o"] cached',
            "did you mean 'cache_read'",
        ),
        ({"overrides": {"gpt-4o": 3}}, '[pricing.overrides."gpt-4o"]', "input = 2.5"),
        (
            {"overrides": {"gpt-4o": {"input": 1, "output": 1, "provider": 3}}},
            '[pricing.overrides."gpt-4o"] provider',
            'provider = "openai"',
        ),
        ({"providers": {"corp": 1}}, '[pricing.providers] "corp"', '"openai"'),
    ],
)
def test_config_errors(section: dict[str, Any], key: str, fix_part: str) -> None:
    with pytest.raises(ConfigError) as err:
        PricingConfig.from_section(section, "gwlog.toml")
    assert err.value.file == "gwlog.toml" and err.value.key == key
    assert fix_part in err.value.fix


def test_price_rate_guard() -> None:
    """Loose guard (shared cores); the measured rate is in the pricing.py docstring's report."""
    pricer = Pricer(PricingConfig())
    events = [event("openai", "gpt-4o-mini", 1_000 + i, 100 + i % 50, cr=i % 500) for i in range(20_000)]
    start = time.perf_counter()
    for e in events:
        pricer.price(e)
    assert len(events) / (time.perf_counter() - start) > 20_000
