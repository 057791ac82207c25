"""The catalog file: parses mesh/catalog/models.csv and reloads it when operators edit it.

The router holds one Catalog, calls `reload_if_changed()` periodically (an mtime/size check,
cheap) and asks `lifecycle(model_id, today)` on each request. A file that fails to parse is
logged and ignored: the previous catalog stays in force, so a typo never takes models down.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

from mesh.catalog.lifecycle import Lifecycle, evaluate

log = logging.getLogger(__name__)

DEFAULT_PATH = Path(__file__).resolve().parent / "models.csv"
PHASES = ("production", "experimental", "deprecated", "retired")
KINDS = ("chat", "embedding")
REQUIRED = ("id", "editor", "phase", "dmp")
_SIZE = re.compile(r":(\d+(?:\.\d+)?)([mb])", re.IGNORECASE)


class CatalogError(ValueError):
    """The catalog file is malformed (the message names the line)."""


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    id: str
    editor: str
    phase: Literal["production", "experimental", "deprecated", "retired"]
    dmp: date
    dsp: date | None
    context_length: int
    energy_kwh_per_mtok: Decimal
    price_input: Decimal | None
    price_output: Decimal | None
    price_reasoning: Decimal | None
    weights: str | None
    kind: Literal["chat", "embedding"]
    successor: str | None

    @property
    def params_b(self) -> float | None:
        """Total parameters in billions from the id size ('qwen3:30b-a3b' -> 30.0)."""
        m = _SIZE.search(self.id)
        if m is None:
            return None
        value = float(m.group(1))
        return value / 1000 if m.group(2).lower() == "m" else value

    @property
    def served_by_default(self) -> bool:
        return self.weights is not None


def _opt(row: dict[str, str], key: str) -> str | None:
    value = (row.get(key) or "").strip()
    return value or None


def _decimal(row: dict[str, str], key: str) -> Decimal | None:
    value = _opt(row, key)
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise CatalogError(f"{key}={value!r} is not a number") from None


def _choice(row: dict[str, str], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = _opt(row, key) or default
    if value not in allowed:
        raise CatalogError(f"{key}={value!r}, expected one of {', '.join(allowed)}")
    return value


def parse_row(row: dict[str, str]) -> CatalogEntry:
    for key in REQUIRED:
        if _opt(row, key) is None:
            raise CatalogError(f"missing {key}")
    dsp = _opt(row, "dsp")
    try:
        return CatalogEntry(
            id=row["id"].strip(),
            editor=row["editor"].strip(),
            phase=_choice(row, "phase", PHASES, "production"),  # type: ignore[arg-type]
            dmp=date.fromisoformat(row["dmp"].strip()),
            dsp=date.fromisoformat(dsp) if dsp else None,
            context_length=int(_opt(row, "context_length") or 0),
            energy_kwh_per_mtok=_decimal(row, "energy_kwh_per_mtok") or Decimal(0),
            price_input=_decimal(row, "price_input"),
            price_output=_decimal(row, "price_output"),
            price_reasoning=_decimal(row, "price_reasoning"),
            weights=_opt(row, "weights"),
            kind=_choice(row, "kind", KINDS, "chat"),  # type: ignore[arg-type]
            successor=_opt(row, "successor"),
        )
    except ValueError as exc:  # bad date or int
        if isinstance(exc, CatalogError):
            raise
        raise CatalogError(str(exc)) from None


def parse_text(text: str, source: str = "<catalog>") -> dict[str, CatalogEntry]:
    """Parse the CSV text; '#' lines are comments. Raises CatalogError naming the line."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    entries: dict[str, CatalogEntry] = {}
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    for row in reader:
        if not any((v or "").strip() for v in row.values()):
            continue
        try:
            entry = parse_row(row)
        except CatalogError as exc:
            raise CatalogError(f"{source}: row {reader.line_num}: {exc}") from None
        if entry.id in entries:
            raise CatalogError(f"{source}: duplicate model id {entry.id!r}")
        entries[entry.id] = entry
    return entries


class Catalog:
    def __init__(self, path: Path, entries: dict[str, CatalogEntry], stamp: tuple[int, int]):
        self.path = path
        self._entries = entries
        self._stamp = stamp

    @classmethod
    def load(cls, path: Path | None = None) -> Catalog:
        path = Path(path) if path is not None else DEFAULT_PATH
        stamp = _stamp(path)
        return cls(path, parse_text(path.read_text(encoding="utf-8"), str(path)), stamp)

    def get(self, model_id: str) -> CatalogEntry | None:
        return self._entries.get(model_id)

    def entries(self) -> list[CatalogEntry]:
        return list(self._entries.values())

    def lifecycle(self, model_id: str, today: date | None = None) -> Lifecycle:
        """Lifecycle of a known model; KeyError for an id not in the catalog."""
        entry = self._entries.get(model_id)
        if entry is None:
            raise KeyError(model_id)
        return evaluate(entry, today or date.today())

    def reload_if_changed(self) -> bool:
        """Re-read the file when its mtime or size changed; True when new entries apply."""
        try:
            stamp = _stamp(self.path)
        except OSError as exc:
            log.warning("catalog %s unreadable, keeping the loaded one: %s", self.path, exc)
            return False
        if stamp == self._stamp:
            return False
        try:
            entries = parse_text(self.path.read_text(encoding="utf-8"), str(self.path))
        except (OSError, UnicodeDecodeError, CatalogError) as exc:
            log.error("catalog %s not reloaded, keeping the loaded one: %s", self.path, exc)
            self._stamp = stamp  # don't re-parse the same broken file every tick
            return False
        self._entries, self._stamp = entries, stamp
        log.info("catalog %s reloaded: %d models", self.path, len(entries))
        return True


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size
