"""What an HTML renderer shows of a text: its tags and comments out, its character
references decoded.

"<b>disregard</b> <i>all</i> <u>previous</u> instructions", "dis<span></span>regard",
"dis<!-- -->regard", "disregard&nbsp;all&#32;previous" and "&#100;&#105;&#115;regard" read
as the plain order to a person and to a model, while the rules saw tag, comment and entity
names between the words. The decoding layer (``encoded.decoded_texts``) judges this view as
one more decoded text, named "html", when a text carries a tag other than a layout block
(``<b>``, ``<span>``, ``<br>``, an invented ``<x>``), a comment or a character reference. A page laid out in blocks only (``<div>``, ``<p>``) is left to the
markup rules: it does not pay for the view, unless three blocks in a row hold a word or two
each (a sentence cut up into blocks).
"""

from __future__ import annotations

import html
import re

# An entity or numeric character reference ("&nbsp;", "&#105;", "&#x69;").
_REFERENCE_RE = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_TAG_RE = re.compile(r"</?([A-Za-z][A-Za-z0-9-]{0,31})(?:\s[^<>]{0,500})?/?>")
# The blocks a page is laid out in: rendered as a break between words, and no reason on
# their own to render a text (the bench's page is made of them).
_LAYOUT = frozenset(
    {"p", "div", "li", "ul", "ol", "tr", "td", "th", "table", "pre", "title", "option"}
    | {"h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "header", "footer"}
    | {"blockquote"}
)
# Rendered as a break between words; every other tag joins what it separates. A line
# break between the words of an order ("ignore<br>all<br>...") renders the text.
_BREAKING = _LAYOUT | {"br", "hr"}
# A tag that is not a layout block (one regex pass, whatever the number of tags).
_NOT_LAYOUT_TAG_RE = re.compile(
    rf"</?(?=[A-Za-z])(?!(?:{'|'.join(sorted(_LAYOUT))})\b)[A-Za-z][A-Za-z0-9-]{{0,31}}(?:\s[^<>]{{0,500}})?/?>",
    re.IGNORECASE,
)
# ...unless they cut a sentence up: three blocks in a row of a word or two each
# ("<p>ignore</p><p>all</p><p>previous</p>..."; a table row of short cells renders too).
_BLOCK = (
    r"<(?P<tag>p|div|li|td|th|h[1-6]|pre|blockquote)\b[^<>]{0,200}>\s*[^<>\s]{1,40}"
    r"(?:\s[^<>\s]{1,40})?\s*</(?P=tag)\s*>\s*"
)
# (the first block written out: a pattern that opens with "<" is scanned for it in C)
_CUT_INTO_BLOCKS_RE = re.compile(
    _BLOCK.replace("?P<tag>", "?P<first>").replace("?P=tag", "?P=first") + f"(?:{_BLOCK}){{2}}",
    re.IGNORECASE,
)
MIN_TEXT = 8
KIND = "html"  # the decoded kind its rules' reasons are named by ("...@html")


def rendered(text: str) -> str | None:
    """``text`` as rendered, when it has an inline tag, a comment or a character reference
    and rendering changes it (else None)."""
    if "&" not in text and "<" not in text:
        return None
    comments = "<!--" in text and "-->" in text
    if not (
        comments
        or _REFERENCE_RE.search(text)
        or _NOT_LAYOUT_TAG_RE.search(text)
        or _CUT_INTO_BLOCKS_RE.search(text)
    ):
        return None
    shown = html.unescape(_TAG_RE.sub(_tag_text, _without_comments(text) if comments else text))
    return shown if shown != text and len(shown.strip()) >= MIN_TEXT else None


def _without_comments(text: str) -> str:
    """Each ``<!--`` up to the next ``-->`` removed; one left open stays (no scan back)."""
    pieces = text.split("<!--")
    kept = [pieces[0]]
    for piece in pieces[1:]:
        end = piece.find("-->")
        kept.append(piece[end + 3 :] if end >= 0 else "<!--" + piece)
    return "".join(kept)


def _tag_text(tag: re.Match[str]) -> str:
    return " " if tag.group(1).lower() in _BREAKING else ""
