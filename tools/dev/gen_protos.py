"""Generate mesh/pb from protos/ (`make protos`): stubs, type stubs, relative imports."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]  # tools/dev/ -> the repository
PROTOS = ROOT / "protos"
OUT = ROOT / "mesh" / "pb"


def _fix_imports(path: Path, modules: set[str]) -> None:
    # protoc writes `import common_pb2`; inside a package it must be relative.
    text = path.read_text()
    fixed = re.sub(
        r"^import (\w+_pb2) as (\w+)$",
        lambda m: (
            f"from . import {m.group(1)} as {m.group(2)}" if m.group(1) in modules else m.group(0)
        ),
        text,
        flags=re.M,
    )
    if fixed != text:
        path.write_text(fixed)


def is_stale() -> bool:
    protos = list(PROTOS.glob("*.proto"))
    outputs = [OUT / f"{p.stem}_pb2.py" for p in protos] + [
        OUT / f"{p.stem}_pb2_grpc.py" for p in protos
    ]
    if not all(o.exists() for o in outputs):
        return True
    newest_input = max(p.stat().st_mtime for p in [*protos, Path(__file__)])
    return min(o.stat().st_mtime for o in outputs) < newest_input


def generate() -> None:
    protos = sorted(PROTOS.glob("*.proto"))
    OUT.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"--python_out={OUT}",
        f"--pyi_out={OUT}",
        f"--grpc_python_out={OUT}",
        *map(str, protos),
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    modules = {f"{p.stem}_pb2" for p in protos}
    for path in OUT.glob("*_pb2*.py*"):
        _fix_imports(path, modules)


if __name__ == "__main__":
    if "--force" in sys.argv or is_stale():
        generate()
        print(f"generated {OUT.relative_to(ROOT)}")
