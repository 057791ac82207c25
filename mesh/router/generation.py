"""Calling workers: a Generate stream with invisible failover before the first token,
and Embed with the same retry rule.

Before the first message, a worker that is unreachable (UNAVAILABLE) or that denies
serving the model (NOT_FOUND: its Info was stale) is taken out of rotation and the
request goes to another healthy worker. After the first message the client has already
seen tokens, so a failure ends the stream with a clean error instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable

import grpc

from mesh import tracing
from mesh.errors import MeshError, Unavailable, from_rpc_error
from mesh.pb import common_pb2, worker_pb2
from mesh.router.placement import request_hashes
from mesh.router.workers import WorkerHandle, WorkerPool

log = logging.getLogger(__name__)

_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND)
# A worker whose call failed stays out this long even if its health check passes.
FAILED_CALL_HOLD_S = 1.0


def _no_worker(model: str, tried: int) -> Unavailable:
    detail = f" ({tried} tried)" if tried else ""
    return Unavailable(
        f"No healthy worker could serve '{model}'{detail}; retry in a few seconds.",
        code="model_unavailable",
        param="model",
        retry_after=5,
    )


def _take_out(pool: WorkerPool, worker: WorkerHandle, err: grpc.aio.AioRpcError) -> None:
    log.warning(
        "worker %s failed before the first token (%s): failing over",
        worker.address,
        err.code().name,
    )
    if err.code() == grpc.StatusCode.NOT_FOUND:
        pool.forget_models(worker)
    else:
        pool.mark_failed(worker, f"{err.code().name}: {err.details()}", hold_s=FAILED_CALL_HOLD_S)


def _mid_stream_error(worker: WorkerHandle, err: grpc.aio.AioRpcError) -> MeshError:
    if err.code() in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
    ):
        return Unavailable(
            f"The worker serving this request failed mid-stream ({err.code().name}); "
            "the answer is incomplete. Retry the request.",
            code="worker_failed",
        )
    return from_rpc_error(err)


async def generate(
    pool: WorkerPool,
    request: worker_pb2.GenerateRequest,
    *,
    timeout: float,
    weight: float = 1.0,
    on_dispatch: Callable[[], None] | None = None,
) -> AsyncIterator[worker_pb2.GenerateResponse]:
    """The worker's messages; each choice's last one carries finish_reason, the stream's
    last one (after every choice finished) usage.

    The first worker comes from `pool.acquire` (placement with prefix affinity; a fair wait
    when the model is saturated; `weight` is the tenant's fair-queue weight). A failover
    goes to another worker at once: the request already had its turn. `on_dispatch` is
    called when a worker is sent the request (from then on its prompt is being computed).
    """
    deadline = time.monotonic() + timeout
    hashes = request_hashes(request)
    choices = max(1, request.sampling.n)
    tried: list[str] = []
    worker = await pool.acquire(
        request.model, tenant=request.tenant, weight=weight, hashes=hashes, timeout=timeout
    )
    while worker is not None:
        tried.append(worker.address)
        num_seen = finished = 0
        if on_dispatch is not None:
            on_dispatch()
        call = worker.stub.Generate(
            request,
            timeout=max(0.001, deadline - time.monotonic()),
            metadata=tracing.inject_metadata(),
        )
        try:
            async for resp in call:
                num_seen += 1
                yield resp
                if resp.finish_reason != common_pb2.FINISH_REASON_UNSPECIFIED:
                    finished += 1
                    if finished >= choices:
                        return
            raise Unavailable(
                f"The worker {worker.address} ended the stream without finishing; retry the request.",
                code="worker_failed",
            )
        except grpc.aio.AioRpcError as err:
            if num_seen or err.code() not in _RETRYABLE:
                raise (
                    _mid_stream_error(worker, err) if num_seen else from_rpc_error(err)
                ) from None
            _take_out(pool, worker, err)  # nothing sent yet: fail over, invisibly
            pool.counters["failovers"] += 1
        finally:
            # Client gone, deadline, or error: the worker frees the sequence now.
            call.cancel()
            pool.release(worker)
        worker = await pool.acquire(request.model, hashes=hashes, exclude=tried, wait=False)
    raise _no_worker(request.model, len(tried))


async def run_embed(
    pool: WorkerPool,
    request: worker_pb2.EmbedRequest,
    *,
    timeout: float,
    tenant: str = "",
    weight: float = 1.0,
) -> worker_pb2.EmbedResponse:
    tried: list[str] = []
    worker = await pool.acquire(request.model, tenant=tenant, weight=weight, timeout=timeout)
    while worker is not None:
        tried.append(worker.address)
        try:
            return await worker.stub.Embed(
                request, timeout=timeout, metadata=tracing.inject_metadata()
            )
        except grpc.aio.AioRpcError as err:
            if err.code() not in _RETRYABLE:
                raise from_rpc_error(err) from None
            _take_out(pool, worker, err)
        finally:
            pool.release(worker)
        worker = await pool.acquire(request.model, exclude=tried, wait=False)
    raise _no_worker(request.model, len(tried))
