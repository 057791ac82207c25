"""Multilingual word classes ("concepts") that the pattern rules are built from.

A rule is a short sequence of concepts (see ``patterns.RULES``); this table says
which words belong to each concept, per language. To support a new phrasing,
add words here; to support a new attack shape, add a sequence in ``patterns``.

Conventions:
* Latin-script entries are whole tokens after folding (lowercase; accents may
  be written or not: both forms are indexed). ``ignor{e,es,ed}`` expands.
* ``zh``/``ja`` entries are substrings, matched in CJK runs without spaces.
"""

from __future__ import annotations

from .lexicon_more import MORE_LANGS

Lexicon = dict[str, dict[str, str]]

LEXICON: Lexicon = {
    # Strong "throw away what you were told" verbs.
    "IGN": {
        "en": "ignor{e,es,ing} disregard{,s,ing} forget{,s,ting} "
        "overrid{e,es,ing} overrule{,s} bypass{,es,ing} circumvent{,ing} discard{,s,ing} "
        "dismiss{,ing} neglect{,ing} unlearn{,ing} nullify abandon{,ing} ditch "
        "supersede{,s} scrap erase",
        "fr": "ignor{e,es,ez,er,ant} oubli{e,es,ez,er,ant} néglig{e,es,ez,er} contourn{e,ez,er} "
        "outrepass{e,ez,er} écart{e,ez,er} annul{e,ez,er} abandonn{e,ez,er} "
        "désobé{is,issez,ir} zappe{,z} efface{,z}",
        "es": "ignor{a,e,ar,en,ad,es,as} olvid{a,e,ar,en,ad,ate,ese,es,as} omit{e,ir,an} "
        "ignóra{la,las,lo,los} olvída{la,las,lo,los} omíte{la,las,los} descárta{la,las,los} "
        "descart{a,e,ar,en} desestim{a,e,ar} desatiend{e,an} desatender anul{a,e,ar} "
        "salt{ate,arte} evit{a,ar} sobrescrib{e,ir}",
        "de": "ignorier{,e,en,st} vergiss vergessen vergesst missacht{e,en,et} "
        "übergeh{e,en,t} umgeh{e,en,t} verwirf verwerfen überschreib{e,en,t} "
        "übergehe ignoriere hinwegsetzen",
        "it": "ignor{a,are,ate,i,ando} dimentic{a,are,ate,hi,ando} trascur{a,are,ate} "
        "tralasci{a,are,ate} scart{a,are,ate} aggir{a,are,ate} annull{a,are,ate} "
        "bypassa sovrascriv{i,ere} ignora{la,le,li,lo} dimentica{la,le,li,lo} ignoratele",
        "zh": "忽略 忽视 无视 無視 不理会 别理会 不要理会 忘记 忘掉 忘了 忘記 抛开 拋開 抛弃 丢弃 "
        "放弃 绕过 繞過 跳过 撇开 摒弃 不再遵守 不要遵守 不必遵守 无需遵守 不用遵守 别管 不用管 "
        "违背 違背 覆盖 忽視 不要再遵守 别再遵守 不再遵循 不要遵循 不用再遵守 不要再遵循",
        "ja": "無視 むし 忘れ わすれ 破棄 放棄 従わない 従わず 従う必要はありません 従う必要はない "
        "無効に 上書き 回避 取り消 捨て",
    },
    # Narrative forms ("I ignored the instructions"): listed so that they win over
    # the verbs (longest match in CJK, exact match before accent folding).
    "PAST": {
        "en": "ignored forgot forgotten disregarded",
        "fr": "ignoré{,e,s,es} oublié{,e,s,es}",
        "es": "olvidé olvidó olvidad{o,a,os,as} ignoré ignoró",
        "de": "ignorierte vergaß",
        "it": "ignorat{o,a,i,e} dimenticat{o,a,i,e}",
        "zh": "忽略了 忘记了 忘了 无视了 忘記了",
        "ja": "無視した 無視してしまった 無視しました 無視してしまい 忘れた 忘れてしまった 忘れました "
        "忘れてしまい 忘れます 忘れがち 忘れっぽい",
    },
    # "設定し直す", "設定して": the verb "to set", not the noun "settings" (listed so that the
    # longest match wins over 設定; no rule reads this concept).
    "SET_VERB": {
        "ja": "設定し 設定する 設定して 設定した 設定すれ 設定し直 設定でき 設定され 設定しよう",
    },
    # "The previous instructions are void / were cancelled": object first.
    "VOIDED": {
        "en": "void invalid cancelled canceled revoked obsolete null overridden suspended "
        "ignored disregarded forgotten lifted",
        "fr": "annulé{,e,s,es} nulles caduques invalides ignorées obsolètes",
        "es": "anulad{as,os} nulas inválidas canceladas ignoradas obsoletas",
        "de": "ungültig aufgehoben ignoriert nichtig hinfällig",
        "it": "annullate nulle invalide ignorate obsolete",
        "zh": "作废 無效 无效 失效",
        "ja": "無効 破棄 取り消し",
    },
    # "... no longer apply / ne comptent plus / gelten nicht mehr".
    "APPLY": {
        "en": "apply valid count matter",
        "fr": "comptent valent appliquent valables valides",
        "es": "válidas validas valen aplican cuentan",
        "de": "gelten gültig zählen",
        "it": "valgono valide contano applicano",
    },
    "NEG_POST": {"de": "nicht nie niemals"},
    # A first-person subject just before the verb: narrative, not a command.
    "FIRSTP": {
        "en": "i we",
        "fr": "je j nous",
        "es": "yo",
        "de": "ich wir",
        "it": "io",
        "zh": "我",
        "ja": "私 僕 俺",
    },
    "TOLD": {
        "en": "told instructed taught programmed given",
        "fr": "dit appris demandé",
        "es": "dicho dijeron enseñado indicado",
        "de": "gesagt beigebracht aufgetragen",
        "it": "detto insegnato ordinato",
    },
    # Weaker verbs: only count with a qualifier ("delete your previous rules").
    "IGN_WEAK": {
        "en": "skip{,ping} drop{,ping} delete reset clear remove cancel wipe throw",
        "fr": "supprim{e,ez,er} saut{e,ez,er} efface{,z}",
        "es": "elimin{a,e,ar} borr{a,e,ar} quit{a,ar}",
        "de": "lösch{e,en} entfern{e,en} streich{e,en}",
        "it": "elimin{a,are,ate} cancell{a,are,ate} salt{a,are}",
    },
    "NEG": {
        "en": "not don dont never stop quit no longer cease",
        "fr": "ne n pas plus jamais arrête arrêtez cesse cessez",
        "es": "no nunca deja dejes deje dejad",
        "de": "nicht keine nie niemals hör hört aufhören",
        "it": "non mai smetti smettila smettete",
    },
    "FOLLOW": {
        "en": "follow{,ing} obey{,ing} adhere abide comply respect listen",
        "fr": "suis suivez suivre suivre respecte respectez respecter obéis obéissez obéir "
        "tiens tenez tenir",
        "es": "sigas sigan seguir sigues obedezcas obedecer respetes respetar cumplas cumplir",
        "de": "befolg{e,en,st} beacht{e,en,est} folg{e,en,st} halte halten gehorche gehorchen",
        "it": "segui seguire rispett{a,are,i} obbedi{re,sci} attener{ti,si}",
    },
    # Strong objects: what the model was told.
    "INSTR": {
        "en": "instruction{,s} directive{,s} guideline{,s} guidance "
        "guardrail{,s} safeguard{,s} preprompt pre-prompt sysprompt",
        "fr": "instruction{,s} consigne{,s} directive{,s}",
        "es": "instrucci{ón,ones,on} indicaciones directric{es} directiva{,s}",
        "de": "anweisung{,en} instruktion{,en} richtlinie{,n} vorgabe{,n} direktive{,n} "
        "systemanweisung{,en} anleitungen",
        "it": "istruzion{e,i} direttiv{a,e} indicazioni",
        "zh": "指令 指示 提示词 提示詞 系统提示 系統提示 系统指令 设定 設定 准则 守则 指导方针 预设",
        "ja": "指示 指令 命令 プロンプト ガイドライン 設定 方針",
    },
    # Weak objects: also ordinary words ("eslint rules"), so they need a qualifier.
    "INSTR_WEAK": {
        "en": "rule{,s} prompt{,s} restriction{,s} constraint{,s} polic{y,ies} command{,s} "
        "order{,s} limitation{,s} filter{,s} training context directions programming",
        "fr": "règle{,s} restriction{,s} contrainte{,s} limite{,s} ordre{,s} commande{,s} "
        "prompt invite filtre{,s} politique{,s} programmation",
        "es": "regla{,s} norma{,s} restricci{ón,ones} órdenes ordenes comando{,s} "
        "límites limites limitaciones filtro{,s} políticas prompt programación",
        "de": "regel{,n} einschränkung{,en} beschränkung{,en} befehl{,e} grenzen filter "
        "prompt richtlinien programmierung",
        "it": "regol{a,e} restrizion{e,i} vincol{o,i} limit{i,azioni} comand{o,i} ordini "
        "filtr{o,i} prompt politiche programmazione",
        "zh": "规则 規則 限制 约束 約束 规定 規定 命令 要求 政策 过滤",
        "ja": "ルール 規則 制約 制限 決まり",
    },
    # Qualifiers that make an object refer to the model's own setup.
    "QUAL": {
        "en": "previous previously prior preceding above earlier former initial original "
        "old existing system your foregoing aforementioned safety ethical content "
        "built-in builtin moral developer openai",
        "fr": "précédent{,e,es,s} antérieur{,e,es,s} ci-dessus dessus initial{,e,es} "
        "original{,e,es} ancien{,ne,nes} système tes vos ton ta votre éthiques sécurité",
        "es": "anterior{,es} previ{a,as,o,os} precedentes arriba inicial{,es} original{,es} "
        "sistema tus sus seguridad éticas",
        "de": "vorherig{e,en} vorig{e,en} bisherig{e,en} obig{e,en} ursprünglich{e,en} "
        "früher{e,en} system deine deinen ihre sicherheits ethischen",
        "it": "precedent{e,i} sopra iniziali original{e,i} vecchi{e} sistema tua tue tuoi sue "
        "sicurezza etiche",
        "zh": "之前 以前 先前 此前 上面 上述 前面 原来 原有 原始 你的 系统 系統 安全 所有 一切 全部",
        "ja": "以前 前の これまで 上記 先ほど 元の 最初の システム あなたの すべての 全ての 全部",
    },
    "ALL": {
        "en": "all any every",
        "fr": "tout toutes tous",
        "es": "todas todos toda todo cualquier",
        "de": "alle allen alles jegliche",
        "it": "tutte tutti tutto qualsiasi",
    },
    "EVERY": {
        "en": "everything anything",
        "fr": "tout",
        "es": "todo",
        "de": "alles",
        "it": "tutto",
    },
    # "... everything above / you were told / said before".
    "AFTERQ": {
        "en": "above before previously earlier prior told instructed programmed taught preceding",
        "fr": "précède précédemment dessus avant dit",
        "es": "anterior anteriormente arriba antes dicho",
        "de": "vorher zuvor oben davor gesagt bisher",
        "it": "prima sopra precedente detto",
    },
    "REVEAL": {
        "en": "reveal{,s} show print display output repeat tell give share leak dump "
        "expose disclose recite spell paste write list provide return echo",
        "fr": "révèle{,z} montre{,z} affiche{,z} imprime{,z} répète{,z} "
        "dis dites donne{,z} partage{,z} écris écrivez divulgue{,z} récite{,z}",
        "es": "revela{,r} muestra{,me} mostrar imprime escribe repite repetir dime "
        "dame comparte divulga enseña enséñame",
        "de": "zeig{,e,en} verrate{,n} offenbare gib wiederhole ausgeben drucke nenne "
        "schreibe sag teile enthülle",
        "it": "rivela{,re} mostra{,mi,re} stampa ripeti dimmi dammi scrivi condividi elenca svela",
        "zh": "显示 顯示 输出 輸出 打印 告诉 告訴 重复 重複 透露 泄露 洩露 给我看 展示 说出 "
        "說出 公开 列出 复述 写出 发给我 發給我 贴出来 复制给我",
        "ja": "教えて 表示 出力 見せて 繰り返 明かして 開示 書き出 共有して 言って",
    },
    "ASK": {
        "en": "what which",
        "fr": "quel quelle quelles quels",
        "es": "cuál cuáles cual cuales qué",
        "de": "was welche welches wie",
        "it": "quale quali cosa",
        "zh": "什么 什麼 是啥",
        "ja": "何 なに",
    },
    # Adjectives that make "prompt"/"instructions" the model's own.
    "SYS": {
        "en": "system initial hidden secret internal confidential developer pre",
        "fr": "système initial{,es} cachée{,s} secrète{,s} internes confidentielles originales",
        "es": "sistema inicial{,es} ocult{a,as,o,os} secret{a,as,o,os} internas "
        "confidenciales originales",
        "de": "system versteckte{,n} geheime{,n} internen ursprünglichen",
        "it": "sistema iniziali nascost{e,o,i} segret{e,o,i} interne riservate originali",
        "zh": "系统 系統 初始 隐藏 隱藏 内部 原始",
        "ja": "最初 隠し 初期 システム 内部",
    },
    "PROMPTW": {
        "en": "prompt{,s} instruction{,s} directive{,s} guideline{,s} preprompt pre-prompt",
        "fr": "prompt{,s} instruction{,s} consignes invite directives",
        "es": "prompt{,s} instrucciones indicaciones directrices",
        "de": "prompt{,s} anweisungen instruktionen richtlinien",
        "it": "prompt istruzioni direttive",
        "zh": "提示词 提示詞 指令 指示 设定 設定 提示",
        "ja": "プロンプト 指示 設定",
    },
    # One-token "system prompt".
    "SYSP": {
        "en": "systemprompt sysprompt preprompt metaprompt",
        "de": "systemprompt systemanweisungen systemanweisung",
        "zh": "系统提示 系統提示 系统提示词 系统指令 系統指令 初始指令 隐藏指令 初始提示",
        "ja": "システムプロンプト システム指示 初期プロンプト 隠しプロンプト",
    },
    "TEXTW": {
        "en": "text words content message{,s} conversation",
        "fr": "texte mots contenu",
        "es": "texto palabras contenido",
        "de": "text wörter inhalt",
        "it": "testo parole contenuto",
    },
    "YOUR": {
        "en": "your yours",
        "fr": "tes vos ton votre ta",
        "es": "tus tu su sus",
        "de": "deine deinen dein deiner ihre",
        "it": "tue tuoi tua tuo",
        "zh": "你的 您的",
        "ja": "あなたの 君の",
    },
    "YOU": {
        "en": "you",
        "fr": "tu te t toi",
        "es": "tú te",
        "de": "du dir dich",
        "it": "tu ti",
        "zh": "你 您",
        "ja": "あなた 君",
    },
    "ARE": {
        "en": "are re",
        "fr": "êtes",  # not "es" ("tu es" has its "tu"): German "es" (it) read as "are"
        "es": "eres",
        "de": "bist",
        "it": "sei",
    },
    # Compound "you are (now)" forms.
    "YOUARE": {
        "en": "youre",
        "es": "eres",
        "it": "sei",
        "zh": "你现在是 你現在是 你是 您现在是 从现在开始你是 你将扮演",
        "ja": "あなたは今から あなたは今 今からあなたは あなたは",
    },
    "ROLE": {
        "en": "act{,ing} pretend{,ing} roleplay role-play simulate emulate become behave "
        "impersonate persona embody",
        "fr": "agis agissez fais faites comporte comportez joue jouez incarne incarnez "
        "simule simulez prétends deviens",
        "es": "actúa actua actúes finge fingir compórtate comportate interpreta simula conviértete",
        "de": "tu spiel{,e} verhalte simuliere agiere werde stell verkörpere",
        "it": "agisci fingi comportati interpreta simula diventa impersona",
        "zh": "扮演 假装 假裝 模拟 模擬 充当 充當 角色扮演 现在是 現在是",
        "ja": "ふりをして 演じて なりきって 振る舞って 振舞って ロールプレイ として振る舞",
    },
    "PERSONA": {
        "en": "jailbroken jailbreak jailbreaking unrestricted unfiltered uncensored unbound "
        "unchained unlimited liberated amoral immoral unethical stan dude antigpt "
        "betterdan evil-bot evilbot aim",
        "fr": "débridé{,e} libéré{,e} immoral{,e} non-censuré{,e} jailbreaké",
        "es": "liberad{o,a} desbloquead{o,a} inmoral",
        "de": "uneingeschränkt{,e,er} unzensiert{,e,er} entfesselt{,e} befreit{,e} unmoralisch{,e}",
        "it": "sbloccat{o,a} liberat{o,a} immorale",
        "zh": "越狱 越獄 无限制 無限制 不受限制 没有任何限制 沒有任何限制 无约束 邪恶",
        "ja": "脱獄 制限のない 制限なし 無制限 制約のない 検閲なし",
    },
    "DAN": {"en": "dan d-a-n"},
    "MODE": {
        "en": "mode",
        "fr": "mode",
        "es": "modo",
        "de": "modus",
        "it": "modalità modalita",
    },
    "DEVELOPER": {
        "en": "developer dev",
        "fr": "développeur developpeur",
        "es": "desarrollador",
        "de": "entwickler",
        "it": "sviluppatore",
    },
    "DEVMODE": {
        "en": "devmode developermode",
        "de": "entwicklermodus",
        "zh": "开发者模式 開發者模式 开发模式 開發人員模式",
        "ja": "開発者モード デベロッパーモード",
    },
    "OUTPUT": {"en": "output outputs response responses enabled"},
    "AI": {
        "en": "chatgpt gpt assistant ai llm chatbot claude gemini bot",
        "fr": "ia assistant",
        "es": "ia asistente",
        "de": "ki assistent",
        "it": "ia assistente",
        "zh": "人工智能 助手 AI",
        "ja": "AI アシスタント",
    },
    "WITHOUT": {
        "en": "without no free",
        "fr": "sans aucune aucun",
        "es": "sin ningún ninguna",
        "de": "ohne keine",
        "it": "senza nessuna nessun",
        "zh": "没有 沒有 不受 无 無",
        "ja": "なし ない",
    },
    "LIMITS": {
        "en": "restriction{,s} limit{,s} limitation{,s} filter{,s} censorship rules "
        "ethics morals boundaries guidelines guardrails constraints",
        "fr": "restrictions limites filtre{,s} censure règles éthique morale",
        "es": "restricciones límites limites filtro{,s} censura reglas ética moral",
        "de": "einschränkungen grenzen filter zensur regeln ethik moral beschränkungen",
        "it": "restrizioni limiti filtri censura regole etica morale",
        "zh": "限制 约束 審查 审查 过滤 規則 规则 道德",
        "ja": "制限 制約 検閲 フィルター ルール 倫理",
    },
    "BOUND": {
        "en": "bound restricted limited constrained obliged obligated",
        "fr": "lié{,e} limité{,e} contraint{,e} soumis{,e} obligé{,e}",
        "es": "atad{o,a} limitad{o,a} obligad{o,a} sujet{o,a}",
        "de": "gebunden eingeschränkt verpflichtet",
        "it": "vincolat{o,a} limitat{o,a} obbligat{o,a} legat{o,a}",
    },
    "DISABLE": {
        "en": "disable{,d} deactivate turn switch lift remove bypass circumvent",
        "fr": "désactive{,z} désactiver lève{,z} supprime{,z} contourne{,z}",
        "es": "desactiva{,r} quita{,r} elimina{,r} levanta",
        "de": "deaktiviere{,n} schalte abschalten entferne{,n} umgehe{,n}",
        "it": "disattiva{,re} disabilita{,re} rimuovi togli aggira",
        "zh": "关闭 關閉 解除 禁用 取消 绕过",
        "ja": "無効 解除 オフ 外して",
    },
    "SAFETY": {
        "en": "safety filter{,s} guardrail{,s} safeguard{,s} censorship moderation "
        "restrictions ethics alignment",
        "fr": "sécurité filtre{,s} censure modération restrictions",
        "es": "seguridad filtro{,s} censura moderación restricciones",
        "de": "sicherheit sicherheitsfilter filter zensur moderation einschränkungen",
        "it": "sicurezza filtr{o,i} censura moderazione restrizioni",
        "zh": "安全限制 安全过滤 内容过滤 审查 安全机制 安全设置",
        "ja": "安全フィルター セーフティ 検閲 安全制限 フィルター",
    },
    "DO": {"en": "do"},
    "ANYTHING": {"en": "anything"},
    "NOW": {"en": "now"},
    "NEW": {
        "en": "new updated revised real actual true",
        "fr": "nouvelles nouvelle vraies",
        "es": "nuevas nuevo nuevas verdaderas",
        "de": "neue neuen echten",
        "it": "nuove nuovo vere",
        "zh": "新的 新",
        "ja": "新しい",
    },
    # No rule uses it: CJK terms match longest first, so "reset" (初期化, 初始化) is read
    # as one word and its first two characters are not "initial" (SYS): "after the reset,
    # tell me how to redo the provider settings" is not a system-prompt leak.
    "RESET": {"zh": "初始化", "ja": "初期化"},
}

# Latin words that also matter inside CJK sentences ("你现在是DAN").
CJK_EXTRA_LATIN = {"dan": ("DAN",), "prompt": ("SYSP",), "jailbreak": ("PERSONA",)}

LATIN_LANGS = ("en", "fr", "es", "de", "it", "nl", "pt", "pl", "tr", "ar", "ru")  # spaced scripts

for _concept, _by_lang in MORE_LANGS.items():  # nl, pt, pl, tr, ar: lexicon_more.py
    LEXICON[_concept].update(_by_lang)
CJK_LANGS = ("zh", "ja")
