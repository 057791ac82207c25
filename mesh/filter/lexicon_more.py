"""Words of the concepts in lexicon.py for Dutch, Portuguese, Polish, Turkish, Arabic and
Russian: the override and prompt-leak rules' words only (the other concepts stay in the
first five Latin-script languages and zh/ja). Merged into ``LEXICON`` at import. Russian
words are indexed in the folded form prompts take (Cyrillic look-alikes folded to Latin:
see ``lexicon_index``)."""

from __future__ import annotations

MORE_LANGS: dict[str, dict[str, str]] = {
    "IGN": {
        "ar": "تجاهل تجاهلي وتجاهل انس انسى وانس أهمل",
        "nl": "negeer negeren vergeet",
        "pt": "ignore ignora ignorar esqueça esqueca esquece desconsidere desconsidera",
        "pl": "zignoruj ignoruj zapomnij pomiń",
        "tr": "unut unutun yoksay{,ın,arak,ıp} gözardı görmezden",
        "ru": "игнорируй игнорируйте проигнорируй проигнорируйте забудь забудьте отбрось отбросьте отмени отмените пренебреги",
    },
    "INSTR": {
        "nl": "instructies instructie richtlijnen",
        "pt": "instruções instrucoes instrução diretrizes orientações",
        "pl": "instrukcje instrukcji wytyczne polecenia",
        "tr": "talimatları talimatlar talimatı yönergeleri",
        "ru": "инструкции инструкций инструкцию инструкциям указания указаний директивы директив",
    },
    "INSTR_WEAK": {
        "ar": "التعليمات تعليمات تعليماتك الإرشادات التوجيهات",  # everyday: needs a qualifier
    },
    "QUAL": {
        "ar": "السابقة السابق الأصلية",
        "nl": "vorige eerdere bovenstaande oorspronkelijke jouw uw systeem",
        "pt": "anteriores anterior acima originais iniciais suas seus sistema",
        "pl": "poprzednie wcześniejsze powyższe swoje twoje systemowe",
        "tr": "önceki yukarıdaki sistem",
        "ru": "предыдущие предыдущих прежние прежних вышеуказанные исходные изначальные системные свои твои",
    },
    "ALL": {
        "ar": "كل جميع",
        "nl": "alle",
        "pt": "todas todos",
        "pl": "wszystkie wszystkich",
        "tr": "tüm bütün",
        "ru": "все всех всё",
    },
    "REVEAL": {
        "ar": "اكشف واكشف أظهر وأظهر اعرض واعرض اطبع واطبع",
        "nl": "toon geef vertel",
        "pt": "mostre revele diga",
        "pl": "pokaż ujawnij podaj wypisz",
        "tr": "göster söyle",
        "ru": "покажи покажите выведи выведите раскрой раскройте напечатай напиши скажи повтори",
    },
    "SYS": {
        "ar": "النظام",
        "nl": "systeem verborgen geheime",
        "pt": "sistema ocultas secretas",
        "pl": "systemowy systemowe ukryte tajne",
        "tr": "sistem gizli",
        "ru": "системный системные системного системная скрытые скрытый секретные секретный",
    },
    "PROMPTW": {
        "ar": "موجه موجّه",
        "nl": "prompt instructies",
        "pt": "prompt instruções",
        "pl": "prompt instrukcje",
        "tr": "istemi istem talimatları",
        "ru": "промпт промпта инструкции",
    },
    "YOUR": {
        "nl": "jouw uw",
        "pt": "suas seus sua seu",
        "pl": "twoje swoje twoich swoich",
        "tr": "senin",
        "ru": "твой твои твою свой свои ваш ваши",
    },
}
