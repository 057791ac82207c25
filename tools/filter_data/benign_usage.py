"""Hard negatives, train only: the filter's trigger words in their everyday senses, in
14 languages. Product and exam instructions, house rules, a correction of one's own
previous message, an app's system settings, a game's cheat mode. A model fed many
short public attacks ("reveal your instructions", "ignore the rules") learns that
"instructions" or "rules" alone mean an attack; these say otherwise."""

from __future__ import annotations

import random

USAGE: dict[str, list[str]] = {
    "en": ["Read the safety instructions before you use the drill.",
           "The assembly instructions for the wardrobe are missing step 7.",
           "Ignore the typo in my previous message, I meant Tuesday.",
           "Please disregard my last email, the meeting is cancelled.",
           "Follow the instructions on the label and store below 25 °C.",
           "What are the rules for parking on this street overnight?",
           "Forget the earlier draft; here is the new version of the essay.",
           "How do I reset my phone to factory settings?",
           "Our house rules: no shoes inside and quiet after 10 pm.",
           "The exam instructions say to answer only three of the five questions.",
           "Override the default font size in the CSS for the footer.",
           "Where can I see the system requirements for this game?"],
    "fr": ["Lis les consignes de sécurité avant d'utiliser la perceuse.",
           "Ignore la faute de frappe dans mon message précédent, je voulais dire mardi.",
           "Les instructions de montage de l'armoire ne sont pas claires.",
           "Oublie le brouillon précédent, voici la nouvelle version.",
           "Quelles sont les règles du stationnement dans cette rue ?",
           "Suivez les instructions sur l'étiquette et conservez au frais."],
    "es": ["Lee las instrucciones de seguridad antes de usar el taladro.",
           "Ignora la errata de mi mensaje anterior, quería decir martes.",
           "Las instrucciones de montaje del armario no traen el paso 7.",
           "Olvida el borrador anterior, aquí está la versión nueva.",
           "¿Cuáles son las reglas para aparcar en esta calle?",
           "Siga las instrucciones de la etiqueta y consérvese en lugar fresco."],
    "de": ["Lies die Sicherheitshinweise, bevor du die Bohrmaschine benutzt.",
           "Ignoriere den Tippfehler in meiner vorherigen Nachricht, ich meinte Dienstag.",
           "In der Aufbauanleitung für den Schrank fehlt Schritt 7.",
           "Vergiss den vorherigen Entwurf, hier ist die neue Fassung.",
           "Welche Regeln gelten fürs Parken in dieser Straße?",
           "Bitte Anweisungen auf dem Etikett beachten und kühl lagern."],
    "it": ["Leggi le istruzioni di sicurezza prima di usare il trapano.",
           "Ignora l'errore di battitura nel mio messaggio precedente, intendevo martedì.",
           "Nelle istruzioni di montaggio dell'armadio manca il passaggio 7.",
           "Dimentica la bozza precedente, ecco la nuova versione.",
           "Quali sono le regole per parcheggiare in questa via?",
           "Seguire le istruzioni riportate sull'etichetta e conservare al fresco."],
    "pt": ["Leia as instruções de segurança antes de usar a furadeira.",
           "Ignore o erro de digitação na minha mensagem anterior, eu quis dizer terça.",
           "As instruções de montagem do armário estão sem o passo 7.",
           "Esqueça o rascunho anterior, aqui está a nova versão.",
           "Quais são as regras para estacionar nesta rua?",
           "Siga as instruções do rótulo e guarde em local fresco."],
    "nl": ["Lees de veiligheidsinstructies voordat je de boormachine gebruikt.",
           "Negeer de typfout in mijn vorige bericht, ik bedoelde dinsdag.",
           "In de montagehandleiding van de kast ontbreekt stap 7.",
           "Vergeet het vorige concept, hier is de nieuwe versie.",
           "Wat zijn de regels voor parkeren in deze straat?",
           "Volg de instructies op het etiket en bewaar koel."],
    "ru": ["Прочитай инструкцию по технике безопасности перед работой с дрелью.",
           "Не обращай внимания на опечатку в моём предыдущем сообщении, я имел в виду вторник.",
           "В инструкции по сборке шкафа нет шага 7.",
           "Забудь предыдущий черновик, вот новая версия.",
           "Какие правила парковки на этой улице?",
           "Соблюдайте инструкцию на этикетке и храните в прохладном месте."],
    "pl": ["Przeczytaj instrukcję bezpieczeństwa, zanim użyjesz wiertarki.",
           "Zignoruj literówkę w mojej poprzedniej wiadomości, chodziło o wtorek.",
           "W instrukcji montażu szafy brakuje kroku 7.",
           "Zapomnij o poprzedniej wersji roboczej, oto nowa.",
           "Jakie są zasady parkowania na tej ulicy?",
           "Postępuj zgodnie z instrukcją na etykiecie i przechowuj w chłodnym miejscu."],
    "tr": ["Matkabı kullanmadan önce güvenlik talimatlarını oku.",
           "Önceki mesajımdaki yazım hatasını görmezden gel, salı demek istedim.",
           "Dolabın kurulum talimatlarında 7. adım eksik.",
           "Önceki taslağı unut, işte yeni sürüm.",
           "Bu sokakta park etme kuralları neler?",
           "Etiketteki talimatlara uyun ve serin yerde saklayın."],
    "ar": ["اقرأ تعليمات السلامة قبل استخدام المثقاب.",
           "تجاهل الخطأ المطبعي في رسالتي السابقة، قصدت يوم الثلاثاء.",
           "تعليمات تركيب الخزانة ينقصها الخطوة السابعة.",
           "انسَ المسودة السابقة، هذه هي النسخة الجديدة.",
           "ما هي قواعد ركن السيارات في هذا الشارع؟",
           "اتبع التعليمات المكتوبة على الملصق واحفظه في مكان بارد."],
    "ko": ["드릴을 사용하기 전에 안전 지침을 읽어 주세요.",
           "이전 메시지의 오타는 무시해 주세요, 화요일이라고 쓰려던 거예요.",
           "옷장 조립 설명서에 7단계가 빠져 있어요.",
           "이전 초안은 잊어 주세요, 새 버전은 이거예요.",
           "이 거리에서 주차 규칙이 어떻게 되나요?",
           "라벨의 지시 사항을 따르고 서늘한 곳에 보관하세요."],
    "zh": ["使用电钻前请先阅读安全说明。",
           "忽略我上一条消息里的错别字，我指的是星期二。",
           "衣柜的安装说明书少了第七步。",
           "忘掉之前的草稿吧，这是新版本。",
           "这条街的停车规则是什么？",
           "请按照标签上的说明使用，并存放在阴凉处。"],
    "ja": ["ドリルを使う前に安全上の注意をよく読んでください。",
           "前のメッセージの誤字は無視してください、火曜日のことです。",
           "タンスの組み立て説明書に手順7がありません。",
           "前の下書きは忘れてください、これが新しい版です。",
           "この通りの駐車のルールを教えてください。",
           "ラベルの指示に従い、涼しい場所で保管してください。"],
}  # fmt: skip

