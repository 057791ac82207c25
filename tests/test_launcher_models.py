"""tools.launcher.models: LLMAAS_MODELS parsing, ports, commands and the memory shares."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.launcher.models import (
    ExtraModel,
    ModelsConfigError,
    commands,
    memory_shares,
    parse_models,
    place,
    worker_addrs,
)
from tools.launcher.ports import Ports
from tools.launcher.start import start_mesh


def test_parse_models(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b.gguf"
    a.mkdir()
    b.write_bytes(b"")
    models = parse_models(f" tiny-a={a} , org/b:1b={b},small=smollm2:135m")
    assert [(m.name, m.path, m.child) for m in models] == [
        ("tiny-a", str(a), "worker-m1"),
        ("org/b:1b", str(b), "worker-m2"),
        ("small", "smollm2:135m", "worker-m3"),
    ]
    assert parse_models("") == [] and parse_models("  ") == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("tiny", "entry 1 .*expected NAME=PATH"),
        ("=/x", "expected NAME=PATH"),
        ("a=", "expected NAME=PATH"),
        ("a=smollm2:135m,,", "entry 2 .*expected NAME=PATH"),
        ("bad name=smollm2:135m", "the name must be a model id"),
        ("a=smollm2:135m,a=smollm2:135m", "'a' is served twice"),
        ("smollm2:135m=smollm2:135m", "served twice"),
        ("a=/no/such/model", "no model at '/no/such/model'"),
    ],
)
def test_parse_models_refuses_with_a_clear_message(raw: str, message: str) -> None:
    with pytest.raises(ModelsConfigError, match=message):
        parse_models(raw, default_model_id="smollm2:135m")


def test_place_commands_and_addresses() -> None:
    ports = Ports(http=8000, router=50051, filter=50052, workers=[50061, 50062], embed=50063)
    models = place([ExtraModel("m", "/p", "worker-m1")], ports, default_ports=True)
    assert models[0].port == 50064
    cmd = commands(models)["worker-m1"]
    assert cmd[1:4] == ["-m", "worker", "--model"] and cmd[4] == "/p"
    assert cmd[cmd.index("--worker-id") + 1] == "worker-m1"
    assert cmd[cmd.index("--served-model-name") + 1] == "m"
    assert cmd[cmd.index("--port") + 1] == "50064"
    assert worker_addrs(models) == ["m=127.0.0.1:50064"]
    free = place([ExtraModel("m", "/p", "worker-m1")], ports, default_ports=False)
    assert free[0].port not in (0, 50064)


def test_memory_shares_split_one_budget() -> None:
    assert memory_shares({}, 3) == {"LLMAAS_WORKER_MEMORY_FRACTION": repr(0.9 / 3)}
    assert memory_shares({"LLMAAS_MEMORY_FRACTION": "0.5"}, 2) == {
        "LLMAAS_WORKER_MEMORY_FRACTION": "0.25"
    }
    assert memory_shares({"LLMAAS_MEMORY_FRACTION": "0"}, 2) == {}  # no budget
    assert memory_shares({"LLMAAS_KV_CACHE_MEMORY": "3GiB"}, 3) == {
        "LLMAAS_WORKER_KV_CACHE_MEMORY": str(1024**3)
    }
    assert memory_shares({"LLMAAS_KV_CACHE_MEMORY": "2GB"}, 2) == {
        "LLMAAS_WORKER_KV_CACHE_MEMORY": str(10**9)
    }
    # a per-worker budget set by the operator: every worker gets it as is
    assert memory_shares({"LLMAAS_WORKER_MEMORY_FRACTION": "0.2"}, 4) == {}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LLMAAS_MEMORY_FRACTION": "most"}, "expected a number in"),
        ({"LLMAAS_MEMORY_FRACTION": "1.5"}, "expected a number in"),
        ({"LLMAAS_KV_CACHE_MEMORY": "lots"}, "expected a size"),
        ({"LLMAAS_KV_CACHE_MEMORY": "1GiB", "LLMAAS_MEMORY_FRACTION": "0.5"}, "not both"),
    ],
)
def test_bad_budgets_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ModelsConfigError, match=message):
        memory_shares(env, 2)


def test_bad_models_start_nothing(tmp_path: Path) -> None:
    """A bad LLMAAS_MODELS stops start_mesh before it takes the lock or writes anything."""
    run = tmp_path / "run"
    with pytest.raises(ModelsConfigError, match="no model at"):
        start_mesh({"LLMAAS_MODELS": "x=/nowhere"}, run_dir=run, wait=False)
    assert not run.exists()
