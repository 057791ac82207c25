"""WorkerConfig.from_env and SamplingParams.from_pb: defaults, casting, clear errors."""

from __future__ import annotations

import pytest

from mesh.pb import common_pb2
from worker.config import WorkerConfig
from worker.errors import InvalidRequest
from worker.sampling_params import SamplingParams


def test_from_env_reads_llmaas_keys_and_derives_worker_id() -> None:
    config = WorkerConfig.from_env(
        {"LLMAAS_WORKER_PORT": "50099", "LLMAAS_WORKER_DTYPE": "float32"}
    )
    assert (config.port, config.dtype, config.worker_id) == (50099, "float32", "worker-50099")


def test_overrides_win_over_env() -> None:
    config = WorkerConfig.from_env({"LLMAAS_WORKER_MAX_NUM_SEQS": "8"}, max_num_seqs=2)
    assert config.max_num_seqs == 2


def test_bad_env_value_names_the_key_and_the_value() -> None:
    with pytest.raises(ValueError, match="LLMAAS_WORKER_PORT='abc' is not a valid int"):
        WorkerConfig.from_env({"LLMAAS_WORKER_PORT": "abc"})


def test_out_of_range_value_is_rejected() -> None:
    with pytest.raises(
        ValueError, match=r"max_num_seqs \(LLMAAS_WORKER_MAX_NUM_SEQS\) must be >= 1, got 0"
    ):
        WorkerConfig(max_num_seqs=0)


def test_sampling_from_pb_maps_proto_zeroes_to_off() -> None:
    params = SamplingParams.from_pb(common_pb2.SamplingParams(temperature=0, stop=["\n"]))
    assert (params.temperature, params.top_p, params.seed, params.max_tokens) == (
        0.0,
        1.0,
        None,
        None,
    )
    # top_p 0 is sent as given: only the most likely token is left (greedy), not "off"
    top_p_zero = SamplingParams.from_pb(common_pb2.SamplingParams(temperature=1, top_p=0))
    assert top_p_zero.top_p == 0.0 and top_p_zero.is_greedy
    assert SamplingParams.from_pb(common_pb2.SamplingParams(seed=0)).seed == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", 2.5),
        ("top_p", 1.5),
        ("top_k", -1),
        ("presence_penalty", 3.0),
        ("max_tokens", -2),
    ],
)
def test_sampling_validation_names_the_param(field: str, value: float) -> None:
    with pytest.raises(InvalidRequest) as info:
        SamplingParams.from_pb(common_pb2.SamplingParams(**{field: value}))
    assert info.value.param == field
