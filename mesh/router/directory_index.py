"""Tenants and keys in memory, for O(1) authentication: the read side of `Directory`.

Lookups only, no I/O; `Directory` (its subclass) persists every change and then applies
it here through `_put_key` / `_put_tenant` and drops the cached principals.
"""

from __future__ import annotations

import hmac

from mesh.errors import NotFound
from mesh.router.access import Principal
from mesh.router.keys import KeyHasher, KeyRecord, public_id, rotation_due
from mesh.router.tenants import Tenant, effective_patterns


class DirectoryIndex:
    def __init__(self, hasher: KeyHasher) -> None:
        self._hasher = hasher
        self._tenants: dict[str, Tenant] = {}
        self._keys: dict[str, KeyRecord] = {}
        self._by_hash: dict[bytes, KeyRecord] = {}
        self._principals: dict[str, Principal] = {}

    # -- lookups (hot path, no I/O) --

    def find(self, api_key: str) -> KeyRecord | None:
        """The key a presented secret belongs to: by public id, else by keyed hash."""
        digest = self._hasher.digest(api_key)
        key = self._keys.get(public_id(api_key))
        if key is not None and hmac.compare_digest(key.key_hash, digest):
            return key
        return self._by_hash.get(digest)

    def principal(self, key: KeyRecord) -> Principal:
        principal = self._principals.get(key.id)
        if principal is None:
            tenant = self.tenant(key.tenant)
            principal = Principal(
                tenant=tenant.name,
                key_id=key.id,
                admin=key.admin,
                tier=tenant.tier,
                model_patterns=effective_patterns(tenant.model_patterns, key.model_patterns),
                filter_enabled=tenant.filter_enabled,
                experimental_opt_in=tenant.experimental_opt_in,
                content_logging=tenant.content_logging,
            )
            self._principals[key.id] = principal
        return principal

    def find_tenant(self, name: str) -> Tenant | None:
        return self._tenants.get(name)

    def tenant(self, name: str) -> Tenant:
        tenant = self._tenants.get(name)
        if tenant is None:
            raise NotFound(f"No tenant named '{name}'.", code="tenant_not_found", param="tenant")
        return tenant

    def tenants(self) -> list[Tenant]:
        return sorted(self._tenants.values(), key=lambda t: t.name)

    def find_key(self, key_id: str) -> KeyRecord | None:
        return self._keys.get(key_id)

    def key(self, key_id: str) -> KeyRecord:
        key = self._keys.get(key_id)
        if key is None:
            raise NotFound(f"No API key with id '{key_id}'.", code="key_not_found", param="key_id")
        return key

    def keys_of(self, tenant: str) -> list[KeyRecord]:
        return sorted(
            (k for k in self._keys.values() if k.tenant == tenant), key=lambda k: k.created_at
        )

    def due_rotations(self, now: float) -> list[KeyRecord]:
        return [k for k in self._keys.values() if self.rotation_due(k, now)]

    def rotation_due(self, key: KeyRecord, now: float) -> bool:
        tenant = self._tenants.get(key.tenant)
        return tenant is not None and rotation_due(
            key, tenant.rotation_max_age_s, tenant.rotation_overlap_s, now
        )

    def _put_tenant(self, tenant: Tenant) -> None:
        self._tenants[tenant.name] = tenant
        self._principals.clear()

    def _put_key(self, key: KeyRecord) -> None:
        old = self._keys.get(key.id)
        if old is not None:
            self._by_hash.pop(old.key_hash, None)
        self._keys[key.id] = key
        self._by_hash[key.key_hash] = key
