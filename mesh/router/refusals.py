"""Bounds how many refusals of callers without a valid key are stored one by one."""

from __future__ import annotations

from mesh.router.audit import clip

UNAUTH_RECORDS_PER_MINUTE = 60


class RefusalSampler:
    """Bounds how many unauthenticated refusals are stored one by one.

    Per UTC minute and (action, status, reason): the first `per_minute` pass; the rest are
    counted, and `take()` hands the counts of finished minutes out as aggregates. At most
    `max_keys` distinct keys a minute (then one catch-all key), so memory stays bounded.
    """

    def __init__(self, per_minute: int = UNAUTH_RECORDS_PER_MINUTE, max_keys: int = 64) -> None:
        self.per_minute = per_minute
        self._max_keys = max_keys
        self._minute = -1
        self._seen: dict[tuple[str, int, str], int] = {}
        self._pending: list[tuple[int, tuple[str, int, str], int]] = []  # (minute, key, count)

    def admit(self, action: str, status: int, reason: str, now: float) -> bool:
        """True: store this refusal individually; False: it was counted."""
        self._roll(now)
        key = (clip(action, 64), status, clip(reason, 128))
        if key not in self._seen and len(self._seen) >= self._max_keys:
            key = ("*", 0, "other reasons")
        seen = self._seen.get(key, 0) + 1
        self._seen[key] = seen
        return seen <= self.per_minute

    def take(self, now: float, *, all_minutes: bool = False) -> list[tuple[int, tuple, int]]:
        """Aggregates (minute start, key, count over the limit) of finished minutes."""
        self._roll(now)
        if all_minutes:
            self._close_minute()
        out, self._pending = self._pending, []
        return out

    def restore(self, aggregates: list[tuple[int, tuple, int]]) -> None:
        self._pending[:0] = aggregates

    def _roll(self, now: float) -> None:
        minute = int(now // 60)
        if minute != self._minute:
            self._close_minute()
            self._minute = minute

    def _close_minute(self) -> None:
        for key, seen in self._seen.items():
            if seen > self.per_minute:
                self._pending.append((self._minute * 60, key, seen - self.per_minute))
        self._seen = {}
