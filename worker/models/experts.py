"""Expert weights stored stacked ([experts, out, in] in one tensor, as Granite MoE and
transformers 5 save them) -> one linear per expert, as the shared decoder holds them."""

from __future__ import annotations

import torch


def unstack_experts(
    state: dict[str, torch.Tensor], stacked: dict[str, str]
) -> dict[str, torch.Tensor]:
    """stacked: checkpoint suffix (after `model.layers.N.`, without `.weight`) -> the expert
    linear's name; `model.layers.N.<suffix>[.weight]` [E, out, in] becomes
    `model.layers.N.mlp.experts.e.<name>.weight` [out, in] for each e."""
    out: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        layer, _, rest = _split_layer(name)
        suffix = rest.removesuffix(".weight")
        if layer is None or suffix not in stacked:
            out[name] = t
            continue
        for e, w in enumerate(t.unbind(0)):
            out[f"{layer}.mlp.experts.{e}.{stacked[suffix]}.weight"] = w
    return out


def _split_layer(name: str) -> tuple[str | None, str, str]:
    # "model.layers.3.mlp.x.weight" -> ("model.layers.3", ".", "mlp.x.weight")
    parts = name.split(".")
    if len(parts) < 4 or parts[:2] != ["model", "layers"]:
        return None, "", name
    return ".".join(parts[:3]), ".", ".".join(parts[3:])
