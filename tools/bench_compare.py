"""Alias: `python -m tools.bench_compare` runs `python -m tools.bench.compare` (named in the README)."""

from tools.bench.compare import main

if __name__ == "__main__":
    raise SystemExit(main())
