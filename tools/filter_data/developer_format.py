"""Hard negatives, train only: a developer's format and policy rules followed by the user's
input, joined by a newline as the router joins a request's messages before screening.

"Reply in JSON only." then "Score: great!" is one prompt to the filter. Short, imperative,
with "only" and a label and a colon, such prompts sat at the learned layer's threshold in
every retrain (the e2e tests' structured-output prompts were blocked by two of them). Nothing
here undoes, unlocks or forbids a refusal: the rules say how to answer, not what not to refuse.
"""

from __future__ import annotations

import random

FORMATS: dict[str, list[str]] = {
    "en": ["Format your reply as JSON, nothing else.", "Reply with one word: yes or no.",
           "Respond only with the category name.", "Output CSV with the columns name and price.",
           "Keep every answer under 50 words.", "Answer in one short sentence.",
           "Return only the corrected text, no comments.", "Use British spelling and a friendly tone.",
           "Label each review as positive, neutral or negative.",
           "Give the answer as a number only."],
    "fr": ["Réponds uniquement en JSON.", "Réponds par un seul mot : oui ou non.",
           "Donne seulement le nom de la catégorie.", "Produis un CSV avec les colonnes nom et prix.",
           "Réponds en une phrase courte.", "Renvoie seulement le texte corrigé, sans commentaire.",
           "Classe chaque avis : positif, neutre ou négatif.", "Donne seulement le résultat en chiffres."],
    "es": ["Responde solo con JSON.", "Contesta con una sola palabra: sí o no.",
           "Devuelve solo el nombre de la categoría.", "Genera un CSV con las columnas nombre y precio.",
           "Responde en una frase corta.", "Devuelve solo el texto corregido, sin comentarios.",
           "Clasifica cada reseña como positiva, neutra o negativa.", "Da solo el número como respuesta."],
    "de": ["Antworte nur mit JSON.", "Antworte mit einem Wort: ja oder nein.",
           "Gib nur den Namen der Kategorie aus.", "Gib eine CSV mit den Spalten Name und Preis aus.",
           "Antworte in einem kurzen Satz.", "Gib nur den korrigierten Text zurück, ohne Kommentar.",
           "Bewerte jede Rezension als positiv, neutral oder negativ.", "Gib nur die Zahl als Antwort."],
    "it": ["Rispondi solo in JSON.", "Rispondi con una parola: sì o no.",
           "Restituisci solo il nome della categoria.", "Genera un CSV con le colonne nome e prezzo.",
           "Rispondi con una frase breve.", "Restituisci solo il testo corretto, senza commenti.",
           "Classifica ogni recensione come positiva, neutra o negativa.", "Dai solo il numero come risposta."],
    "pt": ["Responda apenas em JSON.", "Responda com uma palavra: sim ou não.",
           "Devolva só o nome da categoria.", "Gere um CSV com as colunas nome e preço.",
           "Responda em uma frase curta.", "Devolva só o texto corrigido, sem comentários.",
           "Classifique cada avaliação como positiva, neutra ou negativa.", "Dê só o número como resposta."],
    "nl": ["Antwoord alleen in JSON.", "Antwoord met één woord: ja of nee.",
           "Geef alleen de naam van de categorie.", "Maak een CSV met de kolommen naam en prijs.",
           "Antwoord in één korte zin.", "Geef alleen de verbeterde tekst terug, zonder commentaar.",
           "Beoordeel elke recensie als positief, neutraal of negatief.", "Geef alleen het getal als antwoord."],
    "ru": ["Отвечай только в формате JSON.", "Ответь одним словом: да или нет.",
           "Выведи только название категории.", "Сформируй CSV со столбцами имя и цена.",
           "Отвечай одним коротким предложением.", "Верни только исправленный текст, без комментариев.",
           "Оцени каждый отзыв: положительный, нейтральный или отрицательный.", "Дай в ответ только число."],
    "pl": ["Odpowiadaj tylko w formacie JSON.", "Odpowiedz jednym słowem: tak lub nie.",
           "Podaj tylko nazwę kategorii.", "Wygeneruj CSV z kolumnami nazwa i cena.",
           "Odpowiedz jednym krótkim zdaniem.", "Zwróć tylko poprawiony tekst, bez komentarzy.",
           "Oceń każdą recenzję jako pozytywną, neutralną lub negatywną.", "Podaj tylko liczbę."],
    "tr": ["Yalnızca JSON ile cevap ver.", "Tek kelimeyle cevap ver: evet ya da hayır.",
           "Sadece kategori adını yaz.", "Ad ve fiyat sütunlarıyla bir CSV üret.",
           "Tek kısa bir cümleyle cevap ver.", "Sadece düzeltilmiş metni döndür, yorum ekleme.",
           "Her yorumu olumlu, nötr ya da olumsuz olarak etiketle.", "Cevap olarak sadece sayıyı yaz."],
    "ar": ["أجب بصيغة JSON فقط.", "أجب بكلمة واحدة: نعم أو لا.",
           "اكتب اسم الفئة فقط.", "أنشئ ملف CSV بعمودين: الاسم والسعر.",
           "أجب بجملة قصيرة واحدة.", "أعد النص المصحح فقط دون تعليق.",
           "صنّف كل مراجعة: إيجابية أو محايدة أو سلبية.", "اكتب الرقم فقط."],
    "ko": ["JSON으로만 답해 주세요.", "한 단어로 답해: 예 또는 아니오.",
           "카테고리 이름만 출력해.", "이름과 가격 열이 있는 CSV로 만들어 줘.",
           "짧은 한 문장으로 답해 주세요.", "고친 문장만 돌려줘, 설명은 빼고.",
           "각 리뷰를 긍정, 중립, 부정으로 분류해.", "숫자만 답해 주세요."],
    "zh": ["只用 JSON 格式回答。", "用一个词回答：是或否。",
           "只输出类别名称。", "生成包含名称和价格两列的 CSV。",
           "用一句简短的话回答。", "只返回修改后的文本，不要加说明。",
           "把每条评论标为正面、中性或负面。", "只回答数字。"],
    "ja": ["JSONのみで回答してください。", "一語で答えて：はい か いいえ。",
           "カテゴリ名だけを出力してください。", "名前と価格の列を持つCSVを作ってください。",
           "短い一文で答えてください。", "修正した文章だけを返してください。説明は不要です。",
           "各レビューをポジティブ・中立・ネガティブに分類してください。", "数字だけで答えてください。"],
}  # fmt: skip

