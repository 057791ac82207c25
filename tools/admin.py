"""Alias: `python -m tools.admin` runs `python -m tools.ops.admin.cli` (llmaas-admin; tests and scripts call it)."""

from tools.ops.admin.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
