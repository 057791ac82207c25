"""Copy-pasted code finder: pylint's duplicate-code check (R0801, `symilar`), 6+ lines.

`make lint` and tests/test_duplicates.py run `python -m tools.dev.duplicates mesh worker tools`.
Like `pylint --enable=duplicate-code --min-similarity-lines=5 --ignore-comments=yes
--ignore-docstrings=yes --ignore-imports=yes --ignore-signatures=yes` (pylint reports blocks
of MORE than min-similarity-lines lines, so 5 there is 6+ here), with two differences:

- Speed: pylint finds import and signature lines through astroid, whose inference pulls in
  torch and grpc (about 110 s of CPU on this tree); we find the same lines with the stdlib
  `ast` and blank them before handing the text to pylint's `Symilar`, which then needs no
  astroid (a few seconds).
- Declarative code is not product logic and is left out, by this narrow rule only (never by
  a higher threshold): generated protobuf modules (`mesh/pb/`, `*_pb2*.py`), argparse
  declarations (the lines of an `add_argument(...)` / `add_parser(...)` call statement), and
  the field declarations of a class body (`name: T = default`, as in dataclasses).
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pylint.checkers.symilar import Symilar

MIN_LINES = 6
# Generated code (protoc output), never edited by hand.
GENERATED = ("mesh/pb/",)
# Call statements that only declare a CLI: `parser.add_argument(...)`, `sub.add_parser(...)`.
DECLARATIVE_CALLS = frozenset({"add_argument", "add_parser", "add_argument_group"})


@dataclass(frozen=True, order=True)
class Block:
    """Lines `start`..`end` (1-based, inclusive) of `path`."""

    path: str
    start: int
    end: int

    def __str__(self) -> str:
        return f"{self.path}:{self.start}-{self.end}"


@dataclass(frozen=True)
class Duplicate:
    """One block of `lines` significant lines found at every place in `blocks`."""

    lines: int
    blocks: tuple[Block, ...]

    def __str__(self) -> str:
        return f"{self.lines} similar lines: " + ", ".join(map(str, self.blocks))


def _is_declarative(node: ast.stmt) -> bool:
    call = node.value if isinstance(node, ast.Expr | ast.Assign) else None
    return (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in DECLARATIVE_CALLS
    )


def ignored_lines(source: str) -> set[int]:
    """1-based lines that do not count: imports and `def` signatures (as pylint's
    --ignore-imports/--ignore-signatures), argparse declarations and class field declarations."""
    ignored: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            # Field declarations of a record (dataclass / Protocol / NamedTuple): `name: T = v`.
            for field in node.body:
                if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name):
                    ignored.update(range(field.lineno, (field.end_lineno or field.lineno) + 1))
        if isinstance(node, ast.Import | ast.ImportFrom) or (
            isinstance(node, ast.stmt) and _is_declarative(node)
        ):
            ignored.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            # The signature: from `def` to the line before the body (pylint's rule).
            ignored.update(range(node.lineno, node.body[0].lineno))
    return ignored


def _blanked(source: str) -> str:
    """`source` with the ignored lines emptied; line numbers are kept."""
    skip = ignored_lines(source)
    lines = source.splitlines(keepends=True)
    return "".join("\n" if n in skip else line for n, line in enumerate(lines, start=1))


def python_files(roots: Iterable[str | Path]) -> Iterator[Path]:
    """The hand-written .py files under `roots` (generated protobuf modules left out)."""
    for root in map(Path, roots):
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            posix = path.as_posix()
            if "_pb2" not in path.name and not any(g in posix for g in GENERATED):
                yield path


def find_duplicates(
    roots: Iterable[str | Path], min_lines: int = MIN_LINES, base: Path | None = None
) -> list[Duplicate]:
    """Every block of `min_lines`+ significant lines repeated in the files under `roots`
    (paths named relative to `base` when given)."""
    # Symilar reports a block only when it has MORE than its min_lines lines with code.
    symilar = Symilar(min_lines=min_lines - 1, ignore_comments=True, ignore_docstrings=True)
    for path in python_files(roots):
        source = path.read_text(encoding="utf-8")
        name = path.relative_to(base) if base else path
        symilar.append_stream(name.as_posix(), io.StringIO(_blanked(source)))
    found = []
    # _compute_sims is the list `symilar` prints (pylint 3 and 4): (lines, {(set, start, end)}).
    for lines, couples in symilar._compute_sims():  # noqa: SLF001
        blocks = sorted(Block(ls.name, start + 1, end) for ls, start, end in couples)
        found.append(Duplicate(lines, tuple(blocks)))
    return sorted(found, key=lambda d: d.blocks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="files or directories to scan")
    parser.add_argument("--min-lines", type=int, default=MIN_LINES)
    args = parser.parse_args(argv)
    duplicates = find_duplicates(args.paths, args.min_lines)
    for dup in duplicates:
        print(dup)
    print(f"{len(duplicates)} duplicated blocks of {args.min_lines}+ lines", file=sys.stderr)
    return 1 if duplicates else 0


if __name__ == "__main__":
    sys.exit(main())
