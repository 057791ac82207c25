"""Alias: `python -m tools.certs` runs `python -m tools.ops.certs` (mesh/tls.py's error messages name it)."""

from tools.ops.certs import main

if __name__ == "__main__":
    raise SystemExit(main())
