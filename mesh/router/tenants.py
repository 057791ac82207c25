"""Billing tiers (limits per tenant) and the tenant policy record.

Tiers come with defaults and are overridden by `[tiers.NAME]` tables in the TOML config:

    [tiers.free]
    requests_per_minute = 5
    tokens_per_minute = 10000
    concurrent_requests = 1
    monthly_budget_eur = "2.50"   # string or number; 0 = unlimited
    weight = 1                    # fair-queue weight

A limit of 0 means unlimited. New tier names may be defined the same way.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from mesh.config import ConfigError


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    requests_per_minute: int
    tokens_per_minute: int
    concurrent_requests: int
    monthly_budget_eur: Decimal  # 0 = unlimited
    weight: int


DEFAULT_TIERS: dict[str, Tier] = {
    t.name: t
    for t in (
        Tier("free", 20, 40_000, 2, Decimal("5"), 1),
        Tier("standard", 300, 300_000, 8, Decimal("500"), 2),
        Tier("premium", 1_500, 2_000_000, 32, Decimal("5000"), 4),
        Tier("enterprise", 10_000, 10_000_000, 128, Decimal("0"), 8),
    )
}

_INT_FIELDS = ("requests_per_minute", "tokens_per_minute", "concurrent_requests", "weight")


def _tier_value(tier: str, key: str, raw: Any) -> Any:
    where = f"[tiers.{tier}] {key}={raw!r}"
    if key == "monthly_budget_eur":
        try:
            value = Decimal(str(raw))
        except InvalidOperation as exc:
            raise ConfigError(f"{where}: expected a decimal amount") from exc
        if value < 0:
            raise ConfigError(f"{where}: must be >= 0")
        return value
    if key not in _INT_FIELDS:
        known = ", ".join((*_INT_FIELDS, "monthly_budget_eur"))
        raise ConfigError(f"[tiers.{tier}] unknown setting {key!r} (known: {known})")
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise ConfigError(f"{where}: expected a non-negative integer")
    return raw


def load_tiers(config: Mapping[str, Any]) -> dict[str, Tier]:
    """The default tiers with `[tiers.*]` overrides from a parsed TOML config applied."""
    tiers = dict(DEFAULT_TIERS)
    for name, table in (config.get("tiers") or {}).items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"[tiers.{name}] must be a table")
        base = tiers.get(name) or replace(DEFAULT_TIERS["standard"], name=name)
        changes = {k: _tier_value(name, k, v) for k, v in table.items()}
        tiers[name] = replace(base, **changes)
    return tiers


_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


def valid_tenant_name(name: str) -> bool:
    return bool(_NAME.match(name))


@dataclass(slots=True)
class Tenant:
    name: str
    tier: str = "standard"
    filter_enabled: bool = True
    experimental_opt_in: bool = False
    rotation_max_age_s: int = 0  # 0 = no automatic rotation
    rotation_overlap_s: int = 0
    retention_days: int = 0
    content_logging: bool = False
    model_patterns: tuple[str, ...] = ("*",)
    created_at: float = 0.0

    @property
    def rotates(self) -> bool:
        return self.rotation_max_age_s > 0


TENANT_FIELDS = tuple(f.name for f in fields(Tenant))


def _covered(pattern: str, by: str) -> bool:
    # A pattern is covered when, read as a model id, it matches the other glob:
    # "qwen3:8b" and "qwen3:*" are both covered by "qwen3:*"; "*" only by "*".
    return fnmatch.fnmatchcase(pattern, by)


def effective_patterns(
    tenant_patterns: tuple[str, ...], key_patterns: tuple[str, ...] | None
) -> tuple[str, ...]:
    """Models a key may use: its own patterns (if set) intersected with its tenant's.

    The intersection of two glob lists is approximated conservatively: a pattern survives
    when the other side covers it (so a key can narrow, never widen, its tenant's list).
    """
    if key_patterns is None:
        return tenant_patterns
    kept = [k for k in key_patterns if any(_covered(k, t) for t in tenant_patterns)]
    kept += [
        t for t in tenant_patterns if t not in kept and any(_covered(t, k) for k in key_patterns)
    ]
    return tuple(kept)
