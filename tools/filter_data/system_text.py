"""Ordinary text in many languages from the system's gettext catalogs.

``/usr/share/locale/<lang>/LC_MESSAGES/*.mo`` holds the translated messages of
the installed programs (coreutils, apt, git, gtk...): thousands of ordinary,
human-written sentences per language, with everyday uses of "ignore",
"instructions", "rules", "system", "password"... They are benign negatives
for training and dev only (split by catalog, never in the frozen test split),
read in sorted order with a seeded sample, so the same OS image gives the same
data. Nothing is copied into the repository.
"""

from __future__ import annotations

import gettext
import random
import re
import zlib
from pathlib import Path

LOCALE_DIR = Path("/usr/share/locale")
# Our language codes -> catalog directories.
DIRS = {
    "en": (), "fr": ("fr",), "es": ("es",), "de": ("de",), "it": ("it",),
    "pt": ("pt", "pt_BR"), "nl": ("nl",), "ru": ("ru",), "pl": ("pl",), "tr": ("tr",),
    "ar": ("ar",), "ko": ("ko",), "zh": ("zh_CN", "zh_TW"), "ja": ("ja",),
    "uk": ("uk",), "sv": ("sv",), "cs": ("cs",), "id": ("id",), "vi": ("vi",), "hi": ("hi",),
}  # fmt: skip
_FORMAT_RE = re.compile(
    r"%(?:\d+\$)?[-+ #0]*\d*(?:\.\d+)?[hlLqjzt]*[a-zA-Z%]|\{[^{}]*\}|\$\{?\w+\}?"
)
_MNEMONIC_RE = re.compile(r"(?<=\w)_(?=\w)|&(?=\w)|^_")
_SPACE_RE = re.compile(r"\s+")


def _clean(text: str) -> str | None:
    text = _SPACE_RE.sub(" ", _MNEMONIC_RE.sub("", _FORMAT_RE.sub("X", text))).strip()
    letters = sum(c.isalpha() for c in text)
    if not 12 <= len(text) <= 400:
        return None
    spaced_words = letters >= 0.5 * len(text) and " " in text
    cjk_like = letters >= 6 and not text.isascii()  # CJK has no spaces
    return text if spaced_words or cjk_like else None


def _messages(path: Path, english: bool) -> list[str]:
    try:
        with path.open("rb") as f:
            catalog = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, IndexError):
        return []
    out = []
    for key, value in catalog.items():
        msgid = key[0] if isinstance(key, tuple) else key
        text = msgid if english else value
        if not isinstance(text, str) or not msgid:
            continue
        cleaned = _clean(text)
        if cleaned:
            out.append(cleaned)
    return sorted(set(out))


def split_of_catalog(name: str) -> str:
    """A catalog (program) is one family: ~15 % of them go to dev, none to test."""
    return "dev" if zlib.crc32(name.encode()) % 100 < 15 else "train"


def system_text(per_lang: int, seed: int = 0) -> list[dict]:
    """Up to ``per_lang`` messages per language: {text, language, family, split}."""
    rng = random.Random(seed)
    records = []
    for lang, dirs in DIRS.items():
        paths = []
        if lang == "en":  # English: the msgids of the French catalogs
            paths = sorted((LOCALE_DIR / "fr" / "LC_MESSAGES").glob("*.mo"))
        for d in dirs:
            paths += sorted((LOCALE_DIR / d / "LC_MESSAGES").glob("*.mo"))
        pool = []
        for path in paths:
            name = path.stem
            if name.startswith("iso_"):  # country and script names: lists, not text
                continue
            pool += [(name, m) for m in _messages(path, english=lang == "en")]
        rng.shuffle(pool)
        for name, text in pool[:per_lang]:
            records.append(
                {
                    "text": text,
                    "language": lang,
                    "family": f"catalog/{name}",
                    "split": split_of_catalog(name),
                }  # fmt: skip
            )
    return records
