"""Alias: `python -m tools.bench_fairness` runs `python -m tools.bench.fairness` (named in the README)."""

from tools.bench.fairness import main

if __name__ == "__main__":
    raise SystemExit(main())
