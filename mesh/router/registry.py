"""Which workers exist and what each serves: one handle (and one channel) per address.

Workers come from the static config (`[[workers]]`, LLMAAS_WORKER_ADDRS) and from the
Registry (`Announce` / `Withdraw`, registry_service.py). Only a worker's own `Info` decides
what it is sent (`WorkerHandle.models`, filled by the monitor): a request never goes to a
worker that did not say it serves the model. The registry holds state and answers
questions about it; probing is the monitor's (monitor.py), choosing the dispatcher's
(dispatcher.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import grpc

from mesh.pb import common_pb2, worker_pb2_grpc
from mesh.rpc import open_channel

log = logging.getLogger(__name__)

ChannelFactory = Callable[[str], grpc.aio.Channel]

DEFAULT_CAPACITY = 16  # a worker that did not say its max_num_seqs

# A restarted worker is dialled again within ~1 s, not after gRPC's default reconnect
# backoff (which grows to two minutes, and is shared by every channel to the same address).
WORKER_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 1000),
)


def default_channel(address: str) -> grpc.aio.Channel:
    return open_channel(address, peer_role="worker", options=WORKER_CHANNEL_OPTIONS)


@dataclass(slots=True, eq=False)
class WorkerHandle:
    address: str
    channel: grpc.aio.Channel
    stub: worker_pb2_grpc.WorkerStub
    worker_id: str = ""
    # model id -> what the worker said about it in Info; empty until Info answered.
    models: dict[str, common_pb2.ModelInfo] = field(default_factory=dict)
    is_healthy: bool = False
    num_in_flight: int = 0
    # Sequences decoded together (Info / announcement / load report); 0 = not said.
    max_num_seqs: int = 0
    static: bool = True  # from the config; announced workers are forgotten once long gone
    withdrawn: bool = False  # Withdraw received: out until it re-announces or restarts
    draining: bool = False  # its load report says it is shutting down
    # Live load as the worker reports it (WatchLoad, the only source of load).
    num_running: int = 0
    num_waiting: int = 0
    kv_cache_usage: float = 0.0
    load_live: bool = False  # its load stream is open and has reported
    down_since: float | None = None
    # After a failed call: kept out until then even if its health check says SERVING.
    hold_until: float = 0.0
    late_probes: int = 0  # probes in a row that timed out (WorkerMonitor)

    @property
    def capacity(self) -> int:
        return self.max_num_seqs or DEFAULT_CAPACITY

    @property
    def load(self) -> int:
        return max(self.num_in_flight, self.num_running + self.num_waiting)

    @property
    def has_room(self) -> bool:
        return self.num_in_flight < self.capacity

    @property
    def in_rotation(self) -> bool:
        return (
            self.is_healthy
            and not self.withdrawn
            and not self.draining
            and (not self.hold_until or time.monotonic() >= self.hold_until)
        )

    def serves(self, model: str) -> bool:
        return model in self.models

    def is_available_for(self, model: str) -> bool:
        return self.in_rotation and self.serves(model)

    def mark_failed(self, reason: str, hold_s: float = 0.0) -> None:
        """Out of rotation now, not at the next probe; the probe brings it back (not before
        `hold_s`: a worker whose calls fail while its health check passes is flapping)."""
        if self.is_healthy:
            log.warning("worker %s out of rotation: %s", self.address, reason)
        self.is_healthy = False
        if hold_s:
            self.hold_until = time.monotonic() + hold_s
        if self.down_since is None:
            self.down_since = time.monotonic()

    def forget_models(self) -> None:
        """The worker denied serving a model it announced: ask Info again."""
        self.models = {}
        self.is_healthy = False


class WorkerRegistry:
    def __init__(
        self, addresses: Iterable[str], channel_factory: ChannelFactory = default_channel
    ) -> None:
        self._channel_factory = channel_factory
        self._workers: dict[str, WorkerHandle] = {}
        for address in dict.fromkeys(addresses):  # one channel per address, order kept
            self._open(address, static=True)

    def _open(self, address: str, *, static: bool) -> WorkerHandle:
        channel = self._channel_factory(address)
        handle = WorkerHandle(address, channel, worker_pb2_grpc.WorkerStub(channel), static=static)
        self._workers[address] = handle
        return handle

    def admit(self, address: str, *, static: bool = False, max_num_seqs: int = 0) -> WorkerHandle:
        """Adds (or re-admits) a worker at run time (Announce); it enters rotation when the
        monitor's Info and health check say so."""
        handle = self._workers.get(address) or self._open(address, static=static)
        if handle.withdrawn:
            log.info("worker %s re-announced", address)
        handle.withdrawn = False
        handle.down_since = None
        if max_num_seqs > 0 and not handle.max_num_seqs:
            handle.max_num_seqs = max_num_seqs
        if not handle.is_healthy:
            handle.models = {}  # ask Info again: a restarted worker may serve something else
        return handle

    def withdraw(self, address: str) -> WorkerHandle | None:
        """The worker is leaving (draining): no new requests from now on."""
        handle = self._workers.get(address)
        if handle is None:
            return None
        if not handle.withdrawn:
            log.info(
                "worker %s withdrew: out of rotation (in flight %d)", address, handle.num_in_flight
            )
        handle.withdrawn = True
        return handle

    def get(self, address: str) -> WorkerHandle | None:
        return self._workers.get(address)

    def workers(self) -> list[WorkerHandle]:
        return list(self._workers.values())

    async def remove(self, address: str) -> WorkerHandle | None:
        """Forgets a worker (an announced one gone for long) and closes its channel."""
        handle = self._workers.pop(address, None)
        if handle is not None:
            await handle.channel.close()
        return handle

    async def close(self) -> None:
        await asyncio.gather(
            *(w.channel.close() for w in self._workers.values()), return_exceptions=True
        )

    # -- what is served ---------------------------------------------------------------

    def candidates(self, model: str, exclude: Iterable[str] = ()) -> list[WorkerHandle]:
        """Workers in rotation that serve `model`, in registration order."""
        skip = set(exclude)
        return [
            w for w in self._workers.values() if w.address not in skip and w.is_available_for(model)
        ]

    def is_served(self, model: str) -> bool:
        return any(w.is_available_for(model) for w in self._workers.values())

    def knows(self, model: str) -> bool:
        """Some worker (healthy or not) announced this model."""
        return any(w.serves(model) for w in self._workers.values())

    def model_infos(self) -> dict[str, common_pb2.ModelInfo]:
        """Every announced model, with `served` true when a healthy worker has it."""
        out: dict[str, common_pb2.ModelInfo] = {}
        for w in self._workers.values():
            for model_id, info in w.models.items():
                merged = out.setdefault(model_id, common_pb2.ModelInfo())
                if not merged.id:
                    merged.CopyFrom(info)
                    merged.served = False
                merged.served = merged.served or w.in_rotation
        return out

    def context_length(self, model: str) -> int:
        """The smallest context window a worker in rotation announced for `model` (Info);
        0 when none said."""
        windows = [
            w.models[model].context_length
            for w in self.candidates(model)
            if w.models[model].context_length > 0
        ]
        return min(windows, default=0)
