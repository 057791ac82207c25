"""Whether a follow-up prompt carries out what an earlier prompt quoted (the behaviour
layer keeps an allowed question's quotes talked about, not said, unless a later prompt
orders them)."""

from __future__ import annotations

from . import fast_re
from .quoting import QUOTE_RE, TRANSLATE_RE, casefold_outside, orders_reader

# "Your turn", "try it", "à toi": a follow-up that is nothing but a go-ahead (a few filler
# words around it), so "try this recipe" or "now you know why" are not one. Not "go ahead",
# "please do", "yes please": the answers to the model's own offers ("shall I list more
# examples?"), which the history does not hold.
_FILLER = (
    r"(?:ok(?:ay)?|so|now|then|and|well|alright|go on|please|yourself|alors|maintenant|bon|et"
    r"|ahora|pues|y|jetzt|also|und|dann|ora|allora|e|agora|então|nu|dus|en|теперь|ну|а|и|тогда"
    r"|teraz|to|şimdi|peki|الآن|إذن|이제|그럼|那|现在|好|じゃあ|では|さあ|今度は)"
)
GO_AHEAD_RE = fast_re.compile(
    r"(?:" + _FILLER + r"[\W_]+)*"
    r"(?:your turn|now you|you try|try it|try that|try this|act accordingly|do as it says"
    r"|à (?:toi|ton tour)|essaie(?:-le)?|te toca|pru[eé]balo|int[eé]ntalo|du bist dran"
    r"|probier(?:s| es)|tocca a te|provaci|prova tu|sua vez|tenta(?: você)?|jouw beurt"
    r"|probeer (?:het|jij)|sıra sende|dene|твоя очередь|теперь ты|попробуй|twoja kolej"
    r"|teraz ty|spróbuj|دورك|جرب|네 차례|이제 너|해 ?봐|轮到你|你试试|你来|あなたの番|試してみて"
    r"|やってみて)"
    r"(?:[\W_]+" + _FILLER + r")*[\W_]*"
)


TRANSLATE_IT_MAX_CHARS = 80  # "now translate it into English" (a longer one has its own text)


def orders_quoted(raw: str) -> bool:
    """Whether a follow-up prompt says to carry out what an earlier prompt quoted: words of
    doing ("do it", "fais-le", "照做"), a scene aimed at the model, a bare "your turn", or a
    short translation with nothing of its own to translate ("translate it"). Read by the
    behaviour layer: the quotes of an allowed question stay talked about, not said, in the
    rejoined history unless a later prompt orders them."""
    folded = casefold_outside(QUOTE_RE.sub(" ", raw))
    if orders_reader(folded):
        return True
    if GO_AHEAD_RE.fullmatch(folded.strip()):
        return True
    own_object = QUOTE_RE.search(raw) or ":" in raw or "：" in raw
    return (
        len(raw) <= TRANSLATE_IT_MAX_CHARS and not own_object and bool(TRANSLATE_RE.search(folded))
    )
