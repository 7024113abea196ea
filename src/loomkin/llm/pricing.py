"""Model prices, for the cost of each call and the cost budgets.

The built-in figures are the vendors' public list prices in USD per million tokens as of
writing (2025); they change, so ``[pricing]`` in ``loomkin.toml`` overrides or extends them.
Local and unknown models cost nothing.

Prompt caching has prices of its own: input read from the cache is cheaper (Anthropic: 0.1 ×
the input price; OpenAI: 0.1–0.5 × by model), input written to Anthropic's cache costs more
(1.25 ×). A price without explicit cache figures gets its vendor's ratios.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from loomkin.core.events.base import JSON

__all__ = ["DEFAULT_PRICES", "FREE_PROVIDERS", "Price", "PriceTable"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Price:
    """USD per million tokens."""

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None
    """Input read from the prompt cache (``None``: the same as ``input_per_mtok``)."""
    cache_write_per_mtok: float | None = None
    """Input written to the prompt cache (``None``: the same as ``input_per_mtok``)."""


def _p(input_per_mtok: float, output_per_mtok: float, *, cached: float | None = None) -> Price:
    # OpenAI: cached input as listed; no charge for writing the cache.
    return Price(
        input_per_mtok=input_per_mtok,
        output_per_mtok=output_per_mtok,
        cached_input_per_mtok=input_per_mtok / 2 if cached is None else cached,
    )


ANTHROPIC_CACHE_READ = 0.1
"""Anthropic bills cache reads at this fraction of the input price."""
ANTHROPIC_CACHE_WRITE = 1.25
"""Anthropic bills (five-minute) cache writes at this multiple of the input price."""


def _a(input_per_mtok: float, output_per_mtok: float) -> Price:
    return Price(
        input_per_mtok=input_per_mtok,
        output_per_mtok=output_per_mtok,
        cached_input_per_mtok=input_per_mtok * ANTHROPIC_CACHE_READ,
        cache_write_per_mtok=input_per_mtok * ANTHROPIC_CACHE_WRITE,
    )


DEFAULT_PRICES: Mapping[str, Price] = {
    # OpenAI list prices (USD / 1M tokens), as of writing; override in [pricing].
    "gpt-5": _p(1.25, 10.00, cached=0.125),
    "gpt-5-mini": _p(0.25, 2.00, cached=0.025),
    "gpt-5-nano": _p(0.05, 0.40, cached=0.005),
    "gpt-4.1": _p(2.00, 8.00, cached=0.50),
    "gpt-4.1-mini": _p(0.40, 1.60, cached=0.10),
    "gpt-4.1-nano": _p(0.10, 0.40, cached=0.025),
    "gpt-4o": _p(2.50, 10.00, cached=1.25),
    "gpt-4o-mini": _p(0.15, 0.60, cached=0.075),
    "o3": _p(2.00, 8.00, cached=0.50),
    "o3-mini": _p(1.10, 4.40, cached=0.55),
    "o4-mini": _p(1.10, 4.40, cached=0.275),
    # Anthropic list prices (USD / 1M tokens), as of writing; override in [pricing].
    "claude-opus-4-1": _a(15.00, 75.00),
    "claude-opus-4": _a(15.00, 75.00),
    "claude-sonnet-4-5": _a(3.00, 15.00),
    "claude-sonnet-4": _a(3.00, 15.00),
    "claude-3-7-sonnet": _a(3.00, 15.00),
    "claude-haiku-4-5": _a(1.00, 5.00),
    "claude-3-5-haiku": _a(0.80, 4.00),
}

FREE_PROVIDERS = frozenset(
    {"ollama", "vllm", "lmstudio", "llamacpp", "local", "scripted", "function"}
)
"""Providers whose models run locally or are fakes: always free."""


class PriceTable:
    """Looks up a model's price and computes the cost of a call.

    Names may carry the provider (``"openai:gpt-4.1"``), a router's vendor prefix
    (``"openrouter:anthropic/claude-sonnet-4-5"``) and a date suffix
    (``"claude-sonnet-4-5-20250929"``): the longest known name the model's name starts
    with (at a ``-`` boundary) wins.

    Args:
        prices: The table (``None``: :data:`DEFAULT_PRICES`).
    """

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self._prices = dict(DEFAULT_PRICES if prices is None else prices)

    @classmethod
    def from_config(cls, overrides: Mapping[str, JSON]) -> PriceTable:
        """Return the default table updated from ``[pricing]``.

        Each entry is ``"model" = { input = <USD/Mtok>, output = <USD/Mtok> }``, optionally
        with ``cached_input`` (cache reads) and ``cache_write`` (cache writes) in USD/Mtok.

        Raises:
            ConfigError: An entry is not a table of two non-negative numbers.
        """
        prices = dict(DEFAULT_PRICES)
        for model, entry in overrides.items():
            prices[model] = _parse_entry(model, entry)
        return cls(prices)

    def price(self, model_name: str) -> Price | None:
        """Return the price of ``model_name``, or ``None`` if it is free or unknown."""
        provider, model = _split(model_name)
        if provider in FREE_PROVIDERS:
            return None
        exact = self._prices.get(model_name) or self._prices.get(model)
        if exact is not None:
            return exact
        model = model.rsplit("/", 1)[-1]
        best: str | None = None
        for known in self._prices:
            if (model == known or model.startswith(known + "-")) and (
                best is None or len(known) > len(best)
            ):
                best = known
        return self._prices[best] if best is not None else None

    def cost(
        self,
        model_name: str,
        input_tokens: int,
        output_tokens: int,
        *,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float:
        """Return the USD cost of a call (0 for local and unknown models).

        ``input_tokens`` counts all input; ``cached_input_tokens`` and ``cache_write_tokens``
        (parts of it) are billed at the model's cache prices, the rest at the input price.
        """
        price = self.price(model_name)
        if price is None:
            return 0.0
        cached = min(cached_input_tokens, input_tokens)
        written = min(cache_write_tokens, input_tokens - cached)
        uncached = input_tokens - cached - written
        read_price = price.input_per_mtok
        if price.cached_input_per_mtok is not None:
            read_price = price.cached_input_per_mtok
        write_price = price.input_per_mtok
        if price.cache_write_per_mtok is not None:
            write_price = price.cache_write_per_mtok
        return (
            uncached * price.input_per_mtok
            + cached * read_price
            + written * write_price
            + output_tokens * price.output_per_mtok
        ) / 1_000_000


def _split(model_name: str) -> tuple[str, str]:
    provider, sep, model = model_name.partition(":")
    return (provider, model) if sep else ("", model_name)


def _parse_entry(model: str, entry: JSON) -> Price:
    if not isinstance(entry, dict):
        raise ConfigError(
            f"[pricing] {model!r} must be a table like {{ input = 2.0, output = 8.0 }}"
        )
    values: dict[str, float | None] = {}
    for key in ("input", "output", "cached_input", "cache_write"):
        value = entry.get(key)
        if value is None and key in ("cached_input", "cache_write"):
            values[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(
                f"[pricing] {model!r}.{key} must be a non-negative number of USD per million "
                f"tokens, got {value!r}"
            )
        values[key] = float(value)
    unknown = set(entry) - {"input", "output", "cached_input", "cache_write"}
    if unknown:
        raise ConfigError(f"[pricing] {model!r} has unknown keys {sorted(unknown)!r}")
    return Price(
        input_per_mtok=values["input"] or 0.0,
        output_per_mtok=values["output"] or 0.0,
        cached_input_per_mtok=values["cached_input"],
        cache_write_per_mtok=values["cache_write"],
    )
