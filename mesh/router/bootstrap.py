"""Keys the environment asks for (LLMAAS_ADMIN_KEY, LLMAAS_DEV_KEY), made to exist at start."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from mesh.router.directory import Directory
from mesh.router.tenants import Tenant

log = logging.getLogger(__name__)

ADMIN_TENANT = "admin"
DEV_TENANT = "dev"


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """Keys that must exist with exactly these values after start (from the environment)."""

    admin_key: str = ""
    dev_key: str = ""
    dev_tier: str = "enterprise"


async def apply_bootstrap(b: Bootstrap, directory: Directory, clock: Callable[[], float]) -> None:
    if b.admin_key:
        await _ensure_tenant(directory, ADMIN_TENANT, "enterprise", clock)
        await _ensure_env_key(directory, ADMIN_TENANT, b.admin_key, "LLMAAS_ADMIN_KEY", admin=True)
    if b.dev_key:
        await _ensure_tenant(directory, DEV_TENANT, b.dev_tier, clock)
        await _ensure_env_key(directory, DEV_TENANT, b.dev_key, "LLMAAS_DEV_KEY", admin=False)


async def _ensure_env_key(
    directory: Directory, tenant: str, secret: str, var: str, *, admin: bool
) -> None:
    """The env key exists; an admin's revocation, expiry or rotation of it persists (the
    environment only creates it, never brings it back)."""
    existing = directory.find(secret)
    if existing is not None and (
        existing.revoked_at or existing.expires_at or existing.successor_id
    ):
        state = "revoked" if existing.revoked_at else "expiring or rotated"
        log.warning(
            "%s is key %s, %s by an admin: left as it is (set another value to get a fresh key)",
            var,
            existing.id,
            state,
        )
        return
    await directory.ensure_key(tenant, secret, admin=admin)


async def _ensure_tenant(
    directory: Directory, name: str, tier: str, clock: Callable[[], float]
) -> None:
    tenant = directory.find_tenant(name) or Tenant(name=name, created_at=clock())
    await directory.save_tenant(replace(tenant, tier=tier, model_patterns=("*",)))
