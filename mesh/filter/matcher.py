"""Linear-time matching of concept sequences over the token stream.

How a prompt is matched, in order (one module per step):

1. ``lexicon_index``: the lexicon compiled once at import: Latin word → concepts
   (a dict), CJK terms as one regex alternation of literals factored as a trie.
2. ``latin`` / ``cjk``: the prompt's hits, i.e. every token that names a concept,
   with leetspeak, accents, spaced-out letters, glued and hyphenated words
   undone, as a :class:`~.hits.Stream` (parallel lists of position, token,
   concepts and how the token was recovered).
3. ``hits.collapse_stream``: runs of one repeated token shrink to three hits
   (a flood of "ai ai ai" cannot advance a rule further than that).
4. ``automaton.SequenceSet``: each rule sequence ("IGN, then within 4 words
   QUAL|YOUR, then INSTR") is a tiny automaton remembering, per step, the
   latest position where its prefix matched. One walk over the hits advances
   them all; a rule stops costing work once it has matched.

Why it is shaped so: every check runs on the request path, on prompts up to
100 KB written by someone trying to make it slow. No backtracking regex is
involved; each hit updates a bounded number of states, so the cost is
O(tokens) whatever the input. Within that, the work per token is kept in C:
occurrences are found and filtered with ``map``/``compress``/``zip`` over lists,
Python code runs once per *distinct* token, and hit objects are only built
for the hits the automaton walks (``python -m tools.filter_bench`` measures it).
"""

from __future__ import annotations

from .automaton import BLOCK_GAP, ConceptSequence, SeqMatch, SequenceSet, Step
from .cjk import CJK_ANY_RE, CJK_POS_SCALE, cjk_stream, cjk_text
from .hits import EMPTY, Hit, Stream, collapse_runs, collapse_stream, from_hits, merge
from .latin import MAX_SEGMENTED, SEGMENT_MAX, SEGMENT_MIN, latin_stream
from .lexicon_index import (
    CJK_INDEX,
    GLUE_WORDS,
    LANGS,
    LATIN_INDEX,
    Concepts,
    build_index,
    expand,
    segment,
    trie_pattern,
)

__all__ = [
    "BLOCK_GAP",
    "CJK_ANY_RE",
    "CJK_INDEX",
    "CJK_POS_SCALE",
    "EMPTY",
    "GLUE_WORDS",
    "LANGS",
    "LATIN_INDEX",
    "MAX_SEGMENTED",
    "SEGMENT_MAX",
    "SEGMENT_MIN",
    "ConceptSequence",
    "Concepts",
    "Hit",
    "SeqMatch",
    "SequenceSet",
    "Step",
    "Stream",
    "build_index",
    "cjk_stream",
    "cjk_text",
    "collapse_runs",
    "collapse_stream",
    "expand",
    "from_hits",
    "latin_stream",
    "merge",
    "segment",
    "trie_pattern",
]
