"""Information only (issue #14 point 1): how a real chat worker answers the issue's 589 KB
prompt, three of them at once with a short request and health probes alongside, and a
150 KB prompt that may fit by its size (so it is tokenised, off the event loop).

    .venv/bin/python -m tools.dev.worker_big_prompt [--model smollm2:135m]

Starts `python -m worker` on a free loopback port and prints each call's status and time.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.pb import common_pb2, worker_pb2, worker_pb2_grpc

BIG = "Add up the following numbers: " + " ".join(map(str, range(100000)))
MID = "word " * 30000  # 150 KB: at least 1,852 tokens by size, 30,031 in fact


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chat(model: str, content: str, max_tokens: int) -> worker_pb2.GenerateRequest:
    return worker_pb2.GenerateRequest(
        model=model,
        chat=worker_pb2.ChatPrompt(messages=[common_pb2.ChatMessage(role="user", content=content)]),
        sampling=common_pb2.SamplingParams(max_tokens=max_tokens),
    )


async def _timed(name: str, call: Awaitable[object]) -> None:
    started = time.perf_counter()
    try:
        await call
        outcome = "OK"
    except grpc.aio.AioRpcError as err:
        code = dict(err.trailing_metadata() or ()).get("llmaas-error-code", "")
        outcome = f"{err.code().name} {code}: {err.details()}"
    print(f"{name}: {time.perf_counter() - started:.3f} s  {outcome}")


async def main(model: str) -> None:
    port = _free_port()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worker",
            "--model",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        options = [("grpc.max_send_message_length", 64 << 20)]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
            stub, health = worker_pb2_grpc.WorkerStub(channel), health_pb2_grpc.HealthStub(channel)
            for _ in range(600):  # the model loads: at most a minute or two
                try:
                    if (await health.Check(health_pb2.HealthCheckRequest(), timeout=1)).status == 1:
                        break
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.2)

            async def generate(content: str, max_tokens: int) -> None:
                async for _ in stub.Generate(_chat(model, content, max_tokens), timeout=60):
                    pass

            async def probe(delay: float, name: str) -> None:  # timed from its start
                await asyncio.sleep(delay)
                await _timed(name, health.Check(health_pb2.HealthCheckRequest(), timeout=1))

            await _timed("warm-up request", generate("Say hi.", 2))
            await _timed("589 KB prompt, Generate", generate(BIG, 1))
            await _timed("589 KB prompt, CountTokens", stub.CountTokens(_chat(model, BIG, 1)))
            await asyncio.gather(
                *(_timed(f"589 KB prompt in parallel #{i}", generate(BIG, 1)) for i in range(3)),
                _timed("short request alongside", generate("Say hi.", 5)),
                probe(0.0, "health probe alongside"),
            )
            await asyncio.gather(
                _timed("150 KB prompt (tokenised, then refused)", generate(MID, 1)),
                *(probe(d, f"health probe {d:.2f} s into it") for d in (0.05, 0.1, 0.15)),
            )
    finally:
        worker.terminate()
        worker.wait(30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2:135m")
    asyncio.run(main(parser.parse_args().model))
