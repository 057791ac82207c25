"""More models in one mesh, and each worker's share of the machine's memory.

LLMAAS_MODELS="NAME=PATH[,NAME=PATH...]" starts one more worker per entry, `python -m worker
--model PATH --served-model-name NAME`, as child worker-m1, worker-m2, ... beside the default
chat workers (LLMAAS_MODEL x LLMAAS_WORKERS) and the embedding worker. The router learns each
one's model id from it, so requests naming NAME go to that worker only. Checked before anything
starts: a malformed entry, a duplicate name or a path that does not exist is refused with one
clear message.

Memory: every chat worker of the mesh gets its share of one mesh-wide budget, so that workers on
one machine do not each count on the same free memory. LLMAAS_KV_CACHE_MEMORY (bytes, "8GiB",
for all KV caches) or LLMAAS_MEMORY_FRACTION (of the device's memory, default 0.9) is divided
by the number of chat workers and handed to each as LLMAAS_WORKER_KV_CACHE_MEMORY /
LLMAAS_WORKER_MEMORY_FRACTION (worker/memory_plan.py), unless one of those is set already
(then every worker gets that value as is).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mesh.metrics_http import metrics_port
from mesh.wire import MAX_MODEL_ID_CHARS
from tools.launcher.errors import MeshStartError
from tools.launcher.ports import DEFAULT_PORTS, Ports, free_port

BUILTIN_MODELS = ("smollm2:135m",)  # what --model takes besides a path
DEFAULT_MEMORY_FRACTION = 0.9
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]*")
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(|b|k|kib|kb|m|mib|mb|g|gib|gb|t|tib|tb)\s*", re.I)
_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}


class ModelsConfigError(MeshStartError):
    """LLMAAS_MODELS or a memory budget is malformed: nothing is started."""


@dataclass(frozen=True, slots=True)
class ExtraModel:
    name: str  # the model id it is served under
    path: str  # what its worker loads (a GGUF file, a Hugging Face directory)
    child: str = ""  # worker-m1, ...
    port: int = 0


def parse_models(raw: str, default_model_id: str = "") -> list[ExtraModel]:
    """LLMAAS_MODELS -> its entries, in order; ModelsConfigError naming what is wrong."""
    if not raw.strip():
        return []
    entries: list[ExtraModel] = []
    for i, item in enumerate(raw.split(","), start=1):
        name, sep, path = (part.strip() for part in item.partition("="))
        where = f"LLMAAS_MODELS entry {i} ({item.strip()!r})"
        if not sep or not name or not path:
            raise ModelsConfigError(f"{where}: expected NAME=PATH, e.g. my-model=/models/qwen3")
        if len(name) > MAX_MODEL_ID_CHARS or not _NAME.fullmatch(name):
            raise ModelsConfigError(
                f"{where}: the name must be a model id (letters, digits, . _ : / @ + -, "
                f"at most {MAX_MODEL_ID_CHARS} characters, starting with a letter or digit)"
            )
        if name == default_model_id or any(e.name == name for e in entries):
            raise ModelsConfigError(f"{where}: the model id {name!r} is served twice")
        if path not in BUILTIN_MODELS and not Path(path).expanduser().exists():
            raise ModelsConfigError(f"{where}: no model at {path!r}")
        entries.append(ExtraModel(name, str(Path(path).expanduser()), f"worker-m{i}"))
    return entries


def place(models: list[ExtraModel], ports: Ports, default_ports: bool) -> list[ExtraModel]:
    """Each model's worker port: after the default and embedding workers under `make run`,
    free ports otherwise."""
    if default_ports:
        last = max([*ports.workers, ports.embed or 0, DEFAULT_PORTS["worker"] - 1])
        return [
            ExtraModel(m.name, m.path, m.child, last + i) for i, m in enumerate(models, start=1)
        ]
    return [ExtraModel(m.name, m.path, m.child, free_port()) for m in models]


def commands(models: list[ExtraModel]) -> dict[str, list[str]]:
    py = sys.executable
    return {
        m.child: [py, "-m", "worker", "--model", m.path, "--served-model-name", m.name]
        + ["--port", str(m.port), "--worker-id", m.child]
        for m in models
    }


def metrics_ports(models: list[ExtraModel], default_ports: bool) -> dict[str, int]:
    if not default_ports:
        return {m.child: free_port() for m in models}
    out = {m.child: metrics_port("worker", m.port, environ={}) for m in models}
    return {name: port for name, port in out.items() if port is not None}


def port_plan(models: list[ExtraModel]) -> list[tuple[str, int, str, str]]:
    return [
        ("127.0.0.1", m.port, f"{m.child} gRPC ({m.name})", "LLMAAS_WORKER_BASE_PORT")
        for m in models
    ]


def worker_addrs(models: list[ExtraModel]) -> list[str]:
    """LLMAAS_WORKER_ADDRS entries: what the router expects each worker to serve."""
    return [f"{m.name}=127.0.0.1:{m.port}" for m in models]


def memory_shares(env: Mapping[str, str], num_workers: int) -> dict[str, str]:
    """The environment every chat worker gets: its share of the mesh's memory budget."""
    if env.get("LLMAAS_WORKER_KV_CACHE_MEMORY") or env.get("LLMAAS_WORKER_MEMORY_FRACTION"):
        return {}  # the operator set a per-worker budget: each worker gets it as is
    workers = max(num_workers, 1)
    if raw := env.get("LLMAAS_KV_CACHE_MEMORY", "").strip():
        if raw and env.get("LLMAAS_MEMORY_FRACTION", "").strip():
            raise ModelsConfigError(
                "set LLMAAS_KV_CACHE_MEMORY or LLMAAS_MEMORY_FRACTION, not both"
            )
        return {"LLMAAS_WORKER_KV_CACHE_MEMORY": str(_bytes(raw) // workers)}
    raw = env.get("LLMAAS_MEMORY_FRACTION", "").strip() or str(DEFAULT_MEMORY_FRACTION)
    try:
        fraction = float(raw)
    except ValueError:
        fraction = -1.0
    if not 0.0 <= fraction <= 1.0:
        raise ModelsConfigError(f"LLMAAS_MEMORY_FRACTION={raw!r}: expected a number in [0, 1]")
    return {"LLMAAS_WORKER_MEMORY_FRACTION": repr(fraction / workers)} if fraction else {}


def _bytes(raw: str) -> int:
    """worker/memory_plan.py's sizes (4GiB, 512MiB, 2GB, bytes), checked here so that a bad
    one stops the launcher, not every worker."""
    m = _SIZE.fullmatch(raw)
    if m is None:
        raise ModelsConfigError(
            f"LLMAAS_KV_CACHE_MEMORY={raw!r}: expected a size such as 8GiB, 512MiB or bytes"
        )
    unit = m[2].lower()
    scale = _SIZE_UNITS.get(unit) or 1024 ** ("kmgt".index(unit[0]) + 1)
    return int(float(m[1]) * scale)
