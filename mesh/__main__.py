"""`python -m mesh edge|router|filter [args]`: runs one mesh process."""

from __future__ import annotations

import runpy
import sys

COMPONENTS = ("edge", "router", "filter")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMPONENTS:
        sys.exit(f"usage: python -m mesh {{{'|'.join(COMPONENTS)}}} [args...]")
    name, rest = argv[0], argv[1:]
    sys.argv = [f"mesh.{name}", *rest]
    runpy.run_module(f"mesh.{name}", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
