"""Money and energy of one request, in Decimal (no float drift).

cost = input × p_in + output × p_out + reasoning × p_reason, prices in € per million tokens
(`mesh.pricing` holds the formula, shared with usage reports). Reasoning tokens are part of
OpenAI's completion_tokens but are billed only at their own rate: the output tokens billed
are completion − reasoning. Prompt tokens include the system tokens the chat template adds:
the model processes them like any input.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from mesh import pricing
from mesh.pricing import Prices

# Enough digits for one token of the cheapest price (0.9 €/M = 0.0000009 €).
_QUANTUM = Decimal("1e-12")


@dataclass(frozen=True, slots=True)
class TokenCounts:
    """As OpenAI counts them: prompt includes system tokens, completion includes reasoning."""

    prompt: int = 0
    completion: int = 0
    reasoning: int = 0

    @property
    def billed_output(self) -> int:
        return max(0, self.completion - self.reasoning)

    @property
    def total(self) -> int:
        return self.prompt + self.completion


def cost_eur(tokens: TokenCounts, prices: Prices) -> Decimal:
    amount = pricing.cost_eur(tokens.prompt, tokens.billed_output, tokens.reasoning, prices)
    return amount.quantize(_QUANTUM)


def energy_kwh(tokens: TokenCounts, kwh_per_mtok: Decimal | None) -> Decimal:
    """Energy from the catalog's kWh per million tokens; 0 when the model has no figure."""
    if not kwh_per_mtok:
        return Decimal(0)
    return pricing.energy_kwh(tokens.total, kwh_per_mtok).quantize(_QUANTUM)


def format_decimal(value: Decimal) -> str:
    """Plain notation without trailing zeros: '0.0000153', '0', never '1.53E-5'."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text
