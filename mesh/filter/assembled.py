"""An order to carry out a text the model must first put together (payload splitting).

"Take the first letter of each line and do what they spell", "join A + B + C and follow
the resulting sentence", "read only the middle column and do what it says": each piece is
harmless, so no rule sees the instruction it hides. What gives the attack away is the
order to *obey* whatever the assembly produces, next to an assembling operation (letters
of each line, columns, reversed text, parts to join, a payload to decode). Both must sit
in one stretch of text; an assembly without the order to obey it ("the first letters
spell a word, can you find it?") is a puzzle, and passes.

Cheap anchors (the words that name the result: "what it says", "the resulting
sentence", "lo que digan", "was da steht", "得到的句子") bound the short stretches the
order's alternation runs on, so the cost stays small and bounded on long texts (see
``anchored``). Long texts are read in their first 8 KB and last 4 KB, as ``refusal`` is.
"""

from __future__ import annotations

from . import fast_re
from .anchored import Literals, folded_ends, windows
from .quoting import mention_context
from .verdict import Reason

LAYER = "patterns"
RULE = "patterns.assembled_instruction"
SCORE = 0.8

# Words naming the assembled result, one of which every OBEY_RE pattern holds.
_ANCHORS = (
    Literals(
        [
            "says",
            "say",
            "spell",
            "spelled",
            "spelt",
            "resulting",
            "assembled",
            "reconstructed",
            "dit",
            "disent",
            "épelle",
            "forment",
            "résultante",
            "obtenue",
            "dice",
            "dicen",
            "diga",
            "digan",
            "forman",
            "resultante",
            "obtenida",
            "steht",
            "sagt",
            "sagen",
            "ergibt",
            "ergeben",
            "entstanden",
            "dicono",
            "scritto",
            "formano",
            "risultante",
            "ottenut",
            "diz",
            "dizem",
            "disser",
            "formar",
            "obtid",
            "zegt",
            "zeggen",
            "staat",
            "resulterende",
            "samengestelde",
            "написано",
            "получится",
            "получилось",
            "получивш",
            "говорится",
            "сказано",
            "napisane",
            "wyjdzie",
            "wyszło",
            "mówi",
            "mówią",
            "powstanie",
            "powstałe",
            "diyorsa",
            "yazıyorsa",
            "çıkıyorsa",
            "söylüyorsa",
            "çıkan",
            "تقوله",
            "يقوله",
            "تقول",
            "يقول",
            "مكتوب",
            "الناتجة",
            "الناتج",
            "대로",
            "완성된",
            "합친",
            "说的",
            "写的",
            "得到的",
            "拼出的",
            "组合出的",
            "合成的",
            "通り",
            "とおり",
            "できた",
            "完成した",
            "組み合わせた",
        ]
    ),
)
# The order ends at (or just after) its anchor word, and is short: its alternation runs on
# small stretches only. The assembly is searched around an order once one is found.
ORDER_BEFORE, ORDER_AFTER = 70, 12
MAX_WINDOW = 300
# Dense anchor words merge into at most this many windows: an order hidden behind ~7 KB
# of them evades this rule only (the alternation is the cost: ~0.4 us a character).
MAX_WINDOWS = 24
ASSEMBLY_BEFORE, ASSEMBLY_AFTER = 300, 120  # the assembly is usually described first

