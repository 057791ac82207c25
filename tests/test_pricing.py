"""SPEC §2 pricing, exact to the cent and beyond."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from mesh.catalog import Catalog
from mesh.pricing import (
    Prices,
    cost_eur,
    cost_from_usage,
    energy_kwh,
    to_cents,
)
from tools.ops.cost_estimate import estimate


def test_one_million_of_each() -> None:
    assert cost_eur(1_000_000, 0, 0) == Decimal("0.9")
    assert cost_eur(0, 1_000_000, 0) == Decimal("4")
    assert cost_eur(0, 0, 1_000_000) == Decimal("21")
    assert cost_eur(1_000_000, 1_000_000, 1_000_000) == Decimal("25.9")


def test_exact_small_request() -> None:
    # 100 input, 300 completion of which 200 reasoning.
    expected = (100 * Decimal("0.9") + 100 * 4 + 200 * 21) / Decimal(1_000_000)
    assert cost_eur(100, 100, 200) == expected == Decimal("0.00469")
    assert cost_from_usage(100, 300, 200) == expected


def test_to_the_cent() -> None:
    # 2.5M input, 1.2M output, 0.3M reasoning = 2.25 + 4.8 + 6.3 = 13.35 €
    assert to_cents(cost_eur(2_500_000, 1_200_000, 300_000)) == Decimal("13.35")
    assert to_cents(cost_eur(5_000, 1_250, 0)) == Decimal("0.01")  # 0.0045 + 0.005
    assert to_cents(Decimal("0.005")) == Decimal("0.01")  # half up, not banker's


def test_overrides() -> None:
    @dataclass
    class Entry:
        price_input: Decimal | None = Decimal("0.5")
        price_output: Decimal | None = None
        price_reasoning: Decimal | None = Decimal("10")

    prices = Prices.for_entry(Entry())
    assert prices == Prices(Decimal("0.5"), Decimal("4"), Decimal("10"))
    assert cost_eur(1_000_000, 1_000_000, 1_000_000, prices) == Decimal("14.5")
    assert Prices.for_entry(None) == Prices()


def test_energy() -> None:
    assert energy_kwh(1_000_000, Decimal("0.15")) == Decimal("0.15")
    assert energy_kwh(2_000, Decimal("11.75")) == Decimal("0.0235")


def test_negative_rejected() -> None:
    with pytest.raises(ValueError):
        cost_eur(-1, 0, 0)
    with pytest.raises(ValueError):
        cost_from_usage(10, 5, 6)


def test_cost_estimate_tool() -> None:
    entry = Catalog.load().get("llama3.3:70b")
    e = estimate(entry, "x" * 400, max_tokens=300, reasoning=200)
    assert (e.input_tokens, e.output_tokens, e.reasoning_tokens) == (100, 100, 200)
    assert e.cost_eur == Decimal("0.00469") and e.cost_eur_cents == Decimal("0.00")
    assert e.energy_kwh == Decimal("0.0047")  # 400 tokens x 11.75 kWh/M
    with pytest.raises(ValueError):
        estimate(entry, "x", max_tokens=10, reasoning=11)
