"""Behaviour layer: attacks spread over several requests of one sender.

History key: (tenant, user) where ``user`` is OpenAI's ``user`` field ("" when
absent), so two end users of one tenant never share a history.

Memory is flat under any load: at most ``max_keys`` histories (LRU eviction),
each at most ``history`` entries of at most ``tail_chars`` characters, and
entries older than ``max_age_s`` are dropped.

* Fragmentation: the recent prompts plus the current one are joined and run
  through the pattern layer again. A rule that fires on the joined text but on
  none of its parts alone is an attack split across requests ("ignore" then
  "all previous instructions").
* Repetition: the same (normalised) prompt ``repeat_limit`` times in a row is
  blocked; with the default 30, the 29th identical prompt passes.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .normalize import fold_text
from .patterns import BLOCKING, check_patterns, rule_ids
from .verdict import Reason

LAYER = "behavior"
PROMPT_BREAK = " pb "  # one token (Latin), about one word (CJK)
Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Entry:
    at: float
    tail: str  # last ``tail_chars`` characters: enough to rejoin a fragment
    rules: frozenset[str]  # blocking pattern rules the prompt fired on its own


@dataclass(slots=True)
class History:
    entries: deque[Entry]
    last_digest: bytes = b""
    run: int = 0  # consecutive identical prompts, current one included


@dataclass
class BehaviorTracker:
    history: int = 4  # prompts kept per key (fragments are short and consecutive)
    max_age_s: float = 600.0
    max_keys: int = 10_000
    repeat_limit: int = 30
    tail_chars: int = 200  # only the end of a previous prompt can continue into the next
    head_chars: int = 200
    clock: Callable[[], float] = time.monotonic
    _keys: OrderedDict[Key, History] = field(default_factory=OrderedDict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __len__(self) -> int:
        return len(self._keys)

    def check(
        self,
        tenant: str,
        user: str,
        prompt: str,
        own_rules: frozenset[str] | None = None,
        folded: str | None = None,
    ) -> list[Reason]:
        """Record ``prompt`` and return behaviour reasons for it.

        ``own_rules``: the blocking pattern rules of ``prompt`` alone, and
        ``folded``: its normalised text, if the caller already has them (each
        saves a pass over the prompt).
        """
        now = self.clock()
        head = prompt[: self.head_chars]
        rules = (
            own_rules
            if own_rules is not None
            else rule_ids(head + " " + prompt[-self.tail_chars :])
        )
        digest = _digest(folded if folded is not None else fold_text(prompt))
        with self._lock:
            hist = self._history((tenant, user), now)
            previous = list(hist.entries)
            hist.run = hist.run + 1 if digest == hist.last_digest else 1
            hist.last_digest = digest
            run = hist.run
            hist.entries.append(Entry(now, prompt[-self.tail_chars :], rules))
        reasons = self._fragment_reasons(previous, head, rules)
        if run >= self.repeat_limit:
            reasons.append(
                Reason(
                    LAYER,
                    "behavior.repeated_prompt",
                    0.95,
                    head[:40],
                    f"{run} identical prompts in a row",
                )
            )
        return reasons

    def _history(self, key: Key, now: float) -> History:
        hist = self._keys.get(key)
        if hist is None:
            hist = History(deque(maxlen=self.history))
            self._keys[key] = hist
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)  # least recently used
        else:
            self._keys.move_to_end(key)
            while hist.entries and now - hist.entries[0].at > self.max_age_s:
                hist.entries.popleft()
            if not hist.entries:
                hist.run = 0
        return hist

    def _fragment_reasons(
        self, previous: list[Entry], head: str, rules: frozenset[str]
    ) -> list[Reason]:
        if not previous:
            return []
        # A filler word between prompts: words from two prompts count one step
        # further apart than inside one prompt.
        joined = PROMPT_BREAK.join([e.tail for e in previous] + [head])
        known = rules.union(*(e.rules for e in previous))
        return [
            Reason(
                LAYER,
                "behavior.fragmented_attack",
                0.85,
                r.span,
                f"{r.rule} across {len(previous) + 1} prompts",
            )
            for r in check_patterns(joined)
            if r.score >= BLOCKING and r.rule not in known
        ]


def _digest(folded: str) -> bytes:
    # Identical up to case, lookalikes, invisibles and whitespace.
    canon = " ".join(folded.split())
    return hashlib.blake2b(canon.encode("utf-8", "surrogatepass"), digest_size=16).digest()
