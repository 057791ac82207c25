"""Letters styled to look like Latin ones that NFKC leaves as they are.

"ɪɢɴᴏʀᴇ ᴀʟʟ ᴘʀᴇᴠɪᴏᴜꜱ ɪɴꜱᴛʀᴜᴄᴛɪᴏɴꜱ" (small capitals), "🅸🅶🅽🅾🆁🅴" (negative squared),
"🅘🅖🅝🅞🅡🅔" (negative circled), "🇮🇬🇳🇴🇷🇪" (regional indicators) and "ꓲꓖꓠꓳꓣꓰ" (Lisu)
read as the order to a person and to a model, while NFKC, which folds full-width,
mathematical, circled and squared letters, leaves these alone: the rules saw words of no
language. The normaliser folds them to the letters they show (superscript letters reach
small capitals through NFKC: "ᶦ" is "ɪ"), so every layer reads the words.
"""

from __future__ import annotations

import re

# Small capitals (Latin script: not "another script" for the mixed-script rule). IPA writes
# some of them ("ɪ", "ʀ", "ʏ"); read as their letters, a transcription stays harmless.
SMALL_CAPITALS: dict[str, str] = dict(
    zip("ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘꞯʀꜱᴛᴜᴠᴡʏᴢ", "abcdefghijklmnopqrstuvwyz", strict=True)
)
# Cherokee (as casefold leaves it: upper case) and Lisu letters that Unicode's confusables
# (UTS #39 confusables.txt, read through confusable-homoglyphs 3.3.1) give a Latin letter
# as their look-alike ("ꓲꓖꓠꓳꓣꓰ", "ᎥᏀNᎾᏒᎬ"; Lisu "ꓲ" is the I it shows, not the "l" the
# table pairs it with). Neither script is one the filter reads.
SCRIPT_LOOKALIKES: dict[str, str] = dict(
    zip(
        "ᎪꓮᏏᏴꓐᏟꓚᏧꓒᎠꓓᎬꓰꓝᏀᏳꓖᏂᎻꓧᎥᎫꓙᏦꓗꓲᏞꓡᎷꓟꓠꓳᏢꓑᎱᎡᏒꓣᏚᏕꓢᎢꓔꓴᏙꓦᎳᏔꓪꓫᎩᎽꓬᏃꓜ",
        "aabbbccddddeefggghhhijjkkillmmnopprrrrsssttuvvwwwxyyyzz",
        strict=True,
    )
)
# Negative circled, negative squared and regional-indicator capitals A-Z, in the emoji blocks
# (the squared ones, U+1F130..., NFKC folds already). A flag ("🇫🇷") reads as its two letters.
_ASTRAL_BASES = (0x1F150, 0x1F170, 0x1F1E6)
ASTRAL_LETTERS: dict[str, str] = {
    chr(base + k): chr(ord("a") + k) for base in _ASTRAL_BASES for k in range(26)
}
_ASTRAL_LETTER_RE = re.compile(
    "[" + "".join(f"{chr(base)}-{chr(base + 25)}" for base in _ASTRAL_BASES) + "]"
)


def unstyled_astral(text: str) -> str:
    """``text`` with the emoji blocks' letters as plain lowercase letters (one scan in C;
    the normaliser runs it only on text with a special character: ``has_special``)."""
    return _ASTRAL_LETTER_RE.sub(lambda m: ASTRAL_LETTERS[m.group()], text)
