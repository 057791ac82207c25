"""Request cost and energy (SPEC §2), as exact Decimals.

total = input × 0.9 €/M + output × 4 €/M + reasoning × 21 €/M, where `output` EXCLUDES the
reasoning tokens: the API's completion_tokens counts both (as OpenAI does), so a caller holding
a Usage bills `completion_tokens - reasoning_tokens` as output. Per-model overrides come from
the catalog (CatalogEntry.price_*); `Prices.for_entry` merges them with the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

MILLION = Decimal(1_000_000)
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Prices:
    """€ per million tokens."""

    input: Decimal = Decimal("0.9")
    output: Decimal = Decimal("4")
    reasoning: Decimal = Decimal("21")

    @classmethod
    def for_entry(cls, entry: _PriceOverrides | None, default: Prices | None = None) -> Prices:
        base = default or cls()
        if entry is None:
            return base
        return cls(
            input=_pick(entry.price_input, base.input),
            output=_pick(entry.price_output, base.output),
            reasoning=_pick(entry.price_reasoning, base.reasoning),
        )


DEFAULT_PRICES = Prices()


class _PriceOverrides(Protocol):
    price_input: Decimal | None
    price_output: Decimal | None
    price_reasoning: Decimal | None


def _pick(override: Decimal | None, default: Decimal) -> Decimal:
    return default if override is None else override


def cost_eur(
    input_tokens: int,
    output_tokens: int,
    reasoning_tokens: int = 0,
    prices: Prices = DEFAULT_PRICES,
) -> Decimal:
    """Exact cost in €; `output_tokens` excludes `reasoning_tokens`."""
    for name, n in (
        ("input", input_tokens),
        ("output", output_tokens),
        ("reasoning", reasoning_tokens),
    ):
        if n < 0:
            raise ValueError(f"{name} tokens must be >= 0, got {n}")
    total = (
        input_tokens * prices.input
        + output_tokens * prices.output
        + reasoning_tokens * prices.reasoning
    )
    return total / MILLION


def cost_from_usage(
    prompt_tokens: int,
    completion_tokens: int,
    reasoning_tokens: int,
    prices: Prices = DEFAULT_PRICES,
) -> Decimal:
    """Cost from OpenAI-style counts, where completion_tokens includes reasoning_tokens."""
    return cost_eur(prompt_tokens, completion_tokens - reasoning_tokens, reasoning_tokens, prices)


def energy_kwh(total_tokens: int, kwh_per_mtok: Decimal) -> Decimal:
    """Energy in kWh for `total_tokens` (input + completion) at the model's kWh per Mtok."""
    return total_tokens * Decimal(kwh_per_mtok) / MILLION


def to_cents(amount: Decimal) -> Decimal:
    """Round half up to the cent, for display and invoices (keep the exact value for sums)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)
