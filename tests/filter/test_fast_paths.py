"""The filter's fast paths (#18) against plain reference versions, on random inputs.

Each fast path (C-level passes, pre-gates, byte shapes) must give exactly what the
straightforward code gives: the verdicts may not change. The references here are the
simple forms (one regex, one loop) the fast paths replaced.
"""

from __future__ import annotations

import platform
import random
import re
from itertools import chain

import numpy as np
import pytest

from mesh.filter import (
    behavior,
    encoded,
    joined_parts,
    learned,
    normalize,
    prepared,
    repetition,
    spaced,
    split_variables,
    token_chars,
)
from mesh.filter.automaton import BLOCK_GAP, ConceptSequence, SequenceSet
from mesh.filter.heap import keep_freed_memory
from mesh.filter.hits import Stream, merge
from mesh.filter.lexicon_index import LATIN_INDEX

LATIN1 = [chr(i) for i in range(256)]
WIDE = ["μ", "а", "\u200b", "\u2066", "€", "中", "\u3000", "\U000e0041", "ａ", "—"]


def _texts(seed: int, n: int, alphabet: list[str], length: int = 30) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randrange(length))) for _ in range(n)]


def test_tokens_match_the_token_regex_on_ascii_latin1_and_wider_text():
    for text in _texts(1, 3000, LATIN1) + _texts(2, 1000, LATIN1 + WIDE):
        assert normalize.tokenize(text) == normalize._TOKEN_RE.findall(text), repr(text)


def test_latin1_shortcuts_match_their_regexes():
    for text in _texts(3, 3000, LATIN1 + WIDE, 12):
        assert normalize.has_special(text) == bool(normalize.SPECIAL_RE.search(text)), repr(text)
        assert normalize.has_confusable(text) == bool(normalize.CONFUSABLE_RE.search(text))


def _join_reference(words: list[str]) -> tuple[list[str], set[int]]:
    """Runs of >= 4 one-character tokens joined (first MAX_JOINED kept), then stop words
    dropped except joined tokens; indices of the joined ones in the result."""
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(words):
        j = i
        while j < len(words) and len(words[j]) == 1:
            j += 1
        if j - i >= 4:
            out.append(("".join(words[i:j])[: spaced.MAX_JOINED], True))
            i = j
        else:
            out.append((words[i], False))
            i += 1
    kept = [(w, joined) for w, joined in out if joined or w not in spaced.STOPWORDS]
    return [w for w, _ in kept], {k for k, (_, joined) in enumerate(kept) if joined}


@pytest.mark.parametrize("many", [False, True])
def test_spaced_letters_are_joined_as_the_reference_does(many):
    rng = random.Random(4 + many)
    vocab = ["a", "b", "e", "t", "x", "y", "é", "the", "ignore", "xx", "this", "ab", "-", "--"]
    for _ in range(1500):
        words = [rng.choice(vocab) for _ in range(rng.randrange(600 if many else 40))]
        if rng.random() < 0.1:
            words[rng.randrange(len(words) + 1) :] = ["a"] * rng.randrange(250, 400)
        assert spaced.join_spaced(words) == _join_reference(words), words


def _merge_reference(parts: list[Stream]) -> tuple:
    hits = list(
        chain.from_iterable(zip(p.pos, p.tok, p.con, p.vias(), strict=False) for p in parts)
    )
    hits.sort(key=lambda h: h[0])
    if not hits:
        return ([], [], [], None)
    pos, tok, con, via = (list(x) for x in zip(*hits, strict=True))
    return (pos, tok, con, via if any(p.via is not None for p in parts if p.tok) else None)


def test_merge_is_a_stable_sort_by_position():
    rng = random.Random(6)

    def stream(n: int) -> Stream:
        pos = sorted(rng.randrange(60) + rng.choice([0, 0, 0.01, 0.02]) for _ in range(n))
        tok = [f"t{rng.randrange(9)}" for _ in range(n)]
        via = [rng.choice(["", "leet"]) for _ in range(n)] if rng.random() < 0.5 else None
        return Stream(pos, tok, [frozenset({t}) for t in tok], via)

    for _ in range(3000):
        parts = [stream(rng.choice([0, 1, 3, 40, 300])) for _ in range(rng.randrange(1, 5))]
        assert tuple(merge(parts)) == _merge_reference(parts)


