"""WorkerConfig: the one settings object of a worker process, checked once."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from worker.memory_plan import Budget, parse_bytes

DTYPES: dict[str, torch.dtype] = {
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float32": torch.float32,
}

MAX_DEFAULT_THREADS = 8  # a 135M model's GEMMs stop scaling around here; set more explicitly


def default_num_threads() -> int:
    """The CPUs this process may run on (its affinity, not the whole machine), at most
    MAX_DEFAULT_THREADS."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_THREADS))


# Field name -> environment key. One table, so `--help` and errors agree.
ENV_KEYS: dict[str, str] = {
    "model": "LLMAAS_WORKER_MODEL",
    "port": "LLMAAS_WORKER_PORT",
    "host": "LLMAAS_WORKER_HOST",
    "worker_id": "LLMAAS_WORKER_ID",
    "max_num_seqs": "LLMAAS_WORKER_MAX_NUM_SEQS",
    "max_model_len": "LLMAAS_WORKER_MAX_MODEL_LEN",
    "max_prefill_tokens": "LLMAAS_WORKER_MAX_PREFILL_TOKENS",
    "max_prefill_chunk": "LLMAAS_WORKER_MAX_PREFILL_CHUNK",
    "dtype": "LLMAAS_WORKER_DTYPE",
    "device": "LLMAAS_WORKER_DEVICE",
    "num_threads": "LLMAAS_WORKER_NUM_THREADS",
    "drain_timeout_s": "LLMAAS_WORKER_DRAIN_TIMEOUT_S",
    "stream_interval_ms": "LLMAAS_WORKER_STREAM_INTERVAL_MS",
    "router_address": "LLMAAS_ROUTER_ADDRESS",
    "seed": "LLMAAS_WORKER_SEED",
    "served_model_name": "LLMAAS_WORKER_SERVED_MODEL_NAME",
    "kv_cache_memory": "LLMAAS_WORKER_KV_CACHE_MEMORY",
    "memory_fraction": "LLMAAS_WORKER_MEMORY_FRACTION",
}


@dataclass(slots=True)
class WorkerConfig:
    model: str = "smollm2:135m"
    port: int = 50061
    host: str = "127.0.0.1"
    worker_id: str = ""  # derived: worker-<port>
    # KV cache: max_num_seqs x max_model_len slots, allocated once (SmolLM2-135M bf16:
    # 22.5 KiB/token -> 720 MiB). More concurrent requests wait in the queue.
    max_num_seqs: int = 16
    max_model_len: int = 2048
    # Prefill, all of a step's prompt chunks in one forward: up to max_prefill_tokens per step
    # (16 chat prompts of ~132 tokens at once), and up to max_prefill_chunk per sequence while
    # other sequences decode, so a long prompt delays running streams by a bounded amount.
    max_prefill_tokens: int = 2048
    max_prefill_chunk: int = 512
    dtype: str = "bfloat16"  # on CPU, bf16 weights get int4 decode linears (worker/loader.py)
    device: str = "cpu"
    num_threads: int = field(default_factory=default_num_threads)  # 0: torch's default
    drain_timeout_s: float = 30.0
    # With 8+ requests in flight, each one's tokens go out at most this often, merged: per
    # message CPU in every hop otherwise eats a busy engine's (worker/async_engine.py).
    stream_interval_ms: int = 100
    router_address: str = ""  # host:port of the router's Registry; empty: no announcement
    seed: int | None = None  # worker-level generator for unseeded requests
    # The model id announced and answered to; empty: the catalog alias, file stem or dir name.
    served_model_name: str = ""
    # A memory budget bounding the KV-cache slots (worker/memory_plan.py); at most one:
    # bytes for the KV cache ("4GiB"), or the share of the device's memory for the worker.
    kv_cache_memory: str = ""
    memory_fraction: float = 0.0

    def __post_init__(self) -> None:
        _check(bool(self.model), "model", self.model, "must name a model")
        _check(0 <= self.port <= 65535, "port", self.port, "must be in 0..65535")
        _check(self.max_num_seqs >= 1, "max_num_seqs", self.max_num_seqs, "must be >= 1")
        _check(self.max_model_len >= 16, "max_model_len", self.max_model_len, "must be >= 16")
        _check(
            self.max_prefill_tokens >= 1,
            "max_prefill_tokens",
            self.max_prefill_tokens,
            "must be >= 1",
        )
        _check(
            self.max_prefill_chunk >= 1,
            "max_prefill_chunk",
            self.max_prefill_chunk,
            "must be >= 1",
        )
        _check(self.dtype in DTYPES, "dtype", self.dtype, f"must be one of {sorted(DTYPES)}")
        _check(
            self.device == "cpu" or self.device.startswith(("cuda", "mps")),
            "device",
            self.device,
            "must be cpu, cuda[:N] or mps",
        )
        _check(self.num_threads >= 0, "num_threads", self.num_threads, "must be >= 0")
        _check(self.drain_timeout_s >= 0, "drain_timeout_s", self.drain_timeout_s, "must be >= 0")
        _check(
            self.stream_interval_ms >= 0,
            "stream_interval_ms",
            self.stream_interval_ms,
            "must be >= 0",
        )
        try:
            kv = parse_bytes(self.kv_cache_memory) if self.kv_cache_memory else 0
        except ValueError as exc:
            raise ValueError(
                f"worker config kv_cache_memory ({ENV_KEYS['kv_cache_memory']}): {exc}"
            ) from None
        fraction = self.memory_fraction
        _check(0.0 <= fraction <= 1.0, "memory_fraction", fraction, "must be in [0, 1]")
        _check(not (kv and fraction), "memory_fraction", fraction, "excludes kv_cache_memory")
        if not self.worker_id:
            self.worker_id = f"worker-{self.port}"

    @property
    def budget(self) -> Budget:
        kv = parse_bytes(self.kv_cache_memory) if self.kv_cache_memory else 0
        return Budget(kv_cache_bytes=kv, memory_fraction=self.memory_fraction)

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> WorkerConfig:
        """Defaults <- LLMAAS_* environment <- explicit overrides (e.g. CLI flags)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = ENV_KEYS[f.name]
            if key in environ:
                values[f.name] = _cast(key, environ[key], _caster(f.type))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _caster(type_name: Any) -> Callable[[str], Any]:
    # Annotations are strings under `from __future__ import annotations`.
    name = str(type_name)
    if name.startswith("int"):
        return int
    if name.startswith("float"):
        return float
    return str


def _cast(key: str, raw: str, cast: Callable[[str], Any]) -> Any:
    try:
        return cast(raw)
    except ValueError:
        raise ValueError(f"{key}={raw!r} is not a valid {cast.__name__}") from None


def _check(ok: bool, name: str, value: object, rule: str) -> None:
    if not ok:
        key = ENV_KEYS.get(name, name)
        raise ValueError(f"worker config {name} ({key}) {rule}, got {value!r}")
