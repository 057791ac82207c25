"""Calling workers: a Generate stream with invisible failover before the first token,
and Embed with the same retry rule.

Before the first message, a worker that is unreachable (UNAVAILABLE) or that denies
serving the model (NOT_FOUND: its Info was stale) is taken out of rotation and the
request goes to another healthy worker. After the first message the client has already
seen tokens, so a failure ends the stream with a clean error instead.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc

from mesh.errors import MeshError, Unavailable, from_rpc_error
from mesh.pb import common_pb2, worker_pb2
from mesh.router.workers import WorkerHandle, WorkerPool

log = logging.getLogger(__name__)

_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND)


def _no_worker(model: str, tried: int) -> Unavailable:
    detail = f" ({tried} tried)" if tried else ""
    return Unavailable(
        f"No healthy worker could serve '{model}'{detail}; retry in a few seconds.",
        code="model_unavailable", param="model", retry_after=5,
    )


def _take_out(pool: WorkerPool, worker: WorkerHandle, err: grpc.aio.AioRpcError) -> None:
    log.warning("worker %s failed before the first token (%s): failing over", worker.address, err.code().name)
    if err.code() == grpc.StatusCode.NOT_FOUND:
        pool.forget_models(worker)
    else:
        pool.mark_failed(worker, f"{err.code().name}: {err.details()}")


def _mid_stream_error(worker: WorkerHandle, err: grpc.aio.AioRpcError) -> MeshError:
    if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
        return Unavailable(
            f"The worker serving this request failed mid-stream ({err.code().name}); "
            "the answer is incomplete. Retry the request.",
            code="worker_failed",
        )
    return from_rpc_error(err)


async def generate(
    pool: WorkerPool, request: worker_pb2.GenerateRequest, *, timeout: float
) -> AsyncIterator[worker_pb2.GenerateResponse]:
    """The worker's messages; the last one carries finish_reason and usage."""
    tried: list[str] = []
    while (worker := pool.pick(request.model, exclude=tried)) is not None:
        tried.append(worker.address)
        num_seen = 0
        with pool.lease(worker):
            call = worker.stub.Generate(request, timeout=timeout)
            try:
                async for resp in call:
                    num_seen += 1
                    yield resp
                    if resp.finish_reason != common_pb2.FINISH_REASON_UNSPECIFIED:
                        return
            except grpc.aio.AioRpcError as err:
                if num_seen == 0 and err.code() in _RETRYABLE:
                    _take_out(pool, worker, err)
                    continue
                raise (_mid_stream_error(worker, err) if num_seen else from_rpc_error(err)) from None
            finally:
                # Client gone, deadline, or error: the worker frees the sequence now.
                call.cancel()
        raise Unavailable(
            f"The worker {worker.address} ended the stream without finishing; retry the request.",
            code="worker_failed",
        )
    raise _no_worker(request.model, len(tried))


async def run_embed(pool: WorkerPool, request: worker_pb2.EmbedRequest, *, timeout: float) -> worker_pb2.EmbedResponse:
    tried: list[str] = []
    while (worker := pool.pick(request.model, exclude=tried)) is not None:
        tried.append(worker.address)
        with pool.lease(worker):
            try:
                return await worker.stub.Embed(request, timeout=timeout)
            except grpc.aio.AioRpcError as err:
                if err.code() not in _RETRYABLE:
                    raise from_rpc_error(err) from None
                _take_out(pool, worker, err)
    raise _no_worker(request.model, len(tried))
