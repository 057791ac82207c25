"""The vocabulary limits a worker tells the router in Info (issue #14 point 1): the most bytes
and runs one token holds, 0 where the limit is not sound for the tokenizer, so the router's
prompt floor (mesh.prompt_bounds) fits each model instead of assuming byte-level BPE."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models, normalizers, pre_tokenizers

from mesh.pb import worker_pb2
from mesh.prompt_bounds import token_floor
from worker.loader import load_tokenizer
from worker.service import ServedModel, WorkerServicer
from worker.token_bounds import VocabLimits, max_runs_per_token, vocab_limits


@pytest.fixture(scope="module")
def smollm2():
    return load_tokenizer("smollm2:135m")


def _bpe(vocab: list[str], normalizer=None, pre_tokenizer=None) -> HFTokenizer:
    tok = HFTokenizer(models.BPE({t: i for i, t in enumerate(vocab)}, []))
    if normalizer is not None:
        tok.normalizer = normalizer
    if pre_tokenizer is not None:
        tok.pre_tokenizer = pre_tokenizer
    return tok


def test_smollm2s_limits_are_what_the_router_defaults_assume(smollm2):
    # Measured from its vocabulary: "\n" + 80 spaces; "ManagementPlaneProtection".
    assert vocab_limits(smollm2.tok) == VocabLimits(81, 25)


@pytest.mark.parametrize(
    "text",
    [
        "Add up the following numbers: " + " ".join(map(str, range(3000))),
        "a" * 5000,
        "é€😀 x" * 400,
    ],
)
def test_smollm2s_limits_never_overestimate_a_prompt(smollm2, text):
    limits = vocab_limits(smollm2.tok)
    floor = token_floor(
        [text], max_token_bytes=limits.max_token_bytes, max_token_runs=limits.max_token_runs
    )
    assert floor.tokens <= len(smollm2.tok.encode(text, add_special_tokens=False).ids)


def test_a_vocabulary_with_longer_tokens_says_so():
    long = "x" * 300 + "ab" * 40  # 300 bytes of one run, then 80 runs
    tok = _bpe(["a", "b", "x", long], pre_tokenizer=pre_tokenizers.ByteLevel())
    assert vocab_limits(tok) == VocabLimits(380, 81)


def test_a_sentencepiece_style_space_marker_keeps_the_runs_bound():
    norm = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok = _bpe(["▁", "a", "▁aa"], normalizer=norm)
    # "▁aa" is 5 bytes in 4 runs (e2 96 81 61 61): more than the " aa" it stands for.
    assert max_runs_per_token(tok) == 4


@pytest.mark.parametrize(
    "normalizer", [normalizers.Lowercase(), normalizers.NFKC(), normalizers.Strip()]
)
def test_normalisers_that_can_merge_runs_give_no_runs_bound(normalizer):
    # "AaAa" (4 runs) lowercases to "aaaa" (1 run): one token could cover 4 runs.
    tok = _bpe(["a", "aaaa"], normalizer=normalizer)
    assert vocab_limits(tok).max_token_runs == 0


def test_other_models_give_no_bound():
    tok = HFTokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    assert vocab_limits(tok) == VocabLimits(0, 0)


class _Context:
    async def abort(self, code, details):  # pragma: no cover - Info never aborts
        raise AssertionError(details)


async def test_info_carries_the_limits_and_computes_them_once(smollm2, monkeypatch):
    engine = SimpleNamespace(engine=SimpleNamespace(tokenizer=smollm2))
    served = ServedModel("smollm2:135m", 2048, "w1", 4, "cpu", "float32")
    servicer = WorkerServicer(engine, served)  # type: ignore[arg-type]
    calls = []
    monkeypatch.setattr(
        "worker.service.vocab_limits", lambda tok: calls.append(tok) or VocabLimits(81, 25)
    )
    for _ in range(2):
        info = await servicer.Info(worker_pb2.InfoRequest(), _Context())
        [model] = info.models
        assert (model.max_token_bytes, model.max_token_runs) == (81, 25)
        assert model.HasField("max_token_bytes") and model.HasField("max_token_runs")
    assert calls == [smollm2.tok]


async def test_info_says_0_when_the_tokenizer_is_not_a_tokenizers_one():
    engine = SimpleNamespace(engine=SimpleNamespace(tokenizer=object()))
    served = ServedModel("m", 2048, "w1", 4, "cpu", "float32")
    info = await WorkerServicer(engine, served).Info(worker_pb2.InfoRequest(), _Context())  # type: ignore[arg-type]
    [model] = info.models
    assert model.HasField("max_token_bytes") and model.max_token_bytes == 0
    assert model.max_token_runs == 0
