"""The one decision of which native kernels (`worker.kernels`) a model runs.

Made once, at load (`KernelPlan.decide`, from the model's config, dtype and device), then
passed down explicitly: `quantize_model` packs the int linears for `linears` (and runs them
on AMX tiles for `amx`), `ModelRunner` runs decode attention on the kernels for `attention`,
and every forward carries the plan to the layers in `AttnContext.kernels` (RMSNorm for
`rms_norm`, SwiGLU for `silu_mul`). Every family gets the same decision, from its config:
a part whose shapes or semantics a family does not fit is off for that family, here. Nothing below the loader asks the CPU or the environment
again. The switches (`LLMAAS_NATIVE_KERNELS=0`, `LLMAAS_NATIVE_AMX=0`) and the CPU checks
are read by `worker.kernels.available()` / `amx()`, which `decide` calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from worker import kernels

if TYPE_CHECKING:
    from worker.models.llama_config import LlamaConfig


@dataclass(frozen=True, slots=True)
class KernelPlan:
    """Which parts of a forward run on worker.kernels (all off: torch's own ops)."""

    linears: bool = False  # int4 / int8 decode linears (QuantLinear), 6..32 rows
    amx: bool = False  # those linears on AMX tiles (else AVX-512 BF16)
    attention: bool = False  # a decode step's rotary + KV write + attention
    rms_norm: bool = False  # RMSNorm in one pass (rows of hidden_size)
    silu_mul: bool = False  # SwiGLU in one pass (rows of intermediate_size)

    @classmethod
    def decide(
        cls, config: LlamaConfig, dtype: torch.dtype, device: torch.device | str
    ) -> KernelPlan:
        """The kernels take bf16 on a CPU that has them (and where they are not turned off);
        each part also needs the model's shapes to fit its limits."""
        if torch.device(device).type != "cpu" or dtype != torch.bfloat16:
            return cls()
        if not kernels.available():
            return cls()
        return cls(
            linears=True,
            amx=kernels.amx(),
            # The decode kernel attends over every cached key at 1/sqrt(head_dim): not for a
            # family with another scale (Granite, Gemma 3) or sliding-window layers.
            attention=kernels.supports_attention(
                config.num_attention_heads, config.num_key_value_heads, config.head_dim
            )
            and config.attention_scale is None
            and not config.has_sliding_layers,
            rms_norm=config.hidden_size % 16 == 0,
            silu_mul=config.intermediate_size % 16 == 0 and config.hidden_act == "silu",
        )


NO_KERNELS = KernelPlan()
