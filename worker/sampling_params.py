"""SamplingParams: how one request picks tokens and when it stops, validated at the edge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from worker.errors import InvalidRequest

if TYPE_CHECKING:
    from mesh.pb import common_pb2

MAX_STOP_STRINGS = 16


@dataclass(slots=True, frozen=True)
class SamplingDefaults:
    """What a request that sets no temperature / top_p gets: the model's recommendation
    (its generation_config.json, or its model card), else OpenAI's defaults."""

    temperature: float = 1.0
    top_p: float = 1.0


@dataclass(slots=True, frozen=True)
class SamplingParams:
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0  # 1: off
    top_k: int = 0  # 0: off
    seed: int | None = None
    max_tokens: int | None = None  # None/0: up to the context window
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    def __post_init__(self) -> None:
        _require(
            0.0 <= self.temperature <= 2.0,
            "temperature",
            "must be between 0 and 2",
            self.temperature,
        )
        _require(0.0 < self.top_p <= 1.0, "top_p", "must be in (0, 1]", self.top_p)
        _require(self.top_k >= 0, "top_k", "must be >= 0", self.top_k)
        _require(
            self.max_tokens is None or self.max_tokens >= 0,
            "max_tokens",
            "must be >= 0",
            self.max_tokens,
        )
        for name in ("presence_penalty", "frequency_penalty"):
            value = getattr(self, name)
            _require(-2.0 <= value <= 2.0, name, "must be between -2 and 2", value)
        _require(
            len(self.stop) <= MAX_STOP_STRINGS,
            "stop",
            f"allows at most {MAX_STOP_STRINGS} strings",
            len(self.stop),
        )
        _require(all(self.stop), "stop", "strings must not be empty", list(self.stop))

    @property
    def is_greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def has_penalties(self) -> bool:
        return self.presence_penalty != 0.0 or self.frequency_penalty != 0.0

    @classmethod
    def from_pb(
        cls, pb: common_pb2.SamplingParams, defaults: SamplingDefaults | None = None
    ) -> SamplingParams:
        """Wire -> engine; unset temperature / top_p take the model's defaults (top_p 0 = off)."""
        defaults = defaults or SamplingDefaults()
        return cls(
            temperature=pb.temperature if pb.HasField("temperature") else defaults.temperature,
            top_p=(pb.top_p if pb.HasField("top_p") else defaults.top_p) or 1.0,
            top_k=pb.top_k,
            seed=pb.seed if pb.HasField("seed") else None,
            max_tokens=pb.max_tokens or None,
            stop=tuple(pb.stop),
            ignore_eos=pb.ignore_eos,
            presence_penalty=pb.presence_penalty,
            frequency_penalty=pb.frequency_penalty,
        )


def _require(ok: bool, param: str, rule: str, value: object) -> None:
    if not ok:
        raise InvalidRequest(f"{param} {rule}, got {value!r}", param=param)
