"""Keeping every router told about this worker.

The routers are LLMAAS_ROUTER_ADDRS (`--router-address`); a `dns:///name:port` entry stands
for every address the name resolves to (a headless Service names each router pod), so each
router is told directly. The worker announces at start and again every
`REANNOUNCE_INTERVAL_S`: a router started or restarted since then learns it too (each
router's Registry takes a repeated announcement as a no-op), and with a shared registry
every router heartbeats it itself, so no router's death hides it from the others. The
repeats stop before the worker withdraws on SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable

from mesh.aio import cancel_and_wait
from mesh.config import parse_addresses

log = logging.getLogger(__name__)

REANNOUNCE_INTERVAL_S = 15.0


async def announce_targets(raw: str) -> list[str]:
    """The router addresses to tell, `dns:` targets expanded to what they resolve to now
    (kept as they are when they do not resolve: the call then says why)."""
    out: list[str] = []
    for entry in parse_addresses(raw, "--router-address"):
        out.extend(await _resolve(entry) if entry.startswith("dns:") else [entry])
    return list(dict.fromkeys(out))


async def _resolve(target: str) -> list[str]:
    # dns:///host:port or dns://authority/host:port (the authority is the DNS server).
    name = target.removeprefix("dns:").removeprefix("//").split("/", 1)[-1]
    host, _, port = name.rpartition(":")
    if not host or not port.isdigit():
        return [target]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host.strip("[]"), int(port), type=socket.SOCK_STREAM
        )
    except OSError as exc:
        log.warning("router address %s does not resolve: %s", target, exc)
        return [target]
    ips = sorted({info[4][0] for info in infos})
    return [f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}" for ip in ips] or [target]


class Reannouncer:
    """Runs `announce` every `interval_s` from `start()` until `stop()`."""

    def __init__(
        self, announce: Callable[[], Awaitable[None]], interval_s: float = REANNOUNCE_INTERVAL_S
    ) -> None:
        self._announce = announce
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="reannounce")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self._announce()
            except Exception:  # noqa: BLE001 - best effort; the next round tries again
                log.warning("announcing again failed", exc_info=True)
