"""Every family served by one real mesh (`LLMAAS_MODELS`, one worker per family, float32 by
`LLMAAS_WORKER_DTYPE`, no default chat worker): transformers' greedy `generate` on the same
checkpoint is matched
- token id for token id at the worker's gRPC level (`logprobs` carry each chosen token's id),
- text for text through the edge's `/v1/completions` at temperature 0 (filter, router, edge),
for GREEDY_TOKENS tokens (`ignore_eos`: the tiny checkpoints have no end-of-sequence)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import grpc
import httpx
import pytest

from mesh.pb import common_pb2, worker_pb2, worker_pb2_grpc
from tests.worker.families.tiny import GREEDY_TOKENS, PROMPT, SPECS, Family
from tools.run_mesh import MeshHandle, start_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

READY_TIMEOUT_S = 600  # a bound for a stuck start, not a speed goal: 2 slow cores, 9 workers
REQUEST_TIMEOUT_S = 300


def served(name: str) -> str:
    """The model id a family's worker is served under (not a catalog id)."""
    return f"tiny-{name}"


@pytest.fixture(scope="module")
def families(make_family: Callable[[str], Family]) -> dict[str, Family]:
    return {name: make_family(name) for name in SPECS}


@pytest.fixture(scope="module")
def mesh(
    families: dict[str, Family], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MeshHandle]:
    env = {
        **os.environ,
        "LLMAAS_TLS": "0",  # the workers' gRPC is called directly below
        "LLMAAS_WORKER_DTYPE": "float32",
        "LLMAAS_MODELS": ",".join(f"{served(name)}={f.path}" for name, f in families.items()),
    }
    run_dir = tmp_path_factory.mktemp("family-mesh")
    handle = start_mesh(
        env, workers=0, embeddings=False, run_dir=run_dir, ready_timeout_s=READY_TIMEOUT_S
    )
    try:
        yield handle
    finally:
        handle.stop()


def _worker_token_ids(address: str, model_id: str) -> list[int]:
    request = worker_pb2.GenerateRequest(
        request_id="family-parity",
        model=model_id,
        prompt=PROMPT,
        sampling=common_pb2.SamplingParams(
            temperature=0.0, max_tokens=GREEDY_TOKENS, ignore_eos=True, logprobs=True
        ),
    )
    with grpc.insecure_channel(address) as channel:
        stub = worker_pb2_grpc.WorkerStub(channel)
        chunks = stub.Generate(request, timeout=REQUEST_TIMEOUT_S, wait_for_ready=True)
        return [lp.token_id for chunk in chunks for lp in chunk.logprobs]


@pytest.mark.parametrize("name", list(SPECS))
def test_worker_grpc_token_ids_match_transformers(
    name: str, families: dict[str, Family], mesh: MeshHandle
) -> None:
    address = {m.name: f"127.0.0.1:{m.port}" for m in mesh.extra_models}[served(name)]
    assert _worker_token_ids(address, served(name)) == families[name].tokens


@pytest.mark.parametrize("name", list(SPECS))
def test_completions_text_at_temperature_0_matches_transformers(
    name: str, families: dict[str, Family], mesh: MeshHandle
) -> None:
    family = families[name]
    reply = httpx.post(
        f"{mesh.url}/v1/completions",
        headers={"Authorization": f"Bearer {mesh.api_key}"},
        json={
            "model": served(name),
            "prompt": PROMPT,
            "max_tokens": GREEDY_TOKENS,
            "temperature": 0,
            "ignore_eos": True,
        },
        timeout=REQUEST_TIMEOUT_S,
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model"] == served(name)
    assert body["usage"]["completion_tokens"] == GREEDY_TOKENS
    assert body["choices"][0]["text"] == family.fp32.tokenizer.decode(family.tokens)
