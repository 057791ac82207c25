"""Benign developer text for training: docstrings, comments and functions of the Python
packages installed next to this interpreter (train/dev only, split by package).

Developers paste code and docs into prompts all day, and that text is full of the
filter's trigger words in ordinary senses: "ignore", "override", "rules", "previous",
"system prompt", "instructions", ``eval``, ``os.system``, chat messages with a
``"system"`` role. Like the package prose in ``public.py`` it depends on the venv (the
weights digest does too); nothing is copied into the repository.
"""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Iterator
from importlib import metadata

MAX_FILES = 25  # per distribution: training cost, and no package dominates
MAX_FILE_BYTES = 40_000  # parsing cost
PER_FILE = 3  # texts kept per file
MIN_CHARS, MAX_CHARS = 60, 1500
_COMMENT_RE = re.compile(r"^[ \t]*#[ \t]?(.*)$")


def package_code() -> Iterator[tuple[str, str]]:
    """(distribution name, text) from the installed distributions' Python files."""
    dists = sorted(metadata.distributions(), key=lambda d: (d.metadata["Name"] or "").lower())
    for dist in dists:
        name = (dist.metadata["Name"] or "").lower()
        files = sorted(str(f) for f in dist.files or () if str(f).endswith(".py"))
        rng = random.Random(f"code/{name}")
        rng.shuffle(files)
        kept = 0
        for rel in files:
            if kept == MAX_FILES:
                break
            path = dist.locate_file(rel)
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    continue
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            kept += 1
            texts = _texts(source)
            rng.shuffle(texts)
            for text in texts[:PER_FILE]:
                yield name, text


def _texts(source: str) -> list[str]:
    """Docstrings, comment blocks and whole functions of one file, of a usable size."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node)
            if doc:
                out.append(doc)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            segment = ast.get_source_segment(source, node)
            if segment:
                out.append(segment)
    out += _comment_blocks(source)
    return [t.strip() for t in out if MIN_CHARS <= len(t.strip()) <= MAX_CHARS]


def _comment_blocks(source: str) -> list[str]:
    blocks, current = [], []
    for line in source.splitlines():
        m = _COMMENT_RE.match(line)
        if m:
            current.append(m.group(1))
        elif current:
            blocks.append(" ".join(current))
            current = []
    return blocks
