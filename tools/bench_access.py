"""Alias: `python -m tools.bench_access` runs `python -m tools.bench.access` (named in the README and docs)."""

from tools.bench.access import main

if __name__ == "__main__":
    raise SystemExit(main())
