"""Helpers for the accounts tests: a settable clock and Accounts on a temporary SQLite file."""

from __future__ import annotations

from pathlib import Path

from mesh.router.accounts import Accounts, Bootstrap
from mesh.router.keys import KeyHasher
from mesh.router.store import SqliteStore, Store
from mesh.router.tenants import DEFAULT_TIERS, Tier

PEPPER = b"test-pepper-0123456789abcdef"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_accounts(
    tmp_path: Path,
    clock: FakeClock,
    tiers: dict[str, Tier] | None = None,
    bootstrap: Bootstrap = Bootstrap(),
    store: Store | None = None,
) -> Accounts:
    """`store`: another store than the SQLite file (the PostgreSQL variants pass theirs)."""
    return Accounts(
        store or SqliteStore(tmp_path / "accounts.sqlite3"),
        KeyHasher(PEPPER),
        tiers or dict(DEFAULT_TIERS),
        clock=clock,
        rotation_check_s=3600,
        bootstrap=bootstrap,
    )
