"""Every family through the real worker process (`python -m worker --model DIR --dtype
float32`) over gRPC: the greedy answer (temperature 0, 32 tokens, ignore_eos) is the text of
transformers' `generate` tokens on the same checkpoint; an unknown architecture is refused
at start, naming the supported ones."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from mesh.pb import common_pb2, worker_pb2, worker_pb2_grpc
from tests.worker.families.tiny import GREEDY_TOKENS, PROMPT, SPECS, Family

START_TIMEOUT_S = 600  # a bound for a stuck start, not a speed goal: 2 slow cores, 8 workers
STOP_TIMEOUT_S = 60
REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(path: Path, port: int, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "worker", "--model", str(path), "--dtype", "float32"]
    cmd += ["--port", str(port), "--max-num-seqs", "2", "--max-model-len", "256"]
    cmd += ["--num-threads", "1", "--drain-timeout-s", "0"]
    env = {**os.environ, "LLMAAS_ROUTER_ADDRESS": ""}
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def workers(
    make_family: Callable[[str], Family], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[Family, int, subprocess.Popen, Path]]]:
    """One worker per family, started together (their loads overlap)."""
    logs = tmp_path_factory.mktemp("worker-logs")
    started: dict[str, tuple[Family, int, subprocess.Popen, Path]] = {}
    try:
        for name in SPECS:
            family, port = make_family(name), _free_port()
            log = logs / f"{name}.log"
            started[name] = (family, port, _start(family.path, port, log), log)
        yield started
    finally:
        for _, _, proc, _ in started.values():
            _stop(proc)


def _greedy(port: int, model_id: str) -> tuple[str, int]:
    request = worker_pb2.GenerateRequest(
        request_id="parity",
        model=model_id,
        prompt=PROMPT,
        sampling=common_pb2.SamplingParams(
            temperature=0.0, max_tokens=GREEDY_TOKENS, ignore_eos=True
        ),
    )
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT_S)
        stub = worker_pb2_grpc.WorkerStub(channel)
        text, tokens = "", 0
        for chunk in stub.Generate(request, timeout=START_TIMEOUT_S, wait_for_ready=True):
            text += chunk.text
            tokens += chunk.num_tokens
    return text, tokens


@pytest.mark.parametrize("name", list(SPECS))
def test_worker_greedy_text_matches_transformers(name: str, workers) -> None:
    family, port, proc, log = workers[name]
    try:
        text, tokens = _greedy(port, family.path.name)
    except grpc.RpcError as exc:
        pytest.fail(f"{name}: {exc} (exit {proc.poll()}); log:\n{log.read_text()[-3000:]}")
    assert tokens == GREEDY_TOKENS
    assert text == family.fp32.tokenizer.decode(family.tokens), name


def test_an_unknown_architecture_is_refused_at_start(tmp_path: Path, make_family) -> None:
    path = tmp_path / "mystery"
    shutil.copytree(make_family("qwen3").path, path)
    config = json.loads((path / "config.json").read_text())
    config["architectures"], config["model_type"] = ["MysteryForCausalLM"], "mystery"
    (path / "config.json").write_text(json.dumps(config))
    cmd = [sys.executable, "-m", "worker", "--model", str(path), "--port", str(_free_port())]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=START_TIMEOUT_S)
    assert done.returncode != 0
    assert "unsupported architecture MysteryForCausalLM" in done.stderr
    assert "Qwen3ForCausalLM" in done.stderr and "Gemma3ForCausalLM" in done.stderr
    assert "Traceback" not in done.stderr
