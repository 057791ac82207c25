"""Structure layer: JSON-shaped prompts and deceptive Unicode.

Unicode signals are *scored*, not blocking on their own: NFKC rewrites
full-width punctuation (every CJK sentence), superscripts (maths) and
ligatures, so "differs from NFKC" is a weak hint. What does matter is
Latin mixed with Cyrillic/Greek lookalikes inside one word, zero-width
characters inside words, bidi overrides and Unicode tag characters (which spell
hidden ASCII); those score higher, and the pattern layer sees through them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from . import fast_re
from .normalize import (
    INVISIBLE_RE,
    SCRIPT_CONFUSABLES,
    TAG_RE,
    casefold,
    has_confusable,
    has_special,
    nfkc,
)
from .verdict import Reason

LAYER = "structure"
MAX_JSON_NODES = 5000
MAX_JSON_DEPTH = 64

# Keys that only make sense when someone is trying to re-program the model.
SUSPICIOUS_KEYS = frozenset(
    [
        "system",
        "systemprompt",
        "sysprompt",
        "instructions",
        "instruction",
        "bypass",
        "override",
        "overrides",
        "jailbreak",
        "ignore",
        "ignoreprevious",
        "ignoreinstructions",
        "developermode",
        "devmode",
        "godmode",
        "sudo",
        "sudomode",
        "unrestricted",
        "nofilter",
        "disablesafety",
        "safetyoverride",
        "adminoverride",
        "newinstructions",
        "hiddeninstructions",
        "secretinstructions",
        "prompt",
        "safetyfilter",
        "safetyfilters",
        "contentfilter",
        "guardrails",
        "disablefilters",
        "nocensorship",
    ]
)
SUSPICIOUS_VALUES = frozenset(
    [
        "bypass",
        "override",
        "jailbreak",
        "jailbroken",
        "unrestricted",
        "unfiltered",
        "uncensored",
        "godmode",
        "developermode",
        "devmode",
        "dan",
        "ignoreprevious",
        "ignoreallpreviousinstructions",
    ]
)
ROLE_KEYS = frozenset(["role", "from", "sender", "author", "speaker", "persona", "mode"])
FORGED_ROLES = frozenset(["system", "developer", "root"])

_MIXED_SCRIPT_SET = SCRIPT_CONFUSABLES.replace("μ", "")  # "μm", "μs" are units
# A backslash escape (a literal \n before "Привет" in JSON or a template) is no letter of a word.
MIXED_RE = re.compile(f"(?<!\\\\)[a-z][{_MIXED_SCRIPT_SET}]|[{_MIXED_SCRIPT_SET}][a-z]")
WORD_AROUND_RE = re.compile(r"[^\W\d_]{1,40}")
ZERO_WIDTH_IN_WORD_RE = fast_re.compile(
    r"(?<=[a-zA-Z\u00c0-\u024f])[\u200b-\u200d\u2060-\u2064\ufeff\u180e]+(?=[a-zA-Z\u00c0-\u024f])"
)
SOFT_HYPHEN_RE = re.compile("\u00ad(?<=[a-zA-Z]\u00ad)(?=[a-zA-Z])")  # literal first: fast scan
BIDI_RE = re.compile("[\u202a-\u202e\u2066-\u2069]")
FLAG_TAGS_RE = re.compile("\U0001f3f4[\U000e0020-\U000e007e]{1,8}\U000e007f")
HANGUL_FILLER_RE = re.compile("[\u3164\u115f\u1160\uffa0]")
STYLED_RE = re.compile(
    "[\uff21-\uff3a\uff41-\uff5a\U0001d400-\U0001d7ff\u24b6-\u24e9\U0001f130-\U0001f189"
    "\u1d00-\u1d22]"
)
MIN_MIXED_WORD = 4  # "αx", "βy" in maths are not disguised words


def check_structure(prompt: str) -> list[Reason]:
    reasons: list[Reason] = []
    if prompt.lstrip().startswith("{"):
        reasons += check_json(prompt)
    if not prompt.isascii():
        reasons += check_unicode(prompt)
    return reasons


# --- JSON -------------------------------------------------------------------


def check_json(prompt: str) -> list[Reason]:
    duplicates: list[str] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            duplicates.extend(k for k in set(keys) if keys.count(k) > 1)
        return dict(pairs)

    try:
        data = json.loads(prompt, object_pairs_hook=pairs_hook)
    except RecursionError:
        return [
            Reason(LAYER, "structure.json_deep_nesting", 0.6, prompt[:40], "parser recursion limit")
        ]
    except json.JSONDecodeError as exc:
        return _json_error(prompt, exc)
    reasons = _json_content(data)
    if duplicates:
        # {"role": "user", "role": "system"}: parsers disagree on which one wins.
        reasons.append(
            Reason(
                LAYER,
                "structure.json_duplicate_key",
                0.5,
                ", ".join(duplicates[:5]),
                "duplicate keys",
            )
        )
    return reasons


def _json_error(prompt: str, exc: json.JSONDecodeError) -> list[Reason]:
    # An ordinary syntax error ("{name} is a placeholder…") is not suspicious;
    # a valid object followed by more text, or control characters, is odd.
    if exc.msg == "Extra data":
        tail = prompt[exc.pos : exc.pos + 80]
        return [
            Reason(LAYER, "structure.json_trailing_text", 0.3, tail, "text after a JSON object")
        ]
    if exc.msg.startswith("Invalid control character"):
        return [Reason(LAYER, "structure.json_control_char", 0.2, "", exc.msg)]
    return []


def _json_content(data: Any) -> list[Reason]:
    hits: list[str] = []
    role_forged = ""
    deep = False
    compact: dict[str, str] = {}  # keys and short values repeat: compact each once
    for depth, key, value in _walk(data):
        deep = deep or depth > MAX_JSON_DEPTH
        k = (compact.get(key) or compact.setdefault(key, _compact(key))) if key else ""
        if k in SUSPICIOUS_KEYS:
            hits.append(f"key {key!r}")
        if isinstance(value, str):
            v = compact.get(value)
            if v is None:
                v = compact[value] = _compact(value)
            if k in ROLE_KEYS and v in FORGED_ROLES:
                role_forged = f"{key}={value}"
            elif v in SUSPICIOUS_VALUES:
                hits.append(f"value {value[:20]!r}")
    reasons = []
    if hits:
        score = 1.0 - 0.65 ** len(hits)  # 1 → 0.35, 2 → 0.58, 3 → 0.73
        reasons.append(
            Reason(
                LAYER,
                "structure.json_suspicious_keys",
                round(min(score, 0.9), 3),
                "; ".join(hits[:4]),
                f"{len(hits)} suspicious keys/values",
            )
        )
    if role_forged:
        reasons.append(
            Reason(
                LAYER,
                "structure.json_role_override",
                0.55,
                role_forged,
                "message claims a privileged role",
            )
        )
    if deep:
        reasons.append(
            Reason(LAYER, "structure.json_deep_nesting", 0.4, "", f"depth > {MAX_JSON_DEPTH}")
        )
    return reasons


def _walk(data: Any) -> Iterator[tuple[int, str, Any]]:
    """Iterative walk (no recursion), capped at MAX_JSON_NODES nodes."""
    stack: list[tuple[int, str, Any]] = [(0, "", data)]
    seen = 0
    while stack and seen < MAX_JSON_NODES:
        depth, key, value = stack.pop()
        seen += 1
        yield depth, key, value
        if isinstance(value, dict):
            stack.extend((depth + 1, str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((depth + 1, key, v) for v in value)


_NON_WORD_RE = re.compile(r"[\W_]+")


def _compact(text: str) -> str:
    return _NON_WORD_RE.sub("", text.casefold())[:40]


# --- Unicode ----------------------------------------------------------------


def check_unicode(prompt: str) -> list[Reason]:
    # Tag, bidi, zero-width and filler characters are all "special": one cheap
    # scan rules the whole family out for ordinary text.
    reasons = _invisible_reasons(prompt) if has_special(prompt) else []
    # Homoglyph attacks use ordinary Cyrillic/Greek letters: no NFKC needed here.
    folded = casefold(prompt)  # the normaliser folds the same object next: one pass
    mixed = _mixed_script_words(folded) if has_confusable(folded) else []
    if mixed:
        score = 0.45 if len(mixed) == 1 else 0.75
        reasons.append(
            Reason(
                LAYER,
                "structure.mixed_script",
                score,
                " ".join(mixed[:5]),
                f"{len(mixed)} word(s) mix Latin with Cyrillic/Greek lookalikes",
            )
        )
    if nfkc(prompt) is not prompt:  # the normaliser's pass, remembered
        reasons.append(_nfkc_reason(prompt))
    return reasons


def _invisible_reasons(prompt: str) -> list[Reason]:
    reasons = []
    tags = TAG_RE.findall(FLAG_TAGS_RE.sub("", prompt)) if TAG_RE.search(prompt) else []
    if tags:
        hidden = "".join(chr(ord(c) - 0xE0000) for c in "".join(tags))
        reasons.append(
            Reason(
                LAYER,
                "structure.tag_characters",
                0.9 if len(hidden) >= 4 else 0.4,
                hidden,
                "invisible Unicode tag characters spell text",
            )
        )
    if BIDI_RE.search(prompt):
        reasons.append(Reason(LAYER, "structure.bidi_control", 0.45, "", "bidi override/isolate"))
    zw = len(ZERO_WIDTH_IN_WORD_RE.findall(prompt)) if INVISIBLE_RE.search(prompt) else 0
    if zw:
        reasons.append(
            Reason(
                LAYER,
                "structure.zero_width",
                0.35 if zw < 3 else 0.6,
                "",
                f"{zw} zero-width character(s) inside words",
            )
        )
    elif SOFT_HYPHEN_RE.search(prompt):
        reasons.append(Reason(LAYER, "structure.zero_width", 0.1, "", "soft hyphens inside words"))
    if HANGUL_FILLER_RE.search(prompt):
        reasons.append(Reason(LAYER, "structure.invisible_filler", 0.3, "", "Hangul filler"))
    return reasons


def _mixed_script_words(text: str) -> list[str]:
    words: list[str] = []
    for n, m in enumerate(MIXED_RE.finditer(text)):
        if n >= 50:
            break
        word = _word_at(text, m.start())
        if len(word) >= MIN_MIXED_WORD and word not in words:
            words.append(word)
    return words


def _word_at(text: str, pos: int) -> str:
    start = pos
    while start > 0 and pos - start < 40 and text[start - 1].isalpha():
        start -= 1
    m = WORD_AROUND_RE.match(text, start)
    return m.group() if m else ""


def _nfkc_reason(prompt: str) -> Reason:
    styled = len(STYLED_RE.findall(prompt, 0, 20_000))  # a sample is enough for a hint
    if styled >= 4:
        return Reason(
            LAYER,
            "structure.styled_letters",
            0.3,
            "",
            f"{styled} full-width/mathematical/circled letters",
        )
    # Full-width punctuation (CJK), superscripts (maths), ligatures: normal text.
    return Reason(LAYER, "structure.nfkc_changed", 0.05, "", "compatibility characters (weak hint)")
