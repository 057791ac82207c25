"""`python -m worker --model smollm2:135m --port 50061`: load a model and serve it over gRPC."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import time

import torch

from worker.async_engine import AsyncLLMEngine
from worker.config import DTYPES, ENV_KEYS, WorkerConfig
from worker.engine import LLMEngine
from worker.service import ServedModel, WorkerServer

log = logging.getLogger("worker")


def parse_args(argv: list[str] | None = None) -> WorkerConfig:
    defaults = WorkerConfig.from_env()
    p = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    p.add_argument("--model", default=defaults.model, help="catalog alias, GGUF file or HF dir")
    p.add_argument("--port", type=int, default=defaults.port)
    p.add_argument("--host", default=defaults.host)
    p.add_argument("--worker-id", default=os.environ.get(ENV_KEYS["worker_id"]),
                   help="default: worker-<port>")
    p.add_argument("--dtype", choices=sorted(DTYPES), default=defaults.dtype)
    p.add_argument("--device", default=defaults.device)
    p.add_argument("--max-num-seqs", type=int, default=defaults.max_num_seqs)
    p.add_argument("--max-model-len", type=int, default=defaults.max_model_len)
    p.add_argument("--max-prefill-tokens", type=int, default=defaults.max_prefill_tokens)
    p.add_argument("--num-threads", type=int, default=defaults.num_threads)
    p.add_argument("--drain-timeout-s", type=float, default=defaults.drain_timeout_s)
    p.add_argument("--router-address", default=defaults.router_address)
    p.add_argument("--seed", type=int, default=defaults.seed)
    args = vars(p.parse_args(argv))
    return WorkerConfig(**{k: v for k, v in args.items() if v is not None})


async def serve(config: WorkerConfig) -> None:
    started = time.monotonic()
    engine, loaded = LLMEngine.from_config(config)
    served = ServedModel(
        model_id=loaded.model_id,
        context_length=engine.context_length,
        worker_id=config.worker_id,
        max_num_seqs=config.max_num_seqs,
        device=config.device,
        dtype=config.dtype,
    )
    server = WorkerServer(AsyncLLMEngine(engine), served)
    port = await server.start(config.address)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    log.info(
        "ready: %s serves %s on %s:%d (%s, %s, %d slots, ctx %d) in %.1fs",
        config.worker_id, served.model_id, config.host, port, config.device, config.dtype,
        config.max_num_seqs, served.context_length, time.monotonic() - started,
    )
    await _announce(config, served, port, "Announce")
    await stopping.wait()
    log.info("draining: finishing running sequences (up to %.0fs)", config.drain_timeout_s)
    await _announce(config, served, port, "Withdraw")
    await server.drain_and_stop(config.drain_timeout_s)
    log.info("stopped: %s", config.worker_id)


async def _announce(config: WorkerConfig, served: ServedModel, port: int, method: str) -> None:
    """Tells the router's Registry about this worker; best effort (the router may probe)."""
    if not config.router_address:
        return
    import grpc

    from mesh.pb import admin_pb2, admin_pb2_grpc

    announcement = admin_pb2.WorkerAnnouncement(
        worker_id=config.worker_id,
        address=f"{config.host}:{port}",
        models=[served.model_id],
        max_num_seqs=config.max_num_seqs,
    )
    try:
        async with grpc.aio.insecure_channel(config.router_address) as channel:
            await getattr(admin_pb2_grpc.RegistryStub(channel), method)(announcement, timeout=5)
    except grpc.aio.AioRpcError as exc:
        log.warning("%s to router %s failed: %s", method, config.router_address, exc.details())


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = parse_args(argv)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        import uvloop
    except ImportError:  # optional speed-up
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))


if __name__ == "__main__":
    main()
