"""Money and energy of one request, in Decimal (no float drift).

cost = input × p_in + output × p_out + reasoning × p_reason, prices in € per million tokens.
Reasoning tokens are part of OpenAI's completion_tokens but are billed only at their own
rate: the output tokens billed are completion − reasoning.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from mesh.router.config import Prices

MILLION = Decimal(1_000_000)
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
    amount = (
        tokens.prompt * prices.input
        + tokens.billed_output * prices.output
        + tokens.reasoning * prices.reasoning
    )
    return (amount / MILLION).quantize(_QUANTUM)


def energy_kwh(tokens: TokenCounts, kwh_per_mtok: Decimal | None) -> Decimal:
    """Energy from the catalog's kWh per million tokens; 0 when the model has no figure."""
    if not kwh_per_mtok:
        return Decimal(0)
    return (tokens.total * kwh_per_mtok / MILLION).quantize(_QUANTUM)


def format_decimal(value: Decimal) -> str:
    """Plain notation without trailing zeros: '0.0000153', '0', never '1.53E-5'."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text
