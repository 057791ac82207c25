"""Alias: `python -m tools.gpu_check` runs `python -m tools.dev.gpu_check` (named in the README)."""

from tools.dev.gpu_check import main

if __name__ == "__main__":
    raise SystemExit(main())
