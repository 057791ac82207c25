"""Alias: `python -m tools.bench_overhead` runs `python -m tools.bench.overhead` (named in the README)."""

from tools.bench.overhead import main

if __name__ == "__main__":
    raise SystemExit(main())
