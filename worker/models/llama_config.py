"""LlamaConfig: the shapes and options of a decoder model, read from a Hugging Face
config.json (and written back for transformers).

Every family (worker/models/registry.py) reads its config.json into this one dataclass: the
Llama fields, then the switches the other families need (q/k norm, multipliers, sliding
window, experts), whose defaults are Llama's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FULL, SLIDING = "full_attention", "sliding_attention"


@dataclass(slots=True)
class LlamaConfig:
    hidden_size: int = 576
    intermediate_size: int = 1536
    num_hidden_layers: int = 30
    num_attention_heads: int = 9
    num_key_value_heads: int = 3
    vocab_size: int = 49152
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None
    max_position_embeddings: int = 8192
    tie_word_embeddings: bool = True
    attention_bias: bool = False  # biases on q/k/v (Qwen2, some Llama checkpoints)
    attention_out_bias: bool = False  # bias on o_proj (HF Llama's attention_bias sets both)
    head_dim: int = 0  # 0: hidden_size // num_attention_heads
    bos_token_id: int | None = 1
    eos_token_id: list[int] = field(default_factory=lambda: [2])
    # The family (worker/models/registry.py) and its switches; the defaults are Llama's.
    architecture: str = "LlamaForCausalLM"
    hidden_act: str = "silu"  # or gelu_pytorch_tanh (Gemma's GeGLU)
    mlp_bias: bool = False
    qk_norm: bool = False  # per-head RMSNorm of q and k (Qwen3, Gemma 3)
    attention_scale: float | None = None  # None: 1/sqrt(head_dim)
    embedding_multiplier: float = 1.0  # Granite; Gemma: sqrt(hidden_size)
    residual_multiplier: float = 1.0  # Granite
    logits_scaling: float = 1.0  # Granite: logits are divided by it
    final_logit_softcapping: float | None = None  # Gemma: cap * tanh(logits / cap)
    sliding_window: int | None = None  # keys within the last `sliding_window` positions
    layer_types: list[str] | None = None  # per layer FULL or SLIDING; None: all FULL
    rope_local_theta: float | None = None  # Gemma 3's sliding layers: their own rope base
    num_experts: int = 0  # sparse MoE (0: dense)
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    norm_topk_prob: bool = True
    dense_layers: list[int] = field(default_factory=list)  # MoE models' dense MLP layers

    def __post_init__(self) -> None:
        if self.head_dim == 0:
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if isinstance(self.eos_token_id, int):
            self.eos_token_id = [self.eos_token_id]
        if self.layer_types is not None and len(self.layer_types) != self.num_hidden_layers:
            raise ValueError("layer_types must name one type per layer")

    def is_sliding(self, layer: int) -> bool:
        return bool(self.sliding_window) and (self.layer_types or [FULL])[layer] == SLIDING

    def is_moe(self, layer: int) -> bool:
        return self.num_experts > 0 and layer not in self.dense_layers

    @property
    def has_sliding_layers(self) -> bool:
        return any(self.is_sliding(i) for i in range(self.num_hidden_layers))

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any], **family: Any) -> LlamaConfig:
        """From a Hugging Face config.json: the fields every family shares (llama, mistral,
        qwen2 need nothing more); `family`: a family's own fields (worker/models/*.py)."""
        rope = d.get("rope_scaling") or d.get("rope_parameters")
        theta = d.get("rope_theta") or (rope or {}).get("rope_theta", 10000.0)
        if rope and rope.get("rope_type", rope.get("type")) == "default":
            rope = None
        eos = d.get("eos_token_id")
        is_qwen2 = d.get("model_type") == "qwen2"
        kwargs: dict[str, Any] = dict(
            hidden_size=d["hidden_size"],
            intermediate_size=d["intermediate_size"],
            num_hidden_layers=d["num_hidden_layers"],
            num_attention_heads=d["num_attention_heads"],
            num_key_value_heads=d.get("num_key_value_heads") or d["num_attention_heads"],
            vocab_size=d["vocab_size"],
            rms_norm_eps=d.get("rms_norm_eps", 1e-6),
            rope_theta=float(theta),
            rope_scaling=rope,
            max_position_embeddings=d.get("max_position_embeddings", 4096),
            tie_word_embeddings=d.get("tie_word_embeddings", False),
            # Qwen2 always has q/k/v biases (never on o_proj) and does not say so in its config.
            attention_bias=is_qwen2 or d.get("attention_bias", False),
            attention_out_bias=not is_qwen2 and d.get("attention_bias", False),
            head_dim=d.get("head_dim") or 0,
            bos_token_id=d.get("bos_token_id"),
            eos_token_id=[] if eos is None else ([eos] if isinstance(eos, int) else list(eos)),
            architecture=(d.get("architectures") or ["LlamaForCausalLM"])[0],
            mlp_bias=d.get("mlp_bias", False),
        )
        kwargs.update(_sliding(d))
        kwargs.update(family)
        return cls(**kwargs)

    def to_hf_dict(self) -> dict[str, Any]:
        """A config.json that transformers reads back to the same model (Llama family only;
        Qwen2 for q/k/v-only bias)."""
        is_qwen2 = self.attention_bias and not self.attention_out_bias
        return {
            "architectures": ["Qwen2ForCausalLM" if is_qwen2 else "LlamaForCausalLM"],
            "model_type": "qwen2" if is_qwen2 else "llama",
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "vocab_size": self.vocab_size,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": self.rope_scaling,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "attention_bias": self.attention_bias,
            "hidden_act": "silu",
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
        }

    @classmethod
    def tiny(cls, **overrides: Any) -> LlamaConfig:
        """A 2-layer model for unit tests and GPU smoke checks (random weights)."""
        kwargs: dict[str, Any] = dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=512,
            rope_theta=10000.0,
            max_position_embeddings=2048,
            tie_word_embeddings=False,
        )
        kwargs.update(overrides)
        return cls(**kwargs)


def _sliding(d: dict[str, Any]) -> dict[str, Any]:
    """The sliding window and which layers use it, as transformers reads them: `layer_types`
    when given; else Qwen's use_sliding_window / max_window_layers; else every layer (Mistral,
    Phi-3) when a window is set."""
    window = d.get("sliding_window")
    if not window or d.get("use_sliding_window") is False:
        return {}
    n = d["num_hidden_layers"]
    types = d.get("layer_types")
    if types is None and "max_window_layers" in d:
        types = [SLIDING if i >= d["max_window_layers"] else FULL for i in range(n)]
    return {"sliding_window": int(window), "layer_types": list(types or [SLIDING] * n)}