# The user's side: short inputs, several of them "key: value" lines as forms and apps send.
INPUTS: dict[str, list[str]] = {
    "en": ["Rating: excellent!", "Review: the soup was cold but the staff were lovely.",
           "Name: Tom, 45, Leeds.", "Is the museum open on Mondays?", "Note: meeting moved to 3 pm.",
           "Product: oak table, 240 GBP.", "Status: delivered"],
    "fr": ["Note : super !", "Avis : la soupe était froide mais le service adorable.",
           "Nom : Anna, 31 ans, Lyon.", "Le musée est-il ouvert le lundi ?", "Produit : table en chêne, 240 €."],
    "es": ["Valoración: ¡genial!", "Reseña: la sopa estaba fría pero el trato fue muy amable.",
           "Nombre: Ana, 31, Sevilla.", "¿El museo abre los lunes?", "Producto: mesa de roble, 240 €."],
    "de": ["Bewertung: super!", "Rezension: Die Suppe war kalt, aber das Personal sehr nett.",
           "Name: Anna, 31, Köln.", "Hat das Museum montags geöffnet?", "Produkt: Eichentisch, 240 €."],
    "it": ["Voto: ottimo!", "Recensione: la zuppa era fredda ma il personale gentilissimo.",
           "Nome: Anna, 31, Bologna.", "Il museo è aperto il lunedì?", "Prodotto: tavolo in rovere, 240 €."],
    "pt": ["Nota: ótimo!", "Avaliação: a sopa estava fria, mas a equipe foi um amor.",
           "Nome: Ana, 31, Porto.", "O museu abre às segundas?", "Produto: mesa de carvalho, 240 €."],
    "nl": ["Beoordeling: top!", "Recensie: de soep was koud maar het personeel heel aardig.",
           "Naam: Anna, 31, Utrecht.", "Is het museum op maandag open?", "Product: eiken tafel, 240 euro."],
    "ru": ["Оценка: отлично!", "Отзыв: суп был холодный, но персонал очень милый.",
           "Имя: Анна, 31, Казань.", "Музей работает по понедельникам?", "Товар: дубовый стол, 24 000 ₽."],
    "pl": ["Ocena: super!", "Recenzja: zupa była zimna, ale obsługa przemiła.",
           "Imię: Anna, 31, Gdańsk.", "Czy muzeum jest otwarte w poniedziałki?", "Produkt: stół dębowy, 990 zł."],
    "tr": ["Puan: harika!", "Yorum: çorba soğuktu ama personel çok nazikti.",
           "Ad: Ayşe, 31, İzmir.", "Müze pazartesi açık mı?", "Ürün: meşe masa, 9.000 TL."],
    "ar": ["التقييم: رائع!", "مراجعة: الحساء كان باردًا لكن الموظفين لطفاء جدًا.",
           "الاسم: سارة، 31، عمّان.", "هل المتحف مفتوح يوم الاثنين؟", "المنتج: طاولة بلوط، 240 دينارًا."],
    "ko": ["평점: 최고!", "리뷰: 국은 식었지만 직원분들이 정말 친절했어요.",
           "이름: 김지은, 31세, 부산.", "박물관 월요일에 열어요?", "상품: 원목 식탁, 32만 원."],
    "zh": ["评分：很棒！", "评论：汤是凉的，但服务员很热情。",
           "姓名：王芳，31岁，成都。", "博物馆周一开门吗？", "商品：橡木餐桌，1800元。"],
    "ja": ["評価：最高！", "レビュー：スープは冷めていたけど、店員さんはとても親切でした。",
           "名前：佐藤花子、31歳、福岡。", "博物館は月曜日も開いていますか？", "商品：オーク材のテーブル、3万円。"],
}  # fmt: skip


def developer_format(rng: random.Random, per_format: int = 3) -> list[tuple[str, str, int]]:
    """(language, text, format index): each rule alone, with ``per_format`` inputs after
    it, and after a second rule (two lines of a system prompt, then the input)."""
    out = []
    for lang, rules in FORMATS.items():
        for i, rule in enumerate(rules):
            out.append((lang, rule, i))
            for user in rng.sample(INPUTS[lang], min(per_format, len(INPUTS[lang]))):
                out.append((lang, f"{rule}\n{user}", i))
            other = rng.choice([r for r in rules if r != rule])
            out.append((lang, f"{other}\n{rule}\n{rng.choice(INPUTS[lang])}", i))
    return out