def _phrase_reference(words: list[str]) -> repetition.RepeatHit | None:
    marks_of = {p: bytes(map(lambda a, b: a == b, words, words[p:])) for p in (1, 2, 3)}
    best = None
    for period in range(1, repetition.MAX_PERIOD + 1):
        marks = marks_of[period]
        for repeats, score in ((repetition.STRONG_REPEATS, 0.75), (repetition.WEAK_REPEATS, 0.35)):
            start = repetition._find_wordy_run(words, marks, period, repeats)
            if start >= 0:
                if best is None or score > best.score:
                    phrase = " ".join(words[start : start + period])
                    best = repetition.RepeatHit(
                        "patterns.repetition",
                        score,
                        phrase,
                        f"'{phrase}' repeated {repeats}+ times",
                    )
                break
    return best


def test_repeated_phrases_and_attack_words_are_found_as_without_the_gates():
    rng = random.Random(7)
    vocab = ["ignore", "forget", "poem", "la", "0", "x", "ab", "yes", "no"]
    for _ in range(2000):
        words = [rng.choice(vocab) for _ in range(rng.randrange(80))]
        if rng.random() < 0.5:  # plant a periodic run
            at, period = rng.randrange(len(words) + 1), rng.randrange(1, 4)
            unit = [rng.choice(vocab) for _ in range(period)]
            words[at:at] = unit * rng.randrange(2, 20)
        assert repetition.repeated_phrase(words) == _phrase_reference(words), words
        found = repetition.repeated_attack_word(words)
        runs = [
            i
            for i in range(len(words) - 2)
            if words[i] == words[i + 1] == words[i + 2]
            and LATIN_INDEX.get(words[i], frozenset()) & repetition.ATTACK_CONCEPTS
        ]
        assert (found is None) == (not runs), words


def test_long_tokens_spaced_hex_probe_and_alphabet_gates_match_the_plain_scans():
    rng = random.Random(8)
    pieces = ["aGVsbG8gd29ybGQgdGhpcyBpcyBh", "69676e6f726520616c6c", "\\x69\\x67", "0x41:0x42,",
              " ", "\n", "\t", "é", "系统", "e8 a8 80 e8", "ab:cd:ef:01", "x", "-_", "\u3000",
              "\xa0", "\x85", "\u2028", "\u2009", "\u200b", "\x1c"]  # fmt: skip
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 14)))
        assert list(encoded._long_tokens(text)) == [w for w in text.split() if len(w) >= 16]
        head = text[: encoded.MAX_SPACED_SCAN]
        shape = head.encode("utf-8", "surrogatepass").translate(encoded.PROBE_SHAPE)
        found = bool(encoded._SPACED_HEX_PROBE_RE.search(head))
        assert encoded._has_spaced_hex(head, shape) == found
        # The alphabet gates may only skip a scan that finds nothing.
        data = text.encode("utf-8", "surrogatepass")
        may = {
            "hex": encoded._RUN_OF_16 in data.translate(encoded._HEX_SHAPE),
            "base64": encoded._RUN_OF_16 in data.translate(encoded._B64_SHAPE),
        }
        for kind, rx in (("hex", encoded._HEX_RE), ("base64", encoded._B64_RE)):
            found = [m for w in text.split() if len(w) >= 16 for m in rx.finditer(w)]
            assert may[kind] or not found, text


def test_spaces_collapse_as_split_and_join_do():
    for text in _texts(9, 5000, ["a", "b", " ", "  ", "\t", "\n", "\x1c", "\xa0", "é", "\u3000"]):
        assert behavior._collapse_spaces(text) == " ".join(text.split()), repr(text)


def _walk_reference(seqs: list[ConceptSequence], hits: list[tuple]) -> list[tuple]:
    """One match per sequence: the latest prefix position per step, as the automaton keeps
    it; a step 0 is cancelled by a blocker concept seen at most BLOCK_GAP before."""
    at = [[None] * len(s.steps) for s in seqs]
    origin = [[None] * len(s.steps) for s in seqs]
    done, out, last_seen = set(), [], {}
    for pos, tok, con, via in hits:
        for si, s in enumerate(seqs):
            if si in done:
                continue
            for k in reversed(range(len(s.steps))):
                if not s.steps[k] & con:
                    continue
                if k == 0:
                    if any(0 < pos - last_seen.get(c, -1e9) <= BLOCK_GAP for c in s.unless):
                        continue
                    at[si][0], origin[si][0] = pos, (pos, via, tok)
                else:
                    prev = at[si][k - 1]
                    if prev is None or not 0 < pos - prev <= s.gaps[k - 1]:
                        continue
                    p = origin[si][k - 1]
                    at[si][k], origin[si][k] = pos, (p[0], p[1] or via, p[2])
                if k == len(s.steps) - 1:
                    done.add(si)
                    o = origin[si][k]
                    out.append((si, o[0], pos, o[1], o[2], tok))
                    break
        for c in con:
            last_seen[c] = pos
    return out


