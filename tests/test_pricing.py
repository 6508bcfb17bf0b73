"""Costs from the genai-prices table: Claude and OpenAI models, cache reads and writes, tiers, unknown models."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from analytics import pricing
from analytics.pricing import call_cost, prices

NOW = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)


def test_claude_call_with_cache_reads_and_writes() -> None:
    # claude-opus-5-5: $4 input, $20 output, $0.2 cache read, $5 cache write (5 min), $8 (1 h) per million
    cost = call_cost("anthropic", "claude-opus-5-5", NOW, 1000, 100, cache_read=500, cache_write=200,
                     cache_write_1h=50)
    assert cost == pytest.approx((1000 * 4 + 100 * 20 + 500 * 0.2 + 200 * 5 + 50 * 8) / 1e6)


def test_dated_model_ids_and_long_context_tiers() -> None:
    base = call_cost("anthropic", "claude-sonnet-4-5-20250929", NOW, 1000, 1000)
    assert base == pytest.approx((1000 * 3 + 1000 * 15) / 1e6)
    # above 200,000 input tokens (cached ones included) every token of the call is at the higher rate
    long = call_cost("anthropic", "claude-sonnet-4-5", NOW, 150_000, 1000, cache_read=60_000)
    assert long == pytest.approx((150_000 * 6 + 1000 * 22.5 + 60_000 * 0.6) / 1e6)


def test_openai_models_for_codex() -> None:
    assert call_cost("openai", "gpt-5.3-codex", NOW, 1000, 100, cache_read=4000) == pytest.approx(
        (1000 * 1.75 + 100 * 14 + 4000 * 0.175) / 1e6)


def test_unknown_model_is_unknown_not_free() -> None:
    assert call_cost("anthropic", "mock-model-1", NOW, 1000, 100) is None
    assert call_cost("anthropic", None, NOW, 1000, 100) is None
    assert prices("openai", "no-such-model", NOW) is None
    # a call with no tokens (Claude Code's <synthetic> API error message) costs nothing, whatever its model
    assert call_cost("anthropic", "<synthetic>", NOW, 0, 0) == 0.0


def test_public_api_fallback() -> None:
    """If genai-prices moves the inner lookup `prices` uses, its documented calc_price gives the base rates."""
    p = pricing._public_prices("anthropic", "claude-opus-5-5", datetime(2026, 12, 1, tzinfo=UTC))
    assert p is not None
    assert (p.input.base, p.output.base, p.cache_read.base, p.cache_write.base) == pytest.approx(
        (4e-6, 20e-6, 0.2e-6, 5e-6))
    assert pricing._public_prices("anthropic", "mock-model-1", datetime(2026, 12, 1, tzinfo=UTC)) is None
