"""The import contracts (pyproject.toml [tool.importlinter]) hold, and they can fail.

`lint-imports` runs on the repository (as `make lint` does), then on a copy of its Python
sources with one forbidden import written in per contract: each copy must be refused, naming
the contract and the import, so a contract that silently stopped checking would show here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# Components: everything else directly under mesh/ is the shared layer.
COMPONENTS = {"edge", "router", "filter", "console"}
NOT_MODULES = {"__init__", "__main__", "__pycache__"}  # __main__ runs a component by name


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH and cwd put `root`'s packages first, ahead of the editable install.
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_contracts_hold_on_the_repository() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for contract in _contracts().values():
        assert f"{contract['name']} KEPT" in result.stdout


def test_shared_contract_covers_every_shared_module() -> None:
    """A new top-level mesh module is shared, so it must be in the contract (or a component)."""
    shared = set(_contracts()["shared"]["source_modules"])
    present = {
        f"mesh.{p.stem}"
        for p in (ROOT / "mesh").iterdir()
        if (p.suffix == ".py" or (p / "__init__.py").exists())
        and p.stem not in NOT_MODULES | COMPONENTS
    }
    assert present - shared == set(), "add these to the 'shared' contract in pyproject.toml"
    assert shared - present == set(), "the 'shared' contract names modules that are gone"


def _copy_sources(dest: Path) -> None:
    """The Python files of mesh/, worker/ and tools/ plus pyproject.toml: all grimp reads."""
    keep_py = shutil.ignore_patterns("__pycache__", "*.pyc", "*.csv", "*.npz", "*.json", "*.html")
    for package in ("mesh", "worker", "tools"):
        shutil.copytree(ROOT / package, dest / package, ignore=keep_py)
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")


# (contract id, file that gets the import, the import, what the report must say)
WRONG_IMPORTS = [
    ("edge", "mesh/edge/__init__.py", "import mesh.router", "mesh.edge -> mesh.router"),
    ("edge", "mesh/edge/__init__.py", "import worker", "mesh.edge -> worker"),
    ("router-worker", "worker/__init__.py", "import mesh.router", "worker -> mesh.router"),
    ("router-worker", "mesh/router/__init__.py", "import worker", "mesh.router -> worker"),
    ("filter", "mesh/filter/__init__.py", "import mesh.router", "mesh.filter -> mesh.router"),
    ("shared", "mesh/errors.py", "import mesh.edge", "mesh.errors -> mesh.edge"),
    ("shared", "mesh/catalog/__init__.py", "import mesh.router", "mesh.catalog -> mesh.router"),
    ("product", "mesh/wire.py", "import tools", "mesh.wire -> tools"),
]


@pytest.mark.parametrize(
    ("contract", "path", "line", "chain"),
    WRONG_IMPORTS,
    ids=[f"{w[0]}:{w[2]}" for w in WRONG_IMPORTS],
)
def test_a_wrong_import_breaks_its_contract(
    tmp_path: Path, contract: str, path: str, line: str, chain: str
) -> None:
    _copy_sources(tmp_path)
    target = tmp_path / path
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # wrong on purpose\n")

    result = _lint_imports(tmp_path)

    assert result.returncode != 0, result.stdout
    assert f"{_contracts()[contract]['name']} BROKEN" in result.stdout
    assert chain in result.stdout, result.stdout
