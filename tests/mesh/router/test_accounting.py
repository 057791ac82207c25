"""Cost and energy in Decimal: reasoning billed once, at its own rate."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mesh.pricing import Prices
from mesh.router.accounting import TokenCounts, cost_eur, energy_kwh, format_decimal
from mesh.router.config import ConfigError, RouterConfig, WorkerAddress, parse_worker_addrs


def test_the_spec_formula():
    # 1M input × 0.9 + 1M output × 4 = 4.9 €
    assert cost_eur(TokenCounts(prompt=1_000_000, completion=1_000_000), Prices()) == Decimal("4.9")


def test_reasoning_is_billed_at_its_own_rate_and_not_as_output():
    tokens = TokenCounts(prompt=0, completion=1_000_000, reasoning=400_000)
    # 600k output × 4 + 400k reasoning × 21 = 2.4 + 8.4
    assert cost_eur(tokens, Prices()) == Decimal("10.8")
    assert tokens.billed_output == 600_000


def test_small_requests_stay_exact():
    cost = cost_eur(TokenCounts(prompt=37, completion=8), Prices())
    assert cost == Decimal("0.0000653") and format_decimal(cost) == "0.0000653"


def test_energy_uses_the_catalog_figure_on_all_tokens():
    assert energy_kwh(TokenCounts(prompt=500_000, completion=500_000), Decimal("11.75")) == Decimal(
        "11.75"
    )
    assert energy_kwh(TokenCounts(prompt=10), None) == 0


def test_format_decimal_never_uses_exponents():
    assert format_decimal(Decimal("1.5E-7")) == "0.00000015"
    assert format_decimal(Decimal("0E-12")) == "0"
    assert format_decimal(Decimal("12.500")) == "12.5"


def test_prices_and_workers_from_file_and_env(tmp_path):
    (tmp_path / "llmaas.toml").write_text(
        '[prices]\ninput = "1"\n[prices.models."big:70b"]\noutput = "8"\n'
        '[filter]\ndisabled_tenants = ["acme"]\n'
        '[[workers]]\nmodel = "a:1m"\naddress = "127.0.0.1:1"\n'
    )
    cfg = RouterConfig.from_env(
        {
            "LLMAAS_CONFIG": str(tmp_path / "llmaas.toml"),
            "LLMAAS_ROUTER_PORT": "6000",
            "LLMAAS_WORKER_ADDRS": "smollm2:135m=127.0.0.1:50061, smollm2:135m=127.0.0.1:50062",
        }
    )
    assert (
        cfg.port == 6000 and not cfg.filter_enabled_for("acme") and cfg.filter_enabled_for("other")
    )
    assert cfg.prices.input == Decimal("1") and cfg.prices_for("big:70b") == Prices(
        Decimal("1"), Decimal("8")
    )
    assert cfg.workers == (
        WorkerAddress("a:1m", "127.0.0.1:1"),
        WorkerAddress("smollm2:135m", "127.0.0.1:50061"),
        WorkerAddress("smollm2:135m", "127.0.0.1:50062"),
    )


@pytest.mark.parametrize("raw", ["nope", "m=", "=127.0.0.1:1", "m=localhost"])
def test_bad_worker_addresses_name_the_key(raw, tmp_path):
    with pytest.raises(ValueError):
        parse_worker_addrs(raw)
    (tmp_path / "empty.toml").write_text("")
    with pytest.raises(ConfigError, match="LLMAAS_WORKER_ADDRS"):
        RouterConfig.from_env(
            {"LLMAAS_WORKER_ADDRS": raw, "LLMAAS_CONFIG": str(tmp_path / "empty.toml")}
        )