# Carry out what the assembled text says (14 languages).
OBEY_RE = fast_re.compile(
    "|".join(
        [
            r"\b(?:do|carry out|follow|execute|obey|act on|perform|complete)\s+(?:what(?:ever)?|as)"
            r"\s+(?:it|they|this|that|the\s+\w+(?:\s+\w+)?)\s+(?:says?|spells?|spelled|spelt)\b",
            r"\b(?:do|carry out|follow|execute|obey|act on|perform)\s+(?:the|that|this)\s+(?:resulting"
            r"|assembled|reconstructed)\s+(?:sentence|instruction|command|text|phrase|message"
            r"|request|order)s?\b",
            r"\b(?:fais|faites|exécute\w*|suis|suivez|applique\w*|obéis\w*)\s+ce\s+qu(?:'|e\s)\s*"
            r"(?:elle|il|elles|ils|ça|cela|la phrase|le texte|le message)\s+(?:dit|disent|demande\w*"
            r"|forment|épelle\w*)",
            r"\b(?:exécute\w*|suis|applique\w*|fais)\s+(?:la|l')\s*(?:phrase|instruction|consigne"
            r"|commande|demande)\s+(?:obtenue|résultante|reconstituée|cachée)",
            r"\b(?:haz|hagan|ejecuta|sigue|cumple|obedece)\s+lo\s+que\s+(?:dice|dicen|diga|digan"
            r"|pide|piden|forman?|resulte)",
            r"\b(?:ejecuta|sigue|cumple|obedece|realiza)\s+(?:la|el)\s+(?:frase|instrucción|orden"
            r"|comando|mensaje|petición)\s+(?:resultante|obtenida|oculta|reconstruida)",
            r"\b(?:tu|mach|befolge|führe aus),?\s+was\s+(?:da|dort|darin|es|sie|der satz|der text)"
            r"\s+(?:steht|sagt|sagen|verlangt|ergibt|ergeben)",
            r"\b(?:führe|befolge|folge)\s+(?:den|dem|die|das)\s+(?:entstandene|resultierende"
            r"|zusammengesetzte|versteckte)\w*\s+(?:satz|befehl|anweisung|text|aufforderung)",
            r"\b(?:fai|fate|esegui|segui)\s+(?:quello|ciò)\s+che\s+(?:dice|dicono|c'è scritto"
            r"|è scritto|chiede|chiedono|formano)",
            r"\b(?:esegui|segui)\s+(?:la|il|l')\s*(?:frase|istruzione|comando|messaggio|richiesta)"
            r"\s+(?:risultante|ottenut[ao]|nascost[ao])",
            r"\b(?:faça|faz|façam|execute|executa|siga|segue|cumpra)\s+o\s+que\s+(?:diz|dizem"
            r"|disser|disserem|pede|pedem|formar)",
            r"\b(?:execute|executa|siga|segue|cumpra)\s+(?:a|o)\s+(?:frase|instrução|comando"
            r"|mensagem|pedido)\s+(?:resultante|obtid[ao]|escondid[ao])",
            r"\bdoe\s+wat\s+(?:er staat|het zegt|ze zeggen|de zin zegt|erin staat)"
            r"|\bvoer\s+(?:de|het)\s+(?:resulterende|samengestelde|verborgen)\s+\w+\s+uit",
            r"(?:сделай|выполни)\s+(?:то,?\s+)?что\s+(?:там\s+|в ней\s+|из них\s+)?(?:написано"
            r"|получится|получилось|говорится|сказано)|выполни\s+получивш\w+\s+\w+",
            r"\b(?:zrób|wykonaj)\s+to,?\s+co\s+(?:tam\s+)?(?:jest napisane|napisane|wyjdzie|wyszło"
            r"|mówi|mówią|powstanie)|\bwykonaj\s+powstałe\s+\w+",
            r"\bne\s+(?:diyorsa|yazıyorsa|çıkıyorsa|söylüyorsa)\s+(?:onu\s+)?(?:yap|uygula)"
            r"|ortaya\s+çıkan\s+(?:cümleyi|talimatı|komutu)\s+(?:uygula|yap|yerine getir)",
            r"(?:افعل|نفذ|نفّذ|طبق|طبّق)\s+ما\s+(?:تقوله|يقوله|تقول|يقول|هو مكتوب|مكتوب)"
            r"|(?:نفذ|نفّذ|طبق|طبّق)\s+(?:الجملة|التعليمات|الأمر)\s+(?:الناتجة|الناتج)",
            r"(?:말하는|적힌|쓰인|나오는)\s*대로\s*(?:해|실행|수행|따라)"
            r"|(?:완성된|합친)\s*(?:문장|지시|명령)\S*\s*(?:실행|수행|따라)",
            r"(?:照着?|按照?)(?:它|它们|句子|结果)?(?:说的|写的)(?:做|执行|去做)"
            r"|执行(?:拼出|组合出|得到|合成)的?(?:句子|指令|命令|内容)"
            r"|(?:拼出|组合出|得到|合成)的(?:句子|指令|内容)(?:去)?(?:执行|照做)",
            r"(?:書いてある|言っている|できた)(?:通り|とおり)に(?:し|実行|行動)"
            r"|(?:できた|完成した|組み合わせた)(?:文|指示|命令)(?:を|に)(?:実行|従)",
        ]
    )
)
# Putting a text together: letters or words of each line, columns, reversing, joining
# parts, decoding (14 languages).
ASSEMBLE_RE = fast_re.compile(
    "|".join(
        [
            r"\b(?:first|last|initial)\s+(?:letter|word|character)s?\b|\beach\s+(?:line|row|word)\b"
            r"|\bevery\s+(?:line|row|other word)\b|\bcolumn\b|\bbackwards?\b|\brevers\w*"
            r"|\b(?:join|combine|concatenat\w*|put together|assembl\w*|piece together|glue)\b"
            r"|\b(?:parts?|pieces|fragments|syllables|variables?)\b|\bacrostic|\bblanks\b"
            r"|\bdecod\w*|\bdeciph\w*|\bunscrambl\w*|\brearrang\w*",
            r"\b(?:premières?|dernières?)\s+(?:lettres?|mots?)|\bchaque\s+ligne|\bcolonne"
            r"|\bà l'envers|\binvers\w*|\bassembl\w*|\bcombin\w*|\bconcatén\w*|\bmorceaux"
            r"|\bfragments|\bsyllabes|\bacrostiche|\bdécod\w*|\bdéchiffr\w*",
            r"\b(?:primera|última)s?\s+(?:letras?|palabras?)|\bcada\s+(?:línea|renglón)|\bcolumna"
            r"|\bal revés|\binvert\w*|\b(?:une|junta|combina|concatena)\b|\bpiezas|\bpartes"
            r"|\bsílabas|\bacróstico|\bcrucigrama|\bdecodific\w*|\bdescifr\w*",
            r"\b(?:erste|letzte)n?\s+(?:buchstaben|wörter|wort)|\bjede[rn]?\s+zeile|\bspalte"
            r"|\brückwärts|\bumgekehrt\w*|\bverbinde|\bzusammen\w*|\bkombinier\w*|\bteile\b"
            r"|\bsilben|\bakrostichon|\bdekodier\w*|\bentschlüssel\w*",
            r"\b(?:prima|ultima)\s+(?:lettera|parola)|\bogni\s+riga|\bcolonna|\bal contrario"
            r"|\bunisci|\bcombina|\bconcatena|\bpezzi|\bsillabe|\bacrostico|\bdecodific\w*"
            r"|\bdecifr\w*|\b(?:primeira|última)\s+(?:letra|palavra)|\bcada\s+linha|\bcoluna"
            r"|\bao contrário|\bjunte|\bjunta|\bpedaços|\bsílabas|\bdecifr\w*",
            r"\b(?:eerste|laatste)\s+(?:letter|woord)|\belke\s+regel|\bkolom|\bachterstevoren"
            r"|\bomgekeerd|\bvoeg\w*\s+\w*\s*samen|\bcombineer|\bdelen\b|\blettergrepen"
            r"|\bdecodeer|\bontcijfer\w*",
            r"перв\w+\s+букв|последн\w+\s+(?:букв|слов)|кажд\w+\s+строк|столб\w*|задом наперёд"
            r"|наоборот|соедини|объедини|склей|сложи|част[иь]|слог|акростих|декодир\w*|расшифр\w*",
            r"\bpierwsz\w+\s+liter|\bostatni\w*\s+(?:liter|słow)|\bkażd\w+\s+wiersz|\bkolumn\w*"
            r"|\bod tyłu|\bodwr\w*|\bpołącz\w*|\bzłóż|\bsklej\w*|\bczęści|\bsylab\w*|\bakrostych"
            r"|\bdekoduj\w*|\bodszyfr\w*",
            r"\bilk\s+harf|\bson\s+(?:harf|kelime)|\bher\s+satır|\bsütun|\btersten|\bbirleştir\w*"
            r"|\bparça\w*|\bhece\w*|\bçöz\w*|\bdeşifre",
            r"الحرف الأول|أول حرف|آخر كلمة|كل سطر|العمود|بالعكس|معكوس|اجمع|ادمج|اربط|الأجزاء"
            r"|المقاطع|فك تشفير|فك ترميز",
            r"첫\s*글자|마지막\s*단어|각\s*줄|세로|거꾸로|역순|합쳐|합치|이어\s*붙|조각|음절|삼행시"
            r"|디코딩|해독",
            r"首字|第一个字|最后一个字|每一?行|竖着|倒着|反过来|倒序|拼起来|拼出|组合|合并|连起来"
            r"|片段|藏头|解码|解密",
            r"頭文字|最初の文字|最後の(?:文字|単語)|各行|縦に|逆から|逆順|つなげ|組み合わせ|結合"
            r"|断片|折句|デコード|復号|解読",
        ]
    )
)


def check_assembled(raw: str, *, quote_policy: bool = True) -> list[Reason]:
    """One reason when ``raw`` orders the model to carry out a text it must assemble. A
    short question about a quoted order is judged on the words outside the quotes."""
    outside = mention_context(raw) if quote_policy else None  # off for tool results
    text = folded_ends(outside or raw)
    for start, end in windows(text, _ANCHORS, ORDER_BEFORE, ORDER_AFTER, MAX_WINDOW, MAX_WINDOWS):
        order = OBEY_RE.search(text, start, end)
        if order and ASSEMBLE_RE.search(
            text, max(0, order.start() - ASSEMBLY_BEFORE), order.end() + ASSEMBLY_AFTER
        ):
            span = order.group()[:80]
            return [Reason(LAYER, RULE, SCORE, span, "carry out a text put together from pieces")]
    return []
