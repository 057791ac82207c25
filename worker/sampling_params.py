"""SamplingParams: how one request picks tokens and when it stops, validated at the edge."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from worker.errors import InvalidRequest

if TYPE_CHECKING:
    from mesh.pb import common_pb2

MAX_STOP_STRINGS = 16
MAX_TOP_LOGPROBS = 20  # OpenAI's bound
MAX_N = 16  # choices per request (each holds a KV slot while it runs)
MAX_LOGIT_BIAS = 1024  # entries of logit_bias (OpenAI documents no bound; vLLM none either)


@dataclass(slots=True, frozen=True)
class SamplingDefaults:
    """What a request that sets no temperature / top_p gets: the model's recommendation
    (its generation_config.json, or its model card), else OpenAI's defaults."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: off; a request's top_k (an extension field) wins


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
    min_p: float = 0.0  # 0: off
    repetition_penalty: float = 1.0  # 1: off (HF semantics, over prompt and output tokens)
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias); ids checked by the engine
    logprobs: bool = False
    top_logprobs: int = 0
    n: int = 1
    # The compiled grammar of an OutputConstraint (worker.grammar.GrammarCache); None: free text
    grammar: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _require(
            0.0 <= self.temperature <= 2.0,
            "temperature",
            "must be between 0 and 2",
            self.temperature,
        )
        _require(0.0 <= self.top_p <= 1.0, "top_p", "must be in [0, 1]", self.top_p)
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
        self._validate_decoding()

    def _validate_decoding(self) -> None:
        _require(0.0 <= self.min_p <= 1.0, "min_p", "must be between 0 and 1", self.min_p)
        _require(
            0.0 < self.repetition_penalty <= 2.0,
            "repetition_penalty",
            "must be in (0, 2]",
            self.repetition_penalty,
        )
        _require(
            len(self.logit_bias) <= MAX_LOGIT_BIAS,
            "logit_bias",
            f"allows at most {MAX_LOGIT_BIAS} tokens",
            len(self.logit_bias),
        )
        for token_id, bias in self.logit_bias:
            _require(-100.0 <= bias <= 100.0, "logit_bias", "values must be in [-100, 100]", bias)
            _require(token_id >= 0, "logit_bias", "keys must be token ids >= 0", token_id)
        _require(
            0 <= self.top_logprobs <= MAX_TOP_LOGPROBS,
            "top_logprobs",
            f"must be between 0 and {MAX_TOP_LOGPROBS}",
            self.top_logprobs,
        )
        _require(
            self.logprobs or not self.top_logprobs,
            "top_logprobs",
            "needs logprobs to be true",
            self.top_logprobs,
        )
        _require(1 <= self.n <= MAX_N, "n", f"must be between 1 and {MAX_N}", self.n)

    @property
    def is_greedy(self) -> bool:
        """temperature 0 or top_p 0 (only the most likely token is left)."""
        return self.temperature == 0.0 or self.top_p == 0.0

    @property
    def has_penalties(self) -> bool:
        return self.presence_penalty != 0.0 or self.frequency_penalty != 0.0

    @classmethod
    def from_pb(
        cls, pb: common_pb2.SamplingParams, defaults: SamplingDefaults | None = None
    ) -> SamplingParams:
        """Wire -> engine; unset temperature / top_p take the model's defaults (top_p 0: greedy).
        The constraint is compiled by the caller (it needs the engine's GrammarCache)."""
        defaults = defaults or SamplingDefaults()
        return cls(
            temperature=pb.temperature if pb.HasField("temperature") else defaults.temperature,
            top_p=pb.top_p if pb.HasField("top_p") else defaults.top_p,
            top_k=pb.top_k or defaults.top_k,
            seed=pb.seed if pb.HasField("seed") else None,
            max_tokens=pb.max_tokens or None,
            stop=tuple(pb.stop),
            ignore_eos=pb.ignore_eos,
            presence_penalty=pb.presence_penalty,
            frequency_penalty=pb.frequency_penalty,
            min_p=pb.min_p,
            repetition_penalty=(
                pb.repetition_penalty if pb.HasField("repetition_penalty") else 1.0
            ),
            logit_bias=tuple(sorted(pb.logit_bias.items())),
            logprobs=pb.logprobs,
            top_logprobs=pb.top_logprobs,
            n=pb.n or 1,
        )


def _require(ok: bool, param: str, rule: str, value: object) -> None:
    if not ok:
        raise InvalidRequest(f"{param} {rule}, got {value!r}", param=param)
