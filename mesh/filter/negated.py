"""Negated orders of doing: "do not execute anything, just explain", "ничего не выполняй",
"什么都不要执行", "실행하지 말고". A question about a quoted attack often says so, and the
quote policy's words of doing ("execute", "выполни", "执行", "실행") must not read it as an
order to carry the quote out. Read on casefolded text; what matches is removed before the
words of doing are looked for, so "don't explain it, do it" still orders."""

from __future__ import annotations

import re

from . import fast_re

NEGATED_DOING_RE = fast_re.compile(
    "|".join(
        [
            # "do not / don't / never (just) execute it", "without following it"
            r"(?<!why )\b(?:do not|don't|dont|never|not|no need to|without)\s+(?:\w+\s+){0,2}?"
            r"(?:do(?:ing)?|follow\w*|obey\w*|execut\w*|run(?:s|ning)?\b|compl[yi]\w*|carry\w*|act(?:s|ing)?\b"
            r"|apply\w*)(?:\s+(?:it|that|this|them|anything|out|on))*\b",
            # "I'm not asking you to do it", "je ne te demande pas de le faire", "non ti chiedo
            # di farlo", "não quero que você faça": not asking is not ordering
            r"\b(?:not|n't|never)\s+(?:(?:asking|telling|want(?:ing)?|need(?:ing)?|expect(?:ing)?|you"
            r"|to|me|i|am|going|trying|meant|supposed)\s+){1,4}(?:do|follow|obey|execute|run|apply"
            r"|comply|carry|use|try)\w*(?:\s+(?:it|that|this|them|out))*\b",
            r"\bne\s+(?:te|vous)\s+demande\s+pas\s+de\s+(?:le\s+|l'|la\s+)?(?:faire|exécuter|suivre"
            r"|appliquer)|\bne\s+veux\s+pas\s+que\s+(?:tu|vous)\s+(?:le\s+|l')?(?:fasses|fassiez"
            r"|exécutes|suives|appliques)",
            r"\bno\s+(?:te|le)\s+pido\s+que\s+(?:lo\s+)?(?:hagas|haga|ejecutes|sigas)"
            r"|\bno\s+quiero\s+que\s+(?:lo\s+)?(?:hagas|ejecutes|sigas)",
            r"\bnon\s+ti\s+chiedo\s+di\s+(?:farlo|eseguirlo|seguirlo|fare|eseguire)"
            r"|\bnon\s+voglio\s+che\s+tu\s+(?:lo\s+)?(?:faccia|esegua|segua)",
            r"\bnão\s+(?:quero|peço|estou\s+pedindo)\s+(?:que|para)\s+(?:você\s+)?(?:o\s+|a\s+)?"
            r"(?:faça|fazer|execute|executar|siga|seguir)",
            r"\bnicht,?\s+dass\s+du\s+(?:es|das)\s+(?:tust|machst|ausführst|befolgst)"
            r"|\bvraag\s+(?:je|jou|u)\s+niet\s+om\s+(?:het\s+)?(?:te\s+doen|uit\s+te\s+voeren|te\s+volgen)",
            r"\bne\s+(?:l'|le\s+|la\s+|les\s+|rien\s+)?(?:exécut|fai|suis|suiv|obéi|appliqu)\w*"
            r"\s+(?:pas|rien|jamais)\b|\bn'(?:exécut|obéi|appliqu)\w*\s+(?:pas|rien|jamais)\b"
            r"|\bsans\s+(?:l'|le\s+|la\s+|les\s+|rien\s+)?(?:exécut|fair|suivr|obéir|appliqu)\w*",
            r"\bno\s+(?:lo\s+|la\s+|los\s+|las\s+|nada\s+)?(?:ejecut|hag|sig|obedezc|apliqu)\w*"
            r"|\bsin\s+(?:ejecutar|hacer|seguir|aplicar|obedecer)\w*",
            r"\bnicht\s+(?:\w+\s+)?(?:ausführ|auszuführ|befolg|anwend|anzuwend|mach|tun)\w*"
            r"|\bführe?\s+(?:es\s+|das\s+|ihn\s+|sie\s+|bitte\s+)?(?:nicht|nichts)\s+aus\b"
            r"|\bohne\s+(?:es\s+|das\s+|sie\s+|ihn\s+)?(?:auszuführen|zu befolgen|anzuwenden)"
            r"|\b(?:befolge|mach)\s+(?:es|das|sie|ihn)\s+nicht\b",
            r"\bnon\s+(?:lo\s+|la\s+|li\s+|le\s+)?(?:esegu|far|segu|obbed|applic)\w*"
            r"|\bsenza\s+(?:esegu|far|segu|applic)\w*",
            r"\bnão\s+(?:o\s+|a\s+)?(?:execut|faç|fac|sig|obedeç|apliqu)\w*"
            r"|\bsem\s+(?:executar|fazer|seguir|aplicar)\w*",
            r"\bniet\s+(?:uit)?(?:voer|volg|doen|toepass)\w*"
            r"|\bvoer\s+(?:het\s+|dit\s+|dat\s+)?(?:niet|niets)\s+uit\b|\bzonder\s+(?:het\s+)?uit\s?te\s+voeren",
            r"\bне\s+(?:надо\s+|нужно\s+|стоит\s+|следует\s+)?(?:выполн|исполн|делай|делать|следуй|подчин)\w*"
            r"|\bничего\s+не\s+(?:выполн|исполн|делай|делать)\w*"
            r"|\b(?:выполнять|исполнять|делать)\s+(?:ничего\s+|это\s+)?не\s+(?:надо|нужно|стоит)\b"
            r"|\bбез\s+выполнени\w*",
            r"\b(?:nic\s+)?nie\s+(?:wykonuj|wykonywa|rób|stosuj|słuchaj|zrób|wykonaj)\w*"
            r"|\bbez\s+wykonywania\b",
            # (not Turkish "uygulama" alone: "do not apply" and the noun "application" alike;
            # "uygulamana gerek yok" is "no need to apply it")
            r"\b(?:uygula|yap|çalıştır)\w*\s+gerek\s+yok\b",
            r"(?:لا|دون|بدون)\s+(?:أي\s+)?\S*(?:نفذ|نفّذ|تنفيذ|طبق|تطبيق|تتبع|تفعل)\S*",
            r"(?:실행|따르|따라)[가-힣]*(?:\s[가-힣]+)?\s?(?:말|마|않)",
            r"(?:不需要|不需|不要|别|別|不用|无需|無需|不必|切勿|请勿|請勿|勿)(?:你|您)?(?:去)?(?:执行|執行|照做|照着做|遵守|服从|服從)"
            r"|(?:什么|什麼|任何)(?:东西|東西)?(?:都|也)?(?:不要|别|別|不用)(?:执行|執行|做)",
            r"実行(?:は|を|も)?(?:せず|しない|しなくて|しません|禁止)|従わ(?:ない|ず)",
        ]
    )
)


# Words that open an exception ("except", "sauf", "außer", "除了"): Latin and Cyrillic
# script as whole words, the others as they stand. Read here and by ``reported`` (a ban
# with an exception orders the exception).
EXCEPT_WORDS = (
    r"except|other than|apart from|sauf|hormis|excepto|salvo|außer|ausgenommen|tranne|eccetto"
    r"|exceto|behalve|кроме|за исключением|oprócz|dışında|haricinde"
)
EXCEPT_WORDS_UNSPACED = r"إلا|ما عدا|باستثناء|제외|빼고|除了|以外|を除いて"
# "Do not execute anything except this: '…'" orders what follows: not a negation.
_EXCEPT_RE = re.compile(
    rf"\W{{0,3}}(?:\w+\W+){{0,2}}?(?:{EXCEPT_WORDS}|but|save|besides|menos|poza)\b"
    rf"|\W{{0,3}}(?:{EXCEPT_WORDS_UNSPACED}|除去|のほか)",
)


def without_negated(folded: str) -> str:
    """``folded`` with its negated orders of doing blanked out."""

    def blank(m: re.Match[str]) -> str:
        return m.group() if _EXCEPT_RE.match(folded, m.end()) else " "

    return NEGATED_DOING_RE.sub(blank, folded)
