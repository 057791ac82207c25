"""Words around a quoted phrase that say it is discussed, not said: an example or teaching
material, a quotation, talk about attacks (14 languages). The quote policy (``quoting``)
reads them."""

from __future__ import annotations

from . import fast_re

# Words that frame a quoted phrase as an example or as teaching material (14 languages).
EXAMPLE_RE = fast_re.compile(
    "|".join(
        [
            r"\b(?:examples?|e\.g\.|such as|slides?|awareness|presentation|training material|quiz"
            r"|test ?cases?|fixtures?)\b",
            r"exemple|diapo\w*|formation|présentation|ejemplo|diapositiva|formación|presentaci",
            r"beispiel|z\.b\.|folie|schulung\w*|präsentation|esempio|formazione|presentazion",
            r"exemplo|apresentaç|formação|voorbeeld|presentatie|например|пример|слайд|презентац",
            r"przykład\w*|slajd|prezentacj|örneğin|örnek|sunum|مثال|مثلا|مثلاً|الشريحة|عرض تقديمي",
            r"예를 들어|예시|예문|슬라이드|발표|교육 자료|例如|比如|例子|例句|示例|幻灯片|演示|培训"
            r"|例えば|例文|スライド|プレゼン|研修|のような|みたいな|之类|之類",
            # "we keep getting lines like: '...'", "des lignes du genre « … »"
            r"\b(?:lines?|messages?|e-?mails?|texts?|phrases?|sentences?|comments?|inputs?"
            r"|requests?|replies|posts?|reviews?|tickets?|things|stuff|something) like\b",
            r"\b(?:du genre|du type|del tipo|do tipo|come questa|come questo|como esta|como este"
            r"|wie diese[rnms]?|zoals deze|zoals dit|takie jak|takich jak|na wzór)\b"
            r"|\b(?:zeilen|nachrichten|mails|sätze|texte|kommentare|regels|berichten|zinnen) (?:wie|zoals)\b"
            r"|наподобие|من قبيل|على غرار|같은 (?:문장|메시지|글|문구|댓글|메일)|이런 (?:문장|메시지|문구)"
            r"|像这样的|类似这样的|類似這樣的",
        ]
    )
)
# A quotation ("translate this quote from the phishing mail"): with attack talk, as an example.
QUOTATION_RE = fast_re.compile(
    r"\b(?:quote|quotation|citation|cita|zitat|citazione|citação|citaat|cytat\w*|alıntı\w*)\b"
    r"|цитат\w*|اقتباس|الاقتباس|인용|引文|引用"
)
# Words of a text that discusses attacks rather than makes one (14 languages).
ATTACK_TALK_RE = fast_re.compile(
    "|".join(
        [
            r"\b(?:inject\w*|jailbreak\w*|attack\w*|payload\w*|phishing|scam\w*|fraud\w*"
            r"|malicious|suspicious|exploit\w*|vulnerab\w*|red[- ]team\w*|ctf|regex\w*|threat\w*)\b",
            r"injection|attaqu\w*|malveillant|suspect|arnaque|hameçonnage",
            r"inyección|ataque|atacante|malicios\w*|sospechos\w*|estafa",
            r"angriff\w*|angreifer\w*|schadhaft|verdächtig\w*|betrug\w*",
            r"iniezione|attacc\w*|malevol\w*|sospett\w*|truffa|injeção|ataque|golpe"
            r"|aanval\w*|kwaadaardig|verdacht\w*|oplichting",
            r"инъекц\w*|атак\w*|вредонос\w*|подозрит\w*|мошенни\w*",
            r"wstrzykiw\w*|atak\w*|złośliw\w*|podejrzan\w*|oszust\w*",
            r"enjeksiyon|saldır\w*|kötü amaçlı|şüpheli|dolandırıc\w*",
            r"حقن|هجوم|هجمات|المهاجم|خبيث|مشبوه|احتيال",
            r"인젝션|주입|공격|악성|의심|사기|注入|攻击|攻撃|恶意|悪意|可疑|不審|诈骗|詐欺|越狱|脱獄",
            r"фишинг\w*|przynęt\w*|تصيد|피싱|钓鱼|釣魚|フィッシング",
            # a regular expression to catch it (English "regex" above), in every language
            r"expressions? régulières?|expresi(?:ón|ones) regular\w*|regulär\w* ausdr\w*"
            r"|espression[ei] regolar\w*|express(?:ão|ões) regular\w*|reguliere expressie\w*"
            r"|регулярн\w* выражени\w*|wyrażeni\w* regularn\w*|düzenli ifade\w*"
            r"|تعبير نمطي|التعبير النمطي|التعبيرات النمطية|정규식|정규 ?표현식|正则|正規表現",
        ]
    )
)