def test_the_automaton_walk_matches_a_plain_walk():
    rng = random.Random(10)
    names = "ABCDEF"

    def sets() -> frozenset[str]:
        return frozenset(rng.sample(names, rng.randrange(1, 3)))

    for _ in range(1500):
        seqs = []
        for _ in range(rng.randrange(1, 5)):
            n = rng.randrange(1, 4)
            steps = tuple(sets() for _ in range(n))
            gaps = tuple(float(rng.randrange(1, 4)) for _ in range(n - 1))
            unless = frozenset(rng.sample(names, 1)) if rng.random() < 0.3 else frozenset()
            seqs.append(ConceptSequence(steps, gaps, unless))
        hits, pos = [], 0
        for _ in range(rng.randrange(40)):
            pos += rng.choice([0.01, 1, 1, 2, 3])
            hits.append((pos, f"w{rng.randrange(5)}", sets(), rng.choice(["", "", "leet"])))
        stream = Stream(*map(list, zip(*hits, strict=True))) if hits else Stream([], [], [])
        got = [(m.seq_index, m.start, m.end, m.via, m.first_token, m.last_token)
               for m in SequenceSet(seqs).run_stream(stream)]  # fmt: skip
        # (Sequences completed by the same hit may come in another order: compare as sets.)
        assert sorted(got) == sorted(_walk_reference(seqs, hits)), (seqs, hits)


def test_template_gate_holds_every_literal_the_regex_needs():
    from mesh.filter.patterns import TEMPLATE_RE, _may_have_template

    samples = ["<|im_start|>", "<< sys >>", "<<sys>>", "[inst]", "[/inst]", "<|eot_id|>"]
    for text in samples + _texts(11, 3000, list("<|>[]/inst sy_"), 14):
        assert bool(TEMPLATE_RE.search(text)) <= _may_have_template(text), repr(text)


def test_the_last_text_memos_answer_for_that_very_object_only():
    texts = ["Straße µ", "Straße µ".encode().decode(), "раураl", "ok\u200b", "ok"]
    for _ in range(2):
        for text in texts + texts[::-1]:
            assert normalize.casefold(text) == text.casefold()
            assert normalize.has_special(text) == bool(normalize.SPECIAL_RE.search(text))
            assert normalize.has_confusable(text) == bool(normalize.CONFUSABLE_RE.search(text))
        normalize.forget_last()
        assert normalize._casefold_of.entries == ()


def test_the_rot13_name_gate_matches_the_plain_test():
    def plain(head: str) -> bool:
        return ("13" in head or "sar" in head.lower()) and bool(encoded._ROT13_HINT_RE.search(head))

    rng = random.Random(12)
    pieces = ["rot", "ROT", "13", " ", "-", "caesar", "CAESAR", "caeſar", "césar", "CÉSAR",
              "cäsar", "sar", "SAR", "ſ", "x", "Rot-13", "é", "a", "c"]  # fmt: skip
    for _ in range(20000):
        head = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 8)))
        assert encoded._names_rot13(head) == plain(head), repr(head)


@pytest.mark.parametrize("module", ["addressed", "assembled", "context_dump", "refusal"])
def test_anchor_literals_find_what_their_alternation_finds(module):
    """``anchored.Literals`` (Aho-Corasick, leftmost-longest) replaced regex alternations
    of the same words: the same spans, on random text built from the words' own letters,
    pieces of the words and whole words glued together."""
    import importlib

    from mesh.filter.anchored import Literals
    from mesh.filter.lexicon_index import alternation

    anchors = importlib.import_module(f"mesh.filter.{module}")._ANCHORS
    literals = next(a for a in anchors if isinstance(a, Literals))
    words = literals.words
    reference = alternation(words)
    letters = sorted(set("".join(words))) + [" ", "'", "中"]
    rng = random.Random(7)
    pieces = words + [w[: len(w) // 2] for w in words] + letters
    texts = _texts(8, 500, letters, 40)
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randrange(12))) for _ in range(3000)]
    for text in texts:
        assert list(literals.spans(text)) == [m.span() for m in reference.finditer(text)], text


def test_confusable_folding_matches_translate():
    lookalikes = list(normalize.CONFUSABLES) + ["\ud800", "\U0001d41a", "中", "a", " "]
    for text in _texts(9, 300, LATIN1 + WIDE + lookalikes, 1200):
        assert normalize.fold_confusables(text) == text.translate(normalize._CONFUSABLE_TABLE)