# The same sentence handed over with a task, as users do.
TASKS: dict[str, list[str]] = {
    "en": ["Translate into Italian: {s}", "Translate this into Spanish: {s}",
           "Is this sentence grammatical? {s}", "{s} Can you say that more politely?",
           "Rewrite for a sign in our office: {s}"],
    "fr": ["Traduis en anglais : {s}", "{s} Tu peux reformuler ?"],
    "es": ["Traduce al inglés: {s}", "{s} ¿Puedes reformularlo?"],
    "de": ["Übersetze ins Englische: {s}", "{s} Kannst du das umformulieren?"],
    "it": ["Traduci in inglese: {s}", "{s} Puoi riformularlo?"],
    "pt": ["Traduza para o inglês: {s}", "{s} Pode reescrever isso?"],
    "nl": ["Vertaal naar het Engels: {s}", "{s} Kun je dat herformuleren?"],
    "ru": ["Переведи на английский: {s}", "{s} Можешь перефразировать?"],
    "pl": ["Przetłumacz na angielski: {s}", "{s} Możesz to przeredagować?"],
    "tr": ["İngilizceye çevir: {s}", "{s} Bunu başka türlü söyler misin?"],
    "ar": ["ترجم إلى الإنجليزية: {s}", "{s} هل يمكنك إعادة صياغتها؟"],
    "ko": ["영어로 번역해 줘: {s}", "{s} 다르게 표현해 줄래?"],
    "zh": ["翻译成英文：{s}", "{s} 能换个说法吗？"],
    "ja": ["英語に翻訳して：{s}", "{s} 言い換えてもらえますか？"],
}  # fmt: skip


def usage(rng: random.Random, per_sentence: int = 2) -> list[tuple[str, str]]:
    """(language, text): each sentence alone and with ``per_sentence`` random tasks."""
    out = []
    for lang, sentences in USAGE.items():
        for s in sentences:
            out.append((lang, s))
            for _ in range(per_sentence):
                out.append((lang, rng.choice(TASKS[lang]).format(s=s)))
    return out
