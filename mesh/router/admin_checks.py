"""Checks of Admin request fields (tier names, model patterns, rotation settings)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mesh.errors import InvalidRequest
from mesh.router.tenants import Tenant


def check_tier(tiers: Mapping[str, object], name: str) -> str:
    if name not in tiers:
        raise InvalidRequest(f"Unknown tier '{name}' (known: {', '.join(tiers)}).", param="tier")
    return name


def check_patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    cleaned = tuple(p.strip() for p in patterns)
    if any(not p for p in cleaned):
        raise InvalidRequest("Model patterns must not be empty.", param="model_patterns")
    return cleaned


def check_rotation(t: Tenant) -> None:
    if t.rotation_max_age_s < 0 or t.rotation_overlap_s < 0:
        raise InvalidRequest("Rotation settings must be >= 0.", param="rotation_max_age_s")
    if t.rotation_max_age_s and t.rotation_overlap_s >= t.rotation_max_age_s:
        raise InvalidRequest(
            "The rotation overlap must be shorter than the maximum key age.",
            param="rotation_overlap_s",
        )