def test_the_token_table_finds_the_regexs_tokens_in_every_plane():
    """``token_chars`` (a table of the BMP, astral characters one by one) against the regex
    on the text without Arabic's marks and tatweel, on text from every range (Arabic's
    among them), lone surrogates included."""
    rng = random.Random(7)
    planes = [(0, 0x80), (0x80, 0x800), (0x600, 0x700), (0x800, 0x10000), (0x10000, 0x110000)]
    marks = re.compile("[\u0640\u064b-\u065f\u0670]")
    for _ in range(2000):
        lo, hi = rng.choice(planes)
        text = "".join(chr(rng.randrange(lo, hi)) for _ in range(rng.randrange(80)))
        assert token_chars.tokens(text) == normalize._TOKEN_RE.findall(marks.sub("", text))


def test_the_learned_sums_are_those_of_the_masked_form():
    """``Model.contributions`` zeroes the ids past each order's end instead of multiplying
    by a mask of the whole matrix: the same sums, to the bit."""
    model = learned.model()
    assert model is not None, "the learned layer's weights (versioned in the repo) are missing"
    for text in ["", "a", "ab", "abcdef", "abcdefg"] + _texts(5, 200, LATIN1 + WIDE, 300):
        cps = learned.prepare(normalize.fold_text(text))
        n = len(cps)
        valid = np.arange(n) < np.array(learned.valid_until(n))[:, None]
        w = np.take(model.weights, learned.ngram_matrix(cps))
        got = model.contributions(cps)
        assert np.array_equal(got[0], (w * valid).sum(axis=0))
        assert np.array_equal(got[1], valid.sum(axis=0, dtype=np.float32))


def test_part_words_are_found_where_their_alternation_finds_them():
    from mesh.filter.lexicon_index import alternation

    words = list(joined_parts._PART_WORDS)
    rng = random.Random(9)
    pieces = words + [w[: len(w) // 2] for w in words] + list("part 12:.ab") + WIDE
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randrange(12))) for _ in range(3000)]
    for text in texts + ["Part A: x. Part B: y.", "第一部分：甲 第二部分：乙", "counterpart 1:"]:
        folded = text.casefold()
        spans = [m.span() for m in alternation(words).finditer(folded)]
        assert list(joined_parts.PART_WORDS.spans(folded)) == spans, repr(text)
    assert len(joined_parts.labels("part a: x. part b: y.")) == 2


def test_the_heap_tuning_takes_on_glibc_and_is_idempotent():
    kept = keep_freed_memory()
    assert kept is (platform.libc_ver()[0] == "glibc")  # musl, macOS: left as they are
    assert keep_freed_memory() is kept


def test_assignments_are_those_of_a_scan_of_every_position():
    alphabet = list("ab1 =:＝'\"«»“”「」x\n") + ["é", "П", "中", "ab", "_"]
    for text in _texts(11, 4000, alphabet, 60) + ["a = 'how to make', b = ' a pipe', c='x'"]:
        plain = {
            m.group(1).casefold(): m.group(2) for m in split_variables.ASSIGN_RE.finditer(text)
        }
        assert split_variables.assignments(text) == plain, repr(text)


def test_the_prepared_classes_are_those_of_the_comparisons():
    """``prepared.prepare`` classes characters with one gather (``_KIND``): the same sets as
    the comparisons it replaced, for every code point."""
    cps = np.arange(0x3000, dtype=np.int64)
    kind = prepared._KIND[np.minimum(cps, len(prepared._KIND) - 1)]
    ws = (cps == 32) | ((cps >= 9) & (cps <= 13))
    hexd = ((cps >= 48) & (cps <= 57)) | ((cps >= 97) & (cps <= 102))
    b64 = ((cps >= 97) & (cps <= 122)) | ((cps >= 48) & (cps <= 57)) | (cps == 43) | (cps == 47)
    assert np.array_equal((kind & prepared._WS) != 0, ws)
    assert np.array_equal((kind & prepared._HEX) != 0, hexd)
    assert np.array_equal((kind & prepared._B64) != 0, b64)


def test_the_wide_cjk_terms_are_the_matches_of_their_alternation():
    from mesh.filter import cjk
    from mesh.filter.lexicon_index import CJK_INDEX, capturing

    words = cjk.WIDE_TERMS.words
    reference = capturing(words)
    rng = random.Random(13)
    pieces = words + [w[: len(w) // 2] for w in words] + list("的了是 ai,。") + WIDE
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randrange(16))) for _ in range(3000)]
    assert all(not w.isascii() for w in words) and len(words) < len(CJK_INDEX)
    for text in texts:
        assert cjk._literal_hits(cjk.WIDE_TERMS, text) == cjk._split_hits(reference, text), text
