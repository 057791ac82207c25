"""The worker pool: the one object the router's servicers hold to reach workers.

It composes three units, each with its own module and tests:
- registry.py: which workers exist (static config, `Announce` / `Withdraw`) and what each
  serves (its own `Info`; a request never goes to a worker that did not list the model);
- monitor.py: health probes and the load stream (`WatchLoad`, the only source of load),
  which move workers in and out of rotation;
- dispatcher.py: picking a worker (placement.py: load with prefix affinity), the per-model
  fair queue when every worker is saturated (fairqueue.py), in-flight accounting.

The pool only wires them together and keeps the names callers use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mesh.observations import Observations
from mesh.pb import common_pb2
from mesh.router.dispatcher import Dispatcher
from mesh.router.monitor import LOAD_INTERVAL_MS, WorkerMonitor
from mesh.router.placement import Placer
from mesh.router.registry import (
    DEFAULT_CAPACITY,
    WORKER_CHANNEL_OPTIONS,
    ChannelFactory,
    WorkerHandle,
    WorkerRegistry,
    default_channel,
)

__all__ = [
    "DEFAULT_CAPACITY",
    "LOAD_INTERVAL_MS",
    "WORKER_CHANNEL_OPTIONS",
    "ChannelFactory",
    "WorkerHandle",
    "WorkerPool",
]


class WorkerPool:
    def __init__(
        self,
        addresses: Iterable[str],
        *,
        health_interval_s: float = 1.0,
        channel_factory: ChannelFactory = default_channel,
        observations: Observations | None = None,
        placer: Placer | None = None,
        queue_timeout_s: float = 30.0,
        max_queued_per_tenant: int = 256,
        max_queued: int = 4096,
        load_interval_ms: int = LOAD_INTERVAL_MS,
        forget_after_s: float = 300.0,
    ) -> None:
        self.registry = WorkerRegistry(addresses, channel_factory)
        self.dispatcher = Dispatcher(
            self.registry,
            placer,
            max_queued_per_tenant=max_queued_per_tenant,
            max_queued=max_queued,
        )
        self.monitor = WorkerMonitor(
            self.registry,
            interval_s=health_interval_s,
            observations=observations,
            load_interval_ms=load_interval_ms,
            forget_after_s=forget_after_s,
            on_room=self.dispatcher.dispatch_all,
            on_forget=self.dispatcher.placer.index.forget,
        )
        self.placer = self.dispatcher.placer
        self.counters = self.dispatcher.counters  # queued, queue_timeouts, queue_full, failovers
        self.queue_timeout_s = queue_timeout_s  # the longest a request waits its turn

    async def start(self) -> None:
        self.monitor.start()

    async def close(self) -> None:
        await self.monitor.close()
        self.dispatcher.close()
        await self.registry.close()

    # -- registry ---------------------------------------------------------------------

    async def add(
        self, address: str, *, static: bool = False, max_num_seqs: int = 0
    ) -> WorkerHandle:
        """Adds (or re-admits) a worker at run time (registry): probed at once; it enters
        rotation when its Info and health check say so."""
        handle = self.registry.admit(address, static=static, max_num_seqs=max_num_seqs)
        self.monitor.start()
        self.monitor.kick(address)
        return handle

    def withdraw(self, address: str) -> WorkerHandle | None:
        return self.registry.withdraw(address)

    def get(self, address: str) -> WorkerHandle | None:
        return self.registry.get(address)

    def workers(self) -> list[WorkerHandle]:
        return self.registry.workers()

    def is_served(self, model: str) -> bool:
        return self.registry.is_served(model)

    def knows(self, model: str) -> bool:
        return self.registry.knows(model)

    def model_infos(self) -> dict[str, common_pb2.ModelInfo]:
        return self.registry.model_infos()

    def context_length(self, model: str) -> int:
        return self.registry.context_length(model)

    # -- dispatcher -------------------------------------------------------------------

    def pick(
        self, model: str, exclude: Iterable[str] = (), hashes: Sequence[bytes] = ()
    ) -> WorkerHandle | None:
        return self.dispatcher.pick(model, exclude, hashes)

    async def acquire(
        self,
        model: str,
        *,
        tenant: str = "",
        weight: float = 1.0,
        hashes: Sequence[bytes] = (),
        timeout: float | None = None,
        exclude: Iterable[str] = (),
        wait: bool = True,
    ) -> WorkerHandle | None:
        """Dispatcher.acquire, waiting at most `queue_timeout_s` (less with `timeout`)."""
        limit = self.queue_timeout_s if timeout is None else min(timeout, self.queue_timeout_s)
        return await self.dispatcher.acquire(
            model,
            timeout=limit,
            tenant=tenant,
            weight=weight,
            hashes=hashes,
            exclude=exclude,
            wait=wait,
        )

    def release(self, worker: WorkerHandle) -> None:
        self.dispatcher.release(worker)

    # A failed call takes the worker out now (generation.py); the handle keeps the state.
    mark_failed = staticmethod(WorkerHandle.mark_failed)
    forget_models = staticmethod(WorkerHandle.forget_models)
