"""The worker's SIGTERM path (`worker.__main__.shutdown`): bounded whatever the server does."""

from __future__ import annotations

import asyncio

import worker.__main__ as worker_main
from worker.__main__ import shutdown
from worker.config import WorkerConfig
from worker.service import ServedModel


class _GrpcServer:
    def __init__(self) -> None:
        self.stopped_with: list[float | None] = []

    async def stop(self, grace: float | None) -> None:
        self.stopped_with.append(grace)


class _Server:
    """drain_and_stop never returns (an idle stream the server's grace waits for, a stuck
    engine) unless `finishes`."""

    def __init__(self, finishes: bool) -> None:
        self.finishes = finishes
        self.server = _GrpcServer()
        self.drained_with: float | None = None

    async def drain_and_stop(self, timeout_s: float) -> None:
        self.drained_with = timeout_s
        if not self.finishes:
            await asyncio.Event().wait()


def _config(drain_s: float) -> WorkerConfig:
    return WorkerConfig(worker_id="w", drain_timeout_s=drain_s, router_address="")


SERVED = ServedModel(
    model_id="m", context_length=8, worker_id="w", max_num_seqs=1, device="cpu", dtype="bfloat16"
)


async def test_a_drain_that_never_ends_is_cut_at_its_bound_and_the_server_stopped(
    monkeypatch,
):
    monkeypatch.setattr(worker_main, "SHUTDOWN_SLACK_S", 0.01)
    monkeypatch.setattr(worker_main, "WITHDRAW_TIMEOUT_S", 0.01)
    server = _Server(finishes=False)
    finished = await shutdown(server, _config(0.0), SERVED, 1, asyncio.Event())
    assert finished is False
    assert server.server.stopped_with == [None]  # stopped without grace


async def test_a_second_signal_ends_the_drain_at_once():
    server = _Server(finishes=False)
    hurry = asyncio.Event()
    hurry.set()
    # A day-long drain: only `hurry` can end this shutdown before the test times out.
    finished = await shutdown(server, _config(86_400.0), SERVED, 1, hurry)
    assert finished is False
    assert server.server.stopped_with == [None]


async def test_a_drain_that_finishes_is_graceful():
    server = _Server(finishes=True)
    assert await shutdown(server, _config(3.0), SERVED, 1, asyncio.Event()) is True
    assert server.drained_with == 3.0 and server.server.stopped_with == []
