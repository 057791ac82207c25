"""Hidden HTML and dangerous link schemes in Markdown/HTML.

Regexes here are anchored on a literal (``<``, ``](``, an attribute name or a
CSS property) and every gap is bounded, and the number of places examined is
capped, so a 100 KB adversarial input costs a bounded amount of work.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import unquote

MAX_SITES = 32  # places examined per prompt, per check (content is matched anyway)
STRONG = 0.9
TAG_LOOKBACK = 500
CONTENT_MAX = 600

# Markup that hides its content from a human reader but not from the model.
# (keyword that must be present, pattern starting with that literal)
_HIDDEN_SRC = (
    ("hidden", r"hidden\b"),
    ("display", r"display\s{0,5}:\s{0,5}none"),
    ("visibility", r"visibility\s{0,5}:\s{0,5}(?:hidden|collapse)"),
    ("opacity", r"opacity\s{0,5}:\s{0,5}0(?:\.0{1,5})?(?![.\d])"),
    ("font-size", r"font-size\s{0,5}:\s{0,5}0(?![.\d])"),
    ("height", r"height\s{0,5}:\s{0,5}0(?![.\d])"),
    ("color", r"color\s{0,5}:\s{0,5}(?:white|#fff(?:fff)?\b|transparent)"),
    ("indent", r"indent\s{0,5}:\s{0,5}-\d{3,}"),
    ("left", r"left\s{0,5}:\s{0,5}-\d{3,}"),
    ("clip", r"clip\s{0,5}:\s{0,5}rect\(\s{0,5}0"),
)
HIDDEN_PATTERNS = tuple((k, re.compile(p)) for k, p in _HIDDEN_SRC)

# Words that show hidden text is talking to the model, not styling a page.
AI_WORDS = frozenset(
    [
        "ai",
        "ia",
        "ki",
        "llm",
        "gpt",
        "chatgpt",
        "claude",
        "gemini",
        "assistant",
        "assistente",
        "asistente",
        "assistent",
        "chatbot",
        "bot",
        "model",
        "modèle",
        "modelo",
        "modell",
        "modello",
        "agent",
        "instructions",
        "instruction",
        "instrucciones",
        "istruzioni",
        "anweisungen",
        "consignes",
        "prompt",
        "ignore",
        "ignorez",
        "ignora",
        "ignoriere",
        "disregard",
        "system",
        "système",
        "sistema",
        "summary",
        "summarize",
        "summarise",
        "résumé",
        "respond",
        "reply",
        "answer",
        "réponds",
        "responde",
        "antworte",
        "rispondi",
    ]
)
AI_WORDS_CJK = (
    "人工智能",
    "助手",
    "模型",
    "指令",
    "忽略",
    "系统",
    "提示",
    "アシスタント",
    "指示",
    "無視",
    "システム",
    "ai",
)

_AI_WORDS_WIDE = tuple(w for w in AI_WORDS_CJK if not w.isascii())  # only in non-ASCII text

LINK_RE = re.compile(
    r"\]\s{0,5}\(\s{0,5}<?"  # Markdown inline link/image target
    r"|^\s{0,3}\[[^\]\n]{1,100}\]:\s{0,5}"  # Markdown reference definition
    r"|<(?=\s{0,3}[jvd])"  # autolink <javascript:...>
    r"|\b(?:href|src|action|formaction|xlink:href)\s{0,5}=\s{0,5}[\"'`]?",
    re.M,
)
_NON_WORD_RE = re.compile(r"\W+")
_SCHEME_JUNK = re.compile(r"[\s\x00-\x1f\\]+")
SAFE_DATA_IMAGE = (
    "data:image/png",
    "data:image/jpeg",
    "data:image/jpg",
    "data:image/gif",
    "data:image/webp",
)


@dataclass(frozen=True, slots=True)
class MarkupHit:
    rule: str
    score: float
    span: str
    detail: str


def hidden_html(folded: str) -> list[MarkupHit]:
    if "<" not in folded:
        return []
    hits: list[MarkupHit] = []
    sites = 0
    for keyword, pattern in HIDDEN_PATTERNS:
        if keyword not in folded:
            continue
        for m in pattern.finditer(folded):
            sites += 1
            hit = _hidden_element(folded, m)
            if hit:
                hits.append(hit)
                if hit.score >= STRONG:
                    return [hit]  # one strong reason is enough
            if sites >= MAX_SITES:
                return _best(hits)
    return _best(hits)


def _hidden_element(text: str, m: re.Match[str]) -> MarkupHit | None:
    # The keyword must sit inside a tag: a "<" before it with no ">" in between.
    lt = text.rfind("<", max(0, m.start() - TAG_LOOKBACK), m.start())
    if lt < 0 or text.rfind(">", lt, m.start()) >= 0:
        return None
    gt = text.find(">", m.end(), m.end() + TAG_LOOKBACK)
    if gt < 0:
        return None
    content = _element_text(text, gt + 1)
    score, detail = _content_score(content)
    return MarkupHit("patterns.hidden_html", score, text[lt : gt + 1] + content, detail)


def _element_text(text: str, start: int) -> str:
    end = text.find("</", start, start + CONTENT_MAX)
    return text[start : end if end >= 0 else start + CONTENT_MAX]


def _content_score(content: str) -> tuple[float, str]:
    words = set(_NON_WORD_RE.sub(" ", content).split())
    if words & AI_WORDS or (
        not content.isascii() and any(map(content.__contains__, _AI_WORDS_WIDE))
    ):
        return 0.9, "hidden text addressed to the model"
    if len(words) >= 4:
        return 0.45, "hidden element with text"
    return 0.25, "hidden element"


def html_comments(folded: str) -> list[MarkupHit]:
    """``<!-- note to the AI: ... -->``: comments are invisible once rendered."""
    hits: list[MarkupHit] = []
    pos = folded.find("<!--")
    while pos >= 0 and len(hits) < MAX_SITES:
        end = folded.find("-->", pos + 4, pos + 4 + CONTENT_MAX)
        body = folded[pos + 4 : end if end >= 0 else pos + 4 + CONTENT_MAX]
        score, _ = _content_score(body)
        if score >= 0.9:
            hits.append(
                MarkupHit(
                    "patterns.hidden_html", 0.85, "<!--" + body, "comment addressed to the model"
                )
            )
        pos = folded.find("<!--", pos + 4)
    return _best(hits)


def dangerous_links(folded: str) -> list[MarkupHit]:
    if not any(k in folded for k in ("script", "data", "&", "%")):
        return []
    hits: list[MarkupHit] = []
    for n, m in enumerate(LINK_RE.finditer(folded)):
        if n >= MAX_SITES:
            break
        hit = _classify_target(m, folded[m.end() : m.end() + 80])
        if hit:
            hits.append(hit)
    return _best(hits)


def _classify_target(m: re.Match[str], target: str) -> MarkupHit | None:
    url = _decode_url(target)
    markdown = m.group().lstrip().startswith(("]", "["))
    kind = "markdown" if markdown else "html"
    span = m.group() + target[:60]
    if url.startswith(("javascript:", "vbscript:", "livescript:")):
        if not markdown and url.startswith(("javascript:void(0)", "javascript:;")):
            return MarkupHit("patterns.script_link", 0.2, span, f"{kind} no-op javascript: link")
        return MarkupHit(
            "patterns.script_link", 0.95 if markdown else 0.6, span, f"{kind} {url[:10]}"
        )
    if url.startswith("data:"):
        if url.startswith(SAFE_DATA_IMAGE):
            return MarkupHit("patterns.data_link", 0.4, span, f"{kind} raster data: image")
        return MarkupHit("patterns.data_link", 0.9 if markdown else 0.6, span, f"{kind} data: url")
    return None


def _decode_url(target: str) -> str:
    # Undo the usual disguises: entities (&#106;, &colon;), %-escapes, tabs/newlines.
    url = _SCHEME_JUNK.sub("", html.unescape(unquote(html.unescape(target))))
    return url.casefold()


def _best(hits: list[MarkupHit]) -> list[MarkupHit]:
    """Keep the strongest hit per rule: one reason is enough to explain."""
    best: dict[str, MarkupHit] = {}
    for h in hits:
        if h.rule not in best or h.score > best[h.rule].score:
            best[h.rule] = h
    return list(best.values())
