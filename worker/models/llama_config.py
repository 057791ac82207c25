"""LlamaConfig: the shapes and options of a Llama-family model, read from a Hugging Face
config.json (and written back for transformers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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

    def __post_init__(self) -> None:
        if self.head_dim == 0:
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if isinstance(self.eos_token_id, int):
            self.eos_token_id = [self.eos_token_id]

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any]) -> LlamaConfig:
        """From a Hugging Face config.json (llama, mistral, qwen2 model types)."""
        rope = d.get("rope_scaling") or d.get("rope_parameters")
        theta = d.get("rope_theta") or (rope or {}).get("rope_theta", 10000.0)
        if rope and rope.get("rope_type", rope.get("type")) == "default":
            rope = None
        eos = d.get("eos_token_id")
        is_qwen2 = d.get("model_type") == "qwen2"
        return cls(
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
        )

    def to_hf_dict(self) -> dict[str, Any]:
        """A config.json that transformers reads back to the same model (Qwen2 for q/k/v-only bias)."""
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
