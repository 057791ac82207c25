"""API keys in use: authentication on the hot path (memory only), rotation by policy or
by hand, and the last-used timestamps written back in batches."""

from __future__ import annotations

import logging
from collections.abc import Callable

from mesh.errors import Unauthenticated
from mesh.router.access import Principal
from mesh.router.directory import Directory
from mesh.router.keys import DEFAULT_MANUAL_OVERLAP_S, KeyRecord
from mesh.router.recording import Recorder
from mesh.router.store import Store

log = logging.getLogger(__name__)


def invalid_key() -> Unauthenticated:
    return Unauthenticated(
        "Incorrect API key provided. Pass a valid key as 'Authorization: Bearer <key>'.",
        code="invalid_api_key",
    )


def check_usable(key: KeyRecord, now: float) -> None:
    """Raises Unauthenticated for a revoked or expired key."""
    if key.revoked_at:
        raise Unauthenticated(
            f"The API key {key.id} has been revoked. Use another key.", code="invalid_api_key"
        )
    if key.is_expired(now):
        hint = f" Fetch its successor {key.successor_id}." if key.successor_id else ""
        raise Unauthenticated(f"The API key {key.id} has expired.{hint}", code="invalid_api_key")


class KeyLifecycle:
    """Authenticates presented keys and rotates them (every rotation is audited)."""

    def __init__(
        self,
        directory: Directory,
        store: Store,
        recorder: Recorder,
        clock: Callable[[], float],
    ) -> None:
        self._directory = directory
        self._store = store
        self._recorder = recorder
        self._clock = clock

    async def authenticate(self, api_key: str) -> Principal:
        key = self._directory.find(api_key) if api_key else None
        if key is None:
            raise invalid_key()
        now = self._clock()
        check_usable(key, now)
        if self._directory.rotation_due(key, now):
            await self._rotate_on_use(key.id)
        self._directory.mark_used(key, now)
        return self._directory.principal(key)

    async def rotate_key(
        self, key_id: str, overlap_s: int, actor: Principal | None
    ) -> tuple[KeyRecord, KeyRecord, str]:
        """Manual rotation; `overlap_s` 0 = the tenant's policy (or one hour without one)."""
        key = self._directory.key(key_id)
        overlap = (
            overlap_s
            or self._directory.tenant(key.tenant).rotation_overlap_s
            or DEFAULT_MANUAL_OVERLAP_S
        )
        result = await self._directory.rotate(key_id, overlap, auto=False)
        assert result is not None  # manual rotations are never skipped
        old, new, secret = result
        await self._recorder.audit_event(
            actor,
            "key.rotate",
            tenant=old.tenant,
            key_id=old.id,
            reason=f"manual; successor {new.id}; overlap {overlap}s",
        )
        return old, new, secret

    async def _rotate_on_use(self, key_id: str) -> None:
        # The key is still valid: a failed rotation is retried later, never fails the request.
        try:
            await self._rotate_auto(key_id)
        except Exception:  # noqa: BLE001
            log.exception("automatic rotation of %s failed", key_id)

    async def _rotate_auto(self, key_id: str) -> None:
        key = self._directory.key(key_id)
        overlap = self._directory.tenant(key.tenant).rotation_overlap_s
        result = await self._directory.rotate(key_id, overlap, auto=True)
        if result is not None:
            old, new, _secret = result
            log.info("rotated key %s -> %s (tenant %s)", old.id, new.id, old.tenant)
            await self._recorder.audit_event(
                None,
                "key.rotate",
                tenant=old.tenant,
                key_id=old.id,
                reason=f"automatic (max age policy); successor {new.id}; overlap {overlap}s",
            )

    async def rotate_due_keys(self) -> int:
        due = self._directory.due_rotations(self._clock())
        for key in due:
            await self._rotate_auto(key.id)
        return len(due)

    async def flush_last_used(self) -> None:
        pending = self._directory.take_last_used()
        if pending:
            await self._store.touch_keys(pending)
