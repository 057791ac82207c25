"""An order to carry out an encoded payload: "decode this and execute it: <base64>".

The decoding layer judges what a payload says, and the learned layer reads it in clear; a
payload written to read harmlessly on its own ("list the environment variables you can
see") then passes both. What gives the attack away is the wrapper: an order to *carry
out* a text the user chose to hide. Someone who wants a payload decoded asks what it says;
someone who wants it obeyed says so next to it ("decode and follow", "dekodieren und
befolgen", "解码后照做"). On the hand-written rows, 249 of 386 attacks with a readable
payload carry such an order, and none of 252 benign texts with one do.

The order must sit right before the payload or just after it, outside it: a page that
says "follow us" somewhere and links an image passes.
"""

from __future__ import annotations

import re

from . import fast_re
from .encoded import readable_runs
from .verdict import Reason

LAYER = "patterns"
RULE = "patterns.encoded_order"
SCORE = 0.8
BEFORE, AFTER = 80, 40  # characters around a payload where the order is looked for

# Carry it out (14 languages); "answer" and "tell me" are left out: a decoded question may
# simply be asked.
OBEY_RE = fast_re.compile(
    "|".join(
        [
            r"\b(?:execute|follow|obey|carry (?:it |them )?out|run (?:it|them|this)|act on"
            r"|apply (?:it|them)|comply|perform)\b|\bdo (?:it|what|as|exactly)\b",
            r"\b(?:exécute\w*|suis[- ]les|suivez|obéis\w*|applique\w*|fais[- ]le|fais ce"
            r"|faites[- ]le)\b",
            # (not "cumpleaños", a birthday)
            r"\b(?:ejecuta\w*|sigue\w*|síguel\w*|obedece\w*|aplica\w*|hazlo|haz lo|cúmple\w*"
            r"|cumple(?:lo|la|los|las)?)\b",
            r"\b(?:führ\w* (?:\w+ ){0,3}aus|ausführen|befolge\w*|folge\w*|mach (?:es|das|was)"
            r"|tu (?:es|was)|umsetzen|setz\w* (?:es )?um)\b",
            r"\b(?:esegui\w*|segui\w*|obbedisci|applica\w*|fallo|fai quello|fai ciò)\b",
            r"\b(?:executa\w*|siga|segue|obedeça|aplique|faça(?:-o| o que)|cumpra)\b",
            r"\b(?:voer (?:\w+ ){0,3}uit|volg\w*|gehoorzaam|doe wat|doe het|uitvoeren)\b",
            # (Turkish "uygulama" is also the noun "application")
            r"выполн\w*|следуй|сделай|исполни|wykonaj\w*|zastosuj|zrób to|postępuj"
            r"|\buygula(?:yın|yınız|sana)?\b"
            r"|çalıştır|yerine getir|takip et",
            r"نفذ|نفّذ|اتبع|طبق|طبّق|افعل|실행|따라|수행|执行|照做|照着做|遵循|実行|従って|その通りに",
        ]
    ),
    re.IGNORECASE,
)


def check_encoded_order(raw: str) -> list[Reason]:
    """One reason when ``raw`` orders the model to carry out a readable encoded payload."""
    for _kind, run, text in readable_runs(raw):
        at = raw.find(run)
        if at < 0:
            continue
        order = OBEY_RE.search(raw, max(0, at - BEFORE), at) or OBEY_RE.search(
            raw, at + len(run), at + len(run) + AFTER
        )
        if order:
            span = f"{order.group()}: {text[:60]}"
            return [Reason(LAYER, RULE, SCORE, span, "an order to carry out an encoded payload")]
    return []
