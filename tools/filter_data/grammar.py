"""Compositional grammars: the attack vocabulary of each language, systematically.

The hand-written families (``attacks``/``benign``) give whole phrasings; these
grammars give the *words* of each concept in every language (verbs of
discarding, the "previous instructions" object, reveal verbs, persona and
"no limits" phrases) combined freely, and the same words in benign frames
("follow the instructions in the manual", "the rules of chess"), so that a
model learns concepts rather than sentences. Grammar records are train-only:
dev and test are the held-out hand-written phrasings.

Slot lists are ``|``-separated; ``{X}`` in a frame picks one item of slot X.
"""

from __future__ import annotations

import random
import re

from .grammar_asia import ASIA
from .grammar_europe import EUROPE
from .grammar_extensions import extend

# Languages in the order of attacks.LANGS.
G: dict[str, dict[str, str | list[str]]] = {**EUROPE, **ASIA}

_SLOT_RE = re.compile(r"\{([A-Z]+)\}")


def realise(frame: str, lang: str, rng: random.Random, payload: str, name: str) -> str:
    g = G[lang]

    def pick(m: re.Match[str]) -> str:
        slot = m.group(1)
        if slot == "p":
            return payload
        options = g[slot]
        assert isinstance(options, str)
        return rng.choice(options.split("|"))

    if "{QA}" in frame:  # a quoted override phrase, asked about
        frame = frame.replace("{QA}", g["frames"][0].rstrip(".。"))
    text = _SLOT_RE.sub(pick, frame).replace("{p}", payload).replace("{name}", name)
    return re.sub(r"\s+([.,;:!?。])", r"\1", re.sub(r" {2,}", " ", text)).strip()


extend(G)
