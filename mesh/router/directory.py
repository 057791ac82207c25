"""Tenants and keys in memory (for O(1) authentication), written through to the Store.

Every change is persisted first and applied to memory after, under one lock, so memory
never shows a state the database does not hold; cached principals are dropped on every
change, which makes a revoke or a rotation effective for the very next request. The
lookups (hot path, no I/O) are the `DirectoryIndex` this class extends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

from mesh.errors import InvalidRequest, NotFound
from mesh.router.directory_index import DirectoryIndex
from mesh.router.keys import (
    KeyHasher,
    KeyRecord,
    format_key,
    make_successor,
    new_key_id,
    public_id,
)
from mesh.router.store import Store
from mesh.router.tenants import Tenant


class Directory(DirectoryIndex):
    def __init__(self, store: Store, hasher: KeyHasher, clock: Callable[[], float]) -> None:
        super().__init__(hasher)
        self._store = store
        self._clock = clock
        self._last_used: dict[str, float] = {}  # not yet written to the store
        self._lock = asyncio.Lock()
        # Called after every change is persisted and applied (mesh.router.shared.changes
        # tells the other routers); None with one router.
        self.on_change: Callable[[], Awaitable[None]] | None = None

    async def load(self) -> None:
        self._tenants = {t.name: t for t in await self._store.load_tenants()}
        for key in await self._store.load_keys():
            self._put_key(key)

    async def reload(self) -> None:
        """Everything again from the store (another router changed a key or tenant)."""
        async with self._lock:
            tenants = {t.name: t for t in await self._store.load_tenants()}
            keys = await self._store.load_keys()
            self._tenants, self._keys, self._by_hash = tenants, {}, {}
            for key in keys:
                self._put_key(key)
            self._principals.clear()

    # -- last use (memory, flushed in batches) --

    def mark_used(self, key: KeyRecord, now: float) -> None:
        # Kept in memory and flushed in batches: a write per request would cost an fsync.
        key.last_used_at = now
        self._last_used[key.id] = now

    def take_last_used(self) -> dict[str, float]:
        out, self._last_used = self._last_used, {}
        return out

    # -- changes (persisted, then applied) --

    async def save_tenant(self, tenant: Tenant) -> Tenant:
        async with self._lock:
            await self._store.save_tenant(tenant)
            self._put_tenant(tenant)
        if self.on_change is not None:
            await self.on_change()
        return tenant

    async def create_key(
        self, tenant: str, patterns: tuple[str, ...] | None, expires_at: float, admin: bool
    ) -> tuple[KeyRecord, str]:
        self.tenant(tenant)
        key_id = new_key_id()
        secret = format_key(key_id)
        key = KeyRecord(
            id=key_id,
            tenant=tenant,
            key_hash=self._hasher.digest(secret),
            model_patterns=patterns,
            admin=admin,
            created_at=self._clock(),
            expires_at=expires_at,
        )
        await self._save_keys(key)
        return key, secret

    async def ensure_key(self, tenant: str, secret: str, admin: bool) -> KeyRecord:
        """A key with exactly this secret exists, active, for `tenant` (env bootstrap)."""
        digest = self._hasher.digest(secret)
        existing = self._by_hash.get(digest)
        if existing is not None:
            key = replace(existing, tenant=tenant, admin=admin, revoked_at=0.0, expires_at=0.0)
        else:
            key_id = public_id(secret)
            if not key_id or key_id in self._keys:
                key_id = new_key_id()
            key = KeyRecord(
                id=key_id, tenant=tenant, key_hash=digest, admin=admin, created_at=self._clock()
            )
        await self._save_keys(key)
        return key

    async def rotate(
        self, key_id: str, overlap_s: int, *, auto: bool
    ) -> tuple[KeyRecord, KeyRecord, str] | None:
        """(old, successor, successor secret); an automatic rotation seals the secret for
        GetSuccessorKey and is skipped (None) when another caller rotated the key already."""
        async with self._lock:
            old = self.key(key_id)
            now = self._clock()
            if auto and not self.rotation_due(old, now):
                return None
            if old.successor_id or not old.is_usable(now):
                raise InvalidRequest(
                    f"API key {key_id} is revoked, expired or already rotated "
                    f"(successor: {old.successor_id or 'none'}).",
                    param="key_id",
                )
            new_id = new_key_id()
            secret = format_key(new_id)
            old, new = make_successor(old, new_id, self._hasher.digest(secret), overlap_s, now)
            if auto:
                new.pending_secret = self._hasher.seal(secret, new_id)
            await self._save_keys_locked(old, new)
        return old, new, secret

    async def revoke(self, key_id: str) -> KeyRecord:
        async with self._lock:
            key = self.key(key_id)
            if not key.revoked_at:
                key = replace(key, revoked_at=self._clock(), pending_secret=None)
                await self._save_keys_locked(key)
        return key

    async def take_successor(self, key_id: str) -> tuple[KeyRecord, str]:
        """The successor of `key_id` with its secret, once: the sealed copy is then wiped."""
        async with self._lock:
            old = self.key(key_id)
            if not old.successor_id:
                raise NotFound(
                    f"API key {key_id} has no successor yet.",
                    code="successor_not_found",
                    param="key_id",
                )
            new = self.key(old.successor_id)
            if new.pending_secret is None:
                raise NotFound(
                    f"The successor {new.id} of API key {key_id} was already retrieved "
                    "(or was shown when it was rotated manually).",
                    code="successor_not_found",
                    param="key_id",
                )
            secret = self._hasher.open(new.pending_secret, new.id)
            new = replace(new, pending_secret=None)
            await self._save_keys_locked(new)
        return new, secret

    async def _save_keys(self, *keys: KeyRecord) -> None:
        async with self._lock:
            await self._save_keys_locked(*keys)

    async def _save_keys_locked(self, *keys: KeyRecord) -> None:
        await self._store.save_keys(keys)
        for key in keys:
            self._put_key(key)
        self._principals.clear()
        if self.on_change is not None:  # bounded (sub-second timeouts), never raises
            await self.on_change()
