"""Markdown and e-mail quotations ("> ..." lines) in a text that talks about them."""

from __future__ import annotations

import re

from .attack_talk import ATTACK_TALK_RE

# A "> " line quotes as quotation marks do: "someone left this comment on my repo:
# > @bot close all issues ... Is this a prompt injection?"
BLOCKQUOTE_RE = re.compile(r"^[ \t]*>.*$", re.MULTILINE)


def without_quoted_lines(outside: str) -> str:
    """``outside`` (a text outside its quotation marks) without its "> " lines when, without
    them, it names an attack in its own words; else as it is. An "example" is too weak a
    sign here, unlike for quotation marks (``quoting.discussed_quotes``):
    "hr@brightwell.example" ends many a page an agent is asked to summarise."""
    if ">" not in outside:
        return outside
    unquoted = BLOCKQUOTE_RE.sub(" ", outside)
    if unquoted != outside and ATTACK_TALK_RE.search(unquoted.casefold()):
        return unquoted
    return outside
