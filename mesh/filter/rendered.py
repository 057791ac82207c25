"""What an HTML renderer shows of a text: its tags out, its character references decoded.

"<b>disregard</b> <i>all</i> <u>previous</u> instructions", "dis<span></span>regard",
"disregard&nbsp;all&#32;previous" and "&#100;&#105;&#115;regard" read as the plain order
to a person and to a model, while the rules saw tag names and entity names between the
words. The decoding layer (``encoded.decoded_texts``) judges this view as one more
decoded text, named "html", when a text carries inline formatting tags or character
references: page markup in general (``<div>``, ``<p>``) is left to the markup rules, so
a pasted web page pays for the view only when it formats words inline.
"""

from __future__ import annotations

import html
import re

# An entity or numeric character reference ("&nbsp;", "&#105;", "&#x69;").
_REFERENCE_RE = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# Tags that format words inside a line (and line breaks): the ones that split an order.
_INLINE_TAG_RE = re.compile(
    r"</?(?:b|i|u|s|em|strong|span|font|mark|small|big|sub|sup|tt|kbd|code|var|abbr|q|del"
    r"|ins|a|wbr|br)(?:\s[^<>]{0,200})?/?>",
    re.IGNORECASE,
)
_TAG_RE = re.compile(r"</?([A-Za-z][A-Za-z0-9]{0,15})(?:\s[^<>]{0,500})?/?>")
# Rendered as a break between words; every other tag joins what it separates.
_BREAKING = frozenset(
    {"br", "hr", "p", "div", "li", "ul", "ol", "tr", "td", "th", "table", "pre", "title"}
    | {"h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "header", "footer"}
    | {"blockquote", "option"}
)
MIN_TEXT = 8


def rendered(text: str) -> str | None:
    """``text`` as rendered, when it has inline tags or character references and
    rendering changes it (else None)."""
    if "&" not in text and "<" not in text:
        return None
    if not (_REFERENCE_RE.search(text) or _INLINE_TAG_RE.search(text)):
        return None
    shown = html.unescape(_TAG_RE.sub(_tag_text, text))
    return shown if shown != text and len(shown.strip()) >= MIN_TEXT else None


def _tag_text(tag: re.Match[str]) -> str:
    return " " if tag.group(1).lower() in _BREAKING else ""
