"""Estimate what one request costs in € and kWh, before sending it (SPEC §2).

    python -m tools.ops.cost_estimate "Summarise this..." --max-tokens 500 --model qwen3:8b
    python -m tools.ops.cost_estimate --file prompt.txt --max-tokens 1000 --reasoning 600
    python -m tools.ops.cost_estimate --file prompt.txt --tokenizer smollm2   # exact prompt count

total = input × 0.9 €/M + output × 4 €/M + reasoning × 21 €/M (or the model's catalog
overrides). `--max-tokens` caps the completion, which includes the reasoning tokens (as
OpenAI counts them): the estimate bills `max_tokens - reasoning` as output, the worst case.
Tokens: ≈ characters / 4 (the client docs' rule) unless `--tokenizer smollm2` renders the
chat template with the worker's tokenizer (then the platform's system tokens are counted).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

from mesh.catalog import Catalog, CatalogEntry
from mesh.pricing import Prices, cost_eur, energy_kwh, to_cents

CHARS_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class Estimate:
    model: str
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    token_count: str  # how input_tokens was obtained
    cost_eur: Decimal
    cost_eur_cents: Decimal
    energy_kwh: Decimal


def approx_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def smollm2_tokens(text: str) -> int:
    """Exact prompt tokens as the worker counts them (chat template and default system
    prompt included). Raises ImportError/FileNotFoundError when the model is not at hand."""
    from worker.loader import load_tokenizer  # noqa: PLC0415 - optional, heavy

    ids, _system = load_tokenizer("smollm2:135m").render_chat([{"role": "user", "content": text}])
    return len(ids)


def count_input(text: str, tokenizer: str) -> tuple[int, str]:
    if tokenizer == "smollm2":
        try:
            return smollm2_tokens(text), "smollm2 tokenizer (chat template included)"
        except (ImportError, OSError, ValueError) as exc:
            print(f"note: smollm2 tokenizer unavailable ({exc}); using chars/4", file=sys.stderr)
    return approx_tokens(text), "approx: characters / 4"


def estimate(
    entry: CatalogEntry, text: str, max_tokens: int, reasoning: int, tokenizer: str = "chars"
) -> Estimate:
    if not 0 <= reasoning <= max_tokens:
        raise ValueError(f"--reasoning must be in 0..max_tokens ({max_tokens}), got {reasoning}")
    input_tokens, how = count_input(text, tokenizer)
    output = max_tokens - reasoning
    cost = cost_eur(input_tokens, output, reasoning, Prices.for_entry(entry))
    energy = energy_kwh(input_tokens + max_tokens, entry.energy_kwh_per_mtok)
    return Estimate(entry.id, input_tokens, output, reasoning, how, cost, to_cents(cost), energy)


def render(e: Estimate) -> str:
    return "\n".join(
        [
            f"model            {e.model}",
            f"input tokens     {e.input_tokens:>10}   ({e.token_count})",
            f"output tokens    {e.output_tokens:>10}   (max_tokens - reasoning)",
            f"reasoning tokens {e.reasoning_tokens:>10}",
            f"cost             {e.cost_eur_cents} €   (exact {e.cost_eur} €)",
            f"energy           {e.energy_kwh} kWh",
        ]
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tools.ops.cost_estimate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("prompt", nargs="?", help="the prompt text")
    src.add_argument("--file", type=Path, help="read the prompt from this file")
    p.add_argument("--max-tokens", type=int, required=True, help="completion cap (always set it)")
    p.add_argument("--reasoning", type=int, default=0, help="reasoning tokens within max_tokens")
    p.add_argument("--model", default="smollm2:135m", help="catalog id (prices, energy)")
    p.add_argument("--tokenizer", choices=("chars", "smollm2"), default="chars")
    p.add_argument("--catalog", type=Path, help="catalog file (default: the shipped one)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    catalog = Catalog.load(args.catalog)
    entry = catalog.get(args.model)
    if entry is None:
        print(f"unknown model {args.model!r}; see mesh/catalog/models.csv", file=sys.stderr)
        return 2
    text = args.file.read_text(encoding="utf-8") if args.file else args.prompt
    try:
        result = estimate(entry, text, args.max_tokens, args.reasoning, args.tokenizer)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(
            json.dumps(
                {k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(result).items()},
                indent=2,
            )
        )
    else:
        print(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
