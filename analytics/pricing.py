"""What an LLM call cost, for the agents whose histories store tokens but no cost (Claude Code, Codex).

Prices come from `genai-prices` (Pydantic's maintained table of LLM prices, released with each price change;
agent-traces reads the snapshot shipped with the installed package and never fetches prices from the
network). A model the table does not know has an unknown cost: `call_cost` returns None, never 0, so that a
caller can say "unknown" instead of showing a free call.

The table is read once per model and day (a price can change on a date: the call's own date picks it); each
call is then a few multiplications, not a lookup (the package's own `calc_price` takes ~100 µs a call).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

log = logging.getLogger(__name__)

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Rate:
    """USD per token below the first tier, and the tiers (start, USD per token) that apply to all tokens of a
    call whose input (cached or not) exceeds their start: the cliff pricing of long contexts."""

    base: float
    tiers: tuple[tuple[int, float], ...] = ()

    def at(self, context: int) -> float:
        rate = self.base
        for start, price in self.tiers:
            if context > start:
                rate = price
        return rate


@dataclass(frozen=True, slots=True)
class Prices:
    input: Rate
    output: Rate
    cache_read: Rate
    cache_write: Rate
    cache_write_1h: Rate


def _rate(value: object, fallback: Rate | None = None) -> Rate:
    from genai_prices.types import TieredPrices

    if value is None:
        return fallback if fallback is not None else Rate(0.0)
    if isinstance(value, TieredPrices):
        return Rate(float(value.base) / 1e6, tuple((t.start, float(t.price) / 1e6) for t in value.tiers))
    return Rate(float(value) / 1e6)  # type: ignore[arg-type]


@lru_cache(maxsize=512)
def _prices(provider: str, model: str, day: int) -> Prices | None:
    try:
        from genai_prices import data_snapshot
    except ImportError:  # an install without the table: every cost is unknown, and says so
        log.warning("genai-prices is not installed: LLM call costs are unknown")
        return None
    when = datetime.fromtimestamp(day * DAY_MS / 1000 + 43_200, UTC)  # noon of the call's day
    try:
        _provider, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider or None, None)
    except LookupError:
        return None
    except (AttributeError, TypeError):  # the package's inner API moved: its public one, without tiers
        return _public_prices(provider, model, when)
    p = info.get_prices(when)
    inp = _rate(p.input_mtok)
    write = _rate(p.cache_write_mtok, inp)
    return Prices(inp, _rate(p.output_mtok), _rate(p.cache_read_mtok, inp), write,
                  _rate(getattr(p, "cache_write_1h_mtok", None), write))


def _public_prices(provider: str, model: str, when: datetime) -> Prices | None:
    """Base rates measured through `calc_price` (genai-prices' documented API) on 1,000 tokens of each kind
    (genai-prices counts cached tokens inside `input_tokens`). Long-context tiers are not seen this way."""
    from genai_prices import Usage, calc_price

    def per_token(**tokens: int) -> Rate:
        price = calc_price(Usage(**tokens), model, provider_id=provider, genai_request_timestamp=when)
        return Rate(float(price.total_price) / 1000)

    try:
        write = per_token(input_tokens=1000, cache_write_tokens=1000)
        return Prices(per_token(input_tokens=1000), per_token(output_tokens=1000),
                      per_token(input_tokens=1000, cache_read_tokens=1000), write, write)
    except LookupError:
        return None


def prices(provider: str, model: str, when_ms: int) -> Prices | None:
    """The prices of `model` at `provider` ("anthropic", "openai") on the day of `when_ms`; None if unknown."""
    return _prices(provider, model, when_ms // DAY_MS)


def call_cost(provider: str, model: str | None, when_ms: int, input_tokens: int, output_tokens: int,
              cache_read: int = 0, cache_write: int = 0, cache_write_1h: int = 0) -> float | None:
    """USD for one API call, or None when the model has no price in the table.

    `input_tokens` are the input tokens read at the full rate (Anthropic's `input_tokens`; for OpenAI's usage,
    `input_tokens - cached_input_tokens`); `cache_write` are the tokens written to the cache at the 5-minute
    rate and `cache_write_1h` those at the 1-hour rate (both included in Anthropic's
    `cache_creation_input_tokens`, split in its `cache_creation` object). A call with no tokens costs 0 even
    for a model with no price (Claude Code's `<synthetic>` error messages).
    """
    if not (input_tokens or output_tokens or cache_read or cache_write or cache_write_1h):
        return 0.0
    if not model:
        return None
    p = prices(provider, model, when_ms)
    if p is None:
        return None
    context = input_tokens + cache_read + cache_write + cache_write_1h
    return (input_tokens * p.input.at(context) + output_tokens * p.output.at(context)
            + cache_read * p.cache_read.at(context) + cache_write * p.cache_write.at(context)
            + cache_write_1h * p.cache_write_1h.at(context))
