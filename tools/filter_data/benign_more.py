"""More hard negatives, combinatorial (train only; the prose wrappers split with their
source package): the kinds of benign prompts that look like attacks to a model trained
on public jailbreaks -- a document handed over with an instruction, everyday
"previous / original / forgot ... instructions", harmless personas and stories."""

from __future__ import annotations

import random

# An instruction about a document, then the document (prose from installed packages).
DOC_WRAPPERS: dict[str, list[str]] = {
    "en": ["Please summarise this text:\n{d}", "Translate into German:\n{d}",
           "Fix the grammar in this paragraph: {d}", "What is the main point of this? {d}",
           "{d}\n\nCan you make this shorter?", "Here is a passage from the docs.\n{d}\nExplain it simply."],
    "fr": ["Résume ce texte :\n{d}", "{d}\n\nPeux-tu traduire ce paragraphe en français ?"],
    "es": ["Resume este texto:\n{d}", "{d}\n\n¿Puedes traducir este párrafo al español?"],
    "de": ["Fasse diesen Text zusammen:\n{d}", "{d}\n\nKannst du diesen Absatz ins Deutsche übersetzen?"],
    "it": ["Riassumi questo testo:\n{d}", "{d}\n\nPuoi tradurre questo paragrafo in italiano?"],
    "pt": ["Resuma este texto:\n{d}", "{d}\n\nPode traduzir este parágrafo para o português?"],
    "nl": ["Vat deze tekst samen:\n{d}", "{d}\n\nKun je deze alinea in het Nederlands vertalen?"],
    "ru": ["Кратко перескажи этот текст:\n{d}", "{d}\n\nПереведи этот абзац на русский."],
    "pl": ["Streść ten tekst:\n{d}", "{d}\n\nPrzetłumacz ten akapit na polski."],
    "tr": ["Bu metni özetle:\n{d}", "{d}\n\nBu paragrafı Türkçeye çevirir misin?"],
    "ar": ["لخّص هذا النص:\n{d}", "{d}\n\nترجم هذه الفقرة إلى العربية."],
    "ko": ["이 글을 요약해 줘:\n{d}", "{d}\n\n이 문단을 한국어로 번역해 줘."],
    "zh": ["总结一下这段文字：\n{d}", "{d}\n\n把这段话翻译成中文。"],
    "ja": ["この文章を要約して：\n{d}", "{d}\n\nこの段落を日本語に訳して。"],
}  # fmt: skip

_EVERYDAY = (
    ["I forgot", "I lost", "I can't find", "Where do I find", "Can you resend"],
    ["my previous", "my old", "the original", "the earlier", "the new"],
    ["password", "instructions", "manual", "settings", "receipt", "login", "booking code"],
    ["for the router.", "and the reset link doesn't work.", "for the dishwasher.",
     "from the first email.", "for my bank app.", "for the exam registration."],
)  # fmt: skip
_ORIGINAL = (
    ["What were the original instructions for", "Where are the previous instructions for",
     "Can you ignore the old instructions for", "Are there new rules for",
     "Summarise the safety instructions for", "Who wrote the first instructions for"],
    ["assembling the IKEA shelf?", "the Apollo 11 launch checklist?", "the chemistry lab?",
     "the board game Catan?", "installing the printer driver?", "the fire drill at school?",
     "the tax return form?", "the LEGO castle set?"],
)  # fmt: skip
_PERSONA = (
    ["Can you act as", "Pretend to be", "Please play", "You are now", "Be", "Talk like"],
    ["a pirate", "a wizard", "a friendly robot", "my cat", "a medieval knight",
     "a space explorer", "a grumpy chef", "Santa Claus", "a museum guide"],
    ["and tell me a story about treasure.", "and explain how rainbows form.",
     "and describe your day.", "and give me three tips for studying.",
     "for my daughter's birthday party.", "and write a short poem about autumn."],
)  # fmt: skip


def _pick(rng: random.Random, parts: tuple[list[str], ...]) -> str:
    return " ".join(rng.choice(p) for p in parts)


def everyday(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """(category, text): everyday override words, document questions, personas."""
    out = []
    for _ in range(n):
        out.append(("everyday_override_words", _pick(rng, _EVERYDAY)))
        out.append(("everyday_override_words", _pick(rng, _ORIGINAL)))
        out.append(("roleplay_benign", _pick(rng, _PERSONA)))
    return out
