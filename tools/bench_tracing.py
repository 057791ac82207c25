"""Alias: `python -m tools.bench_tracing` runs `python -m tools.bench.tracing` (named in the README)."""

from tools.bench.tracing import main

if __name__ == "__main__":
    raise SystemExit(main())
