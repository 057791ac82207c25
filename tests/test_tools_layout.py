"""`tools/` split by audience (issue 19): operator CLIs (`tools.ops`), benchmarks
(`tools.bench`), dev/test harness (`tools.dev`) and the launcher (`tools.launcher`, run by
`tools.run_mesh`), with no import cycles, small modules, and the old commands kept as aliases.
Static checks (grimp's import graph, file sizes) plus `--help` of two commands."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"

# Old `python -m tools.X` commands the README, Makefile, tests or product messages name.
ALIASES = {
    "tools.admin": "tools.ops.admin.cli",
    "tools.certs": "tools.ops.certs",
    "tools.gpu_check": "tools.dev.gpu_check",
    "tools.bench_access": "tools.bench.access",
    "tools.bench_compare": "tools.bench.compare",
    "tools.bench_overhead": "tools.bench.overhead",
    "tools.bench_fairness": "tools.bench.fairness",
    "tools.bench_tracing": "tools.bench.tracing",
}
# Which audience may import which (launcher: `start_mesh` for benchmarks; ops.certs for TLS).
ALLOWED = {
    "tools.ops": set(),
    "tools.dev": set(),
    "tools.launcher": {"tools.ops"},
    "tools.bench": {"tools.launcher", "tools.dev", "tools.ops"},
}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("tools")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every import cycle among tools modules (DFS over direct imports)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for nxt in sorted(graph.find_modules_directly_imported_by(module)):
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[module] = 2

    for module in sorted(graph.modules):
        if module not in state:
            visit(module, [module])
    return found


def test_no_import_cycles_in_tools(graph: grimp.ImportGraph) -> None:
    # bench.py and bench_compare.py used to import each other.
    assert _cycles(graph) == []


def test_each_audience_imports_only_what_it_may(graph: grimp.ImportGraph) -> None:
    bad = []
    for package, allowed in ALLOWED.items():
        for other in set(ALLOWED) - {package} - allowed:
            if chain := graph.find_shortest_chain(importer=package, imported=other):
                bad.append(" -> ".join(chain))
            for module in graph.find_descendants(package):
                if chain := graph.find_shortest_chain(importer=module, imported=other):
                    bad.append(" -> ".join(chain))
    assert bad == []


def test_the_launcher_and_the_benchmarks_do_not_import_the_commands(
    graph: grimp.ImportGraph,
) -> None:
    """`tools.run_mesh` and the alias modules are entry points: nothing in the packages
    imports them (the packages are what they run)."""
    entries = ["tools.run_mesh", *ALIASES]
    importers = {m: graph.find_modules_that_directly_import(m) for m in entries}
    assert {m: sorted(i) for m, i in importers.items() if i} == {}


def test_no_tools_module_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in TOOLS.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


def test_one_engine_benchmark() -> None:
    assert not (ROOT / "worker" / "bench.py").exists()
    assert not (TOOLS / "engine_bench.py").exists()
    engine = importlib.import_module("tools.bench.engine")
    assert {"concurrency_main", "quant_main"} <= set(vars(engine))


@pytest.mark.parametrize(("alias", "target"), sorted(ALIASES.items()))
def test_alias_runs_the_moved_main(alias: str, target: str) -> None:
    module = importlib.import_module(alias)
    assert module.main is importlib.import_module(target).main
    assert len((ROOT / (alias.replace(".", "/") + ".py")).read_text().splitlines()) <= 8


@pytest.mark.parametrize("command", ["tools.bench", "tools.admin"])
def test_old_commands_still_answer(command: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", command, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout
