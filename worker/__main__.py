"""`python -m worker --model smollm2:135m --port 50061`: load a model and serve it over gRPC."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import torch

from mesh import metrics, rpc, tracing
from mesh.config import ConfigError, router_addresses
from mesh.metrics_http import metrics_port, start_metrics_server
from worker.announcer import Reannouncer, announce_targets
from worker.async_engine import AsyncLLMEngine
from worker.config import DTYPES, ENV_KEYS, WorkerConfig
from worker.embedding_service import EmbeddingServed, EmbeddingWorkerServer, is_embedding_model
from worker.engine import LLMEngine
from worker.loader import LoadedModel
from worker.memory_plan import format_bytes
from worker.service import ServedModel, WorkerServer

log = logging.getLogger("worker")

WITHDRAW_TIMEOUT_S = 2.0  # the router may be gone already (make run stops callers first)
SHUTDOWN_SLACK_S = 2.0  # beyond the drain, for the server's own stop


def parse_args(argv: list[str] | None = None) -> WorkerConfig:
    defaults = WorkerConfig.from_env()
    p = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    d = " (default: %(default)s)"
    p.add_argument("--model", default=defaults.model, help="catalog alias, GGUF file or HF dir" + d)
    p.add_argument(
        "--served-model-name",
        default=defaults.served_model_name,
        help="the model id to announce and answer to; default: the alias, file stem or dir name",
    )
    p.add_argument("--port", type=int, default=defaults.port, help="gRPC port" + d)
    p.add_argument("--host", default=defaults.host, help="listen address" + d)
    p.add_argument(
        "--worker-id", default=os.environ.get(ENV_KEYS["worker_id"]), help="default: worker-<port>"
    )
    p.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        default=defaults.dtype,
        help="weights and KV cache; bfloat16 on CPU adds int4 decode linears" + d,
    )
    p.add_argument("--device", default=defaults.device, help="cpu, cuda[:N] or mps" + d)
    p.add_argument(
        "--max-num-seqs",
        type=int,
        default=defaults.max_num_seqs,
        help="KV-cache slots: sequences run at once, others queue" + d,
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--kv-cache-memory",
        default=defaults.kv_cache_memory,
        help="memory budget of the KV cache (4GiB, 512MiB, bytes): fewer slots if it holds fewer",
    )
    budget.add_argument(
        "--memory-fraction",
        type=float,
        default=defaults.memory_fraction,
        help="share of the device's memory for this worker (weights + KV cache), as vLLM's "
        "gpu_memory_utilization; 0: no budget" + d,
    )
    p.add_argument(
        "--max-model-len",
        type=int,
        default=defaults.max_model_len,
        help="tokens per slot (prompt + output), at most the model's context" + d,
    )
    p.add_argument(
        "--max-prefill-tokens",
        type=int,
        default=defaults.max_prefill_tokens,
        help="prompt tokens prefilled per step, in one forward" + d,
    )
    p.add_argument(
        "--max-prefill-chunk",
        type=int,
        default=defaults.max_prefill_chunk,
        help="prompt tokens per sequence and step while others decode" + d,
    )
    p.add_argument(
        "--num-threads",
        type=int,
        default=defaults.num_threads,
        help="torch threads; default: this process's CPUs, at most 8; 0: torch's own default" + d,
    )
    p.add_argument(
        "--drain-timeout-s",
        type=float,
        default=defaults.drain_timeout_s,
        help="on SIGTERM, wait this long for running sequences" + d,
    )
    p.add_argument(
        "--stream-interval-ms",
        type=int,
        default=defaults.stream_interval_ms,
        help="with 8+ requests in flight, send each one's tokens at most this often, "
        "merged (0: every token at once)" + d,
    )
    p.add_argument(
        "--router-address",
        default=",".join(router_addresses(legacy=(ENV_KEYS["router_address"],))),
        help="host:port[,host:port...] of the routers to announce to (LLMAAS_ROUTER_ADDRS; "
        "empty: none)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seed of the generator for unseeded requests" + d,
    )
    args = vars(p.parse_args(argv))
    try:
        return WorkerConfig(**{k: v for k, v in args.items() if v is not None})
    except ValueError as exc:  # a bad value: one clear line, no traceback
        p.error(str(exc))


def load_server(
    config: WorkerConfig,
) -> tuple[WorkerServer | EmbeddingWorkerServer, ServedModel | EmbeddingServed]:
    """The gRPC server for `--model`: the embedding servicer for an embedding model
    (all-minilm:22m), else the generation engine (catalog alias, GGUF file or HF dir)."""
    if is_embedding_model(config.model):
        if config.served_model_name and config.served_model_name != config.model:
            raise ConfigError(f"--served-model-name does not apply to {config.model}")
        embedding = EmbeddingWorkerServer.load(config.model, config.worker_id, config.device)
        return embedding, embedding.served
    models: list[LoadedModel] = []

    def build_engine() -> LLMEngine:  # on the engine thread: see worker/async_engine.py
        engine, loaded = LLMEngine.from_config(config)
        models.append(loaded)
        return engine

    async_engine = AsyncLLMEngine(build_engine, stream_interval_s=config.stream_interval_ms / 1000)
    engine, loaded = async_engine.engine, models[0]
    served = ServedModel(
        model_id=config.served_model_name or loaded.model_id,
        context_length=engine.context_length,
        worker_id=config.worker_id,
        max_num_seqs=engine.runner.num_slots,  # what the memory budget holds
        device=config.device,
        dtype=config.dtype,
        sampling_defaults=loaded.sampling_defaults,
    )
    _log_kv_cache(config, engine.runner)
    return WorkerServer(async_engine, served), served


def _log_kv_cache(config: WorkerConfig, runner: Any) -> None:
    slots, size = runner.num_slots, format_bytes(runner.kv_cache_bytes)
    if slots < config.max_num_seqs:
        log.warning(
            "the memory budget holds %d KV-cache slots of the %d asked for (--max-num-seqs): "
            "%s; more concurrent requests queue",
            slots,
            config.max_num_seqs,
            size,
        )
    else:
        log.info("KV cache: %d slots x %d tokens, %s", slots, runner.max_model_len, size)


async def serve(config: WorkerConfig) -> None:
    started = time.monotonic()
    tracing.setup_tracing("llmaas-worker")  # on only with OTEL_EXPORTER_OTLP_ENDPOINT set
    server, served = load_server(config)
    port = await server.start(config.address)
    start_metrics_server(metrics_port("worker", port))
    if isinstance(server, WorkerServer):  # an embedding worker has no generation engine
        metrics.bind_engine_load(served.model_id, server.engine.load)
    log.info(
        "ready: %s serves %s on %s:%d (%s, %s, %d slots, ctx %d) in %.1fs",
        config.worker_id,
        served.model_id,
        config.host,
        port,
        config.device,
        config.dtype,
        served.max_num_seqs,
        served.context_length,
        time.monotonic() - started,
    )

    # Told again every few seconds (worker/announcer.py), until the stop withdraws it.
    again = Reannouncer(lambda: _announce(config, served, port, "Announce"))

    async def announce() -> None:
        await _announce(config, served, port, "Announce")
        if config.router_address:
            again.start()

    # Until SIGTERM/SIGINT; then withdraw and drain, bounded; a second signal cuts it short.
    await rpc.serve_until_signal(
        server.server,
        start=False,  # server.start() also started the engine
        on_ready=announce,
        on_stop=_graceful(server, config, served, port, before=again.stop),
        stop_bound_s=_stop_bound_s(config),
        slack_s=SHUTDOWN_SLACK_S,
    )
    tracing.shutdown_tracing()
    log.info("stopped: %s", config.worker_id)


async def shutdown(
    server: WorkerServer | EmbeddingWorkerServer,
    config: WorkerConfig,
    served: ServedModel | EmbeddingServed,
    port: int,
    hurry: asyncio.Event,
) -> bool:
    """Withdraw from the router, then drain (up to drain_timeout_s). The whole shutdown is
    bounded (drain_timeout_s + WITHDRAW_TIMEOUT_S + SHUTDOWN_SLACK_S, then a stop without
    grace) whatever the server's own stop waits for (idle streams, a stuck engine), and
    `hurry` (a second signal) ends it at once. True when it finished gracefully.
    What `serve` runs on SIGTERM, through `mesh.rpc.serve_until_signal`."""
    return await rpc.stop_bounded(
        server.server,
        _graceful(server, config, served, port),
        hurry=hurry,
        bound_s=_stop_bound_s(config),
        slack_s=SHUTDOWN_SLACK_S,
    )


def _stop_bound_s(config: WorkerConfig) -> float:
    return config.drain_timeout_s + WITHDRAW_TIMEOUT_S + SHUTDOWN_SLACK_S


def _graceful(
    server: WorkerServer | EmbeddingWorkerServer,
    config: WorkerConfig,
    served: ServedModel | EmbeddingServed,
    port: int,
    before: Callable[[], Awaitable[None]] | None = None,
) -> Callable[[], Awaitable[None]]:
    async def graceful() -> None:
        if before is not None:  # no announcement may follow the withdrawal
            await before()
        log.info("draining: finishing running sequences (up to %.0fs)", config.drain_timeout_s)
        await _announce(config, served, port, "Withdraw", timeout_s=WITHDRAW_TIMEOUT_S)
        await server.drain_and_stop(config.drain_timeout_s)

    return graceful


async def _announce(
    config: WorkerConfig,
    served: ServedModel | EmbeddingServed,
    port: int,
    method: str,
    timeout_s: float = 5.0,
) -> None:
    """Tells every router's Registry about this worker (each must see it, shared registry
    or not); best effort (a router may probe)."""
    routers = await announce_targets(config.router_address)
    await asyncio.gather(
        *(_announce_to(r, config, served, port, method, timeout_s) for r in routers)
    )


async def _announce_to(
    router: str,
    config: WorkerConfig,
    served: ServedModel | EmbeddingServed,
    port: int,
    method: str,
    timeout_s: float,
) -> None:
    import grpc

    from mesh.pb import admin_pb2, admin_pb2_grpc
    from mesh.rpc import open_channel

    announcement = admin_pb2.WorkerAnnouncement(
        worker_id=config.worker_id,
        address=f"{config.host}:{port}",
        models=[served.model_id],
        max_num_seqs=served.max_num_seqs,
    )
    try:
        # mTLS with the worker's certificate when LLMAAS_TLS=1 (Registry accepts role worker).
        async with open_channel(router, peer_role="router") as channel:
            await getattr(admin_pb2_grpc.RegistryStub(channel), method)(
                announcement, timeout=timeout_s
            )
    except grpc.aio.AioRpcError as exc:
        log.warning("%s to router %s failed: %s", method, router, exc.details())


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = parse_args(argv)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        import uvloop
    except ImportError:  # optional speed-up
        run = asyncio.run
    else:
        run = uvloop.run
    try:
        run(serve(config))
    except (ConfigError, rpc.BindError) as exc:  # a refused bind: one clear line, no traceback
        raise SystemExit(f"worker: {exc}") from exc


if __name__ == "__main__":
    main()
