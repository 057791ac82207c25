"""Behaviour layer: attacks spread over several requests of one sender.

History key: (tenant, user) where ``user`` is OpenAI's ``user`` field ("" when
absent), so two end users of one tenant never share a history. A ``user``
longer than ``MAX_USER_CHARS`` is kept as a 16-byte digest: any string is
accepted (as OpenAI does) and no key costs more than that.

Memory is bounded per tenant, so one tenant can never evict another's
histories by sending many ``user`` values:

* at most ``max_users_per_tenant`` user histories per tenant (LRU inside it);
* at most ``max_keys`` user histories in all: past that, a tenant at or above
  its fair share (``max_keys / tenants``) evicts its own least recent user,
  otherwise the largest tenant does;
* at most ``max_tenants`` tenants (LRU over tenants, authenticated by the router);
* each history at most ``history`` entries of at most ``tail_chars``
  characters; entries older than ``max_age_s`` are dropped.

Defaults: 1,000 users a tenant, 20,000 in all, 1,000 tenants. A full history
(four 200-character tails, a 256-character ``user``) takes about 2.8 KB, so
all of them at most about 60 MB, plus about 2 KB a tenant for its tenant-wide
history (``tests/filter/test_behavior.py`` measures it).

Fresh-user floods: a sender who uses a new ``user`` for every request has no
per-user history to check against. Each tenant therefore also keeps ONE
tenant-wide history of all its prompts. When a tenant brings more than
``fresh_user_limit`` first-seen users within ``fresh_window_s`` (default 20 a
minute, ``LLMAAS_FILTER_FRESH_USERS``), it is flooding: until a window passes
without such a flood, each prompt is checked against its user's history AND
the tenant-wide one (a tenant with that many new end users a minute shares one
history: raise the limit for such a tenant population). A slower trickle of
fresh users is not caught this way: that is the limit of a per-user history.

* Fragmentation: the recent prompts plus the current one are joined and run
  through the pattern layer and the learned layer again. A rule that fires on the
  joined text but on none of its parts alone is an attack split across requests
  ("ignore" then "all previous instructions"), blamed on the prompt that completes
  it: not on the later ones, whose earlier prompts fire it without them.
  A prompt whose quotes the quote policy excused (a question about a quoted attack, a
  discussion quoting one) joins with the text outside its quotes, unless the current
  prompt says to carry the quote out ("do it", "your turn": ``follow_up.orders_quoted``;
  then the quote is read as said). Joined raw, the quote lost its question and every
  later prompt of the user read as its fragment: one allowed question locked the user
  out for up to four prompts.
* Repetition: the same (normalised) prompt ``repeat_limit`` times in a row is
  blocked; with the default 30, the 29th identical prompt passes.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import is_

from mesh.config import ConfigError, env

from .follow_up import orders_quoted
from .normalize import fold_text
from .patterns import rule_ids
from .quoting import META_MAX_CHARS, quote_context
from .rejoin import PROMPT_BREAK, blocking_pattern_reasons, learned_reasons
from .verdict import Reason

log = logging.getLogger("llmaas.filter")
LAYER = "behavior"
MAX_USER_CHARS = 256
NO_RULES: frozenset[str] = frozenset()  # shared: an empty frozenset is 216 bytes each
UserKey = str | bytes  # the user itself, or the digest of a long one (never equal to a str)


def user_key(user: str) -> UserKey:
    """``user`` itself, or a 16-byte digest of it past ``MAX_USER_CHARS``."""
    if len(user) <= MAX_USER_CHARS:
        return user
    return hashlib.blake2b(user.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def fresh_user_limit_from_env() -> int:
    """``LLMAAS_FILTER_FRESH_USERS`` (20): 0 checks every tenant tenant-wide as well."""
    limit = env("LLMAAS_FILTER_FRESH_USERS", int, 20)
    if limit < 0:
        raise ConfigError(f"LLMAAS_FILTER_FRESH_USERS={limit} must be 0 or more")
    return limit


@dataclass(frozen=True, slots=True)
class Entry:
    at: float
    tail: str  # last ``tail_chars`` characters: enough to rejoin a fragment
    rules: frozenset[str]  # blocking pattern rules the prompt fired on its own
    # the tail of the text outside the quotes, when the quote policy excused a hit
    outside: str | None = None
    # its prompt is one the learned layer may read as a question about its quotes
    # (``quoting.META_MAX_CHARS``): so is its tail in a rejoin; not a long prompt's tail
    short: bool = True


@dataclass(slots=True)
class History:
    entries: deque[Entry]
    last_digest: bytes = b""
    run: int = 0  # consecutive identical prompts, current one included

    def expire(self, now: float, max_age_s: float) -> None:
        while self.entries and now - self.entries[0].at > max_age_s:
            self.entries.popleft()
        if not self.entries:
            self.run = 0

    def record(self, entry: Entry, digest: bytes) -> tuple[list[Entry], int]:
        """Appends ``entry``; returns the entries before it and the identical-prompt run."""
        previous = list(self.entries)
        self.run = self.run + 1 if digest == self.last_digest else 1
        self.last_digest = digest
        self.entries.append(entry)
        return previous, self.run


@dataclass(slots=True)
class TenantState:
    users: OrderedDict[UserKey, History]  # least recently used first
    shared: History  # every prompt of the tenant, whoever sent it
    fresh: deque[float]  # arrival times of recent first-seen users (bounded)
    flood_until: float = -math.inf  # checked against ``shared`` too until then


@dataclass
class BehaviorTracker:
    history: int = 4  # prompts kept per key (fragments are short and consecutive)
    max_age_s: float = 600.0
    max_keys: int = 20_000  # user histories in all
    max_users_per_tenant: int = 1_000
    max_tenants: int = 1_000
    fresh_user_limit: int = field(default_factory=fresh_user_limit_from_env)
    fresh_window_s: float = 60.0
    repeat_limit: int = 30
    tail_chars: int = 200  # only the end of a previous prompt can continue into the next
    head_chars: int = 200
    clock: Callable[[], float] = time.monotonic
    _tenants: OrderedDict[UserKey, TenantState] = field(
        default_factory=OrderedDict, init=False, repr=False
    )
    _total: int = field(default=0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __len__(self) -> int:
        """User histories held, all tenants together."""
        return self._total

    def users_of(self, tenant: str) -> int:
        state = self._tenants.get(user_key(tenant))
        return len(state.users) if state else 0

    def flooding(self, tenant: str) -> bool:
        state = self._tenants.get(user_key(tenant))
        return state is not None and self.clock() < state.flood_until

    def check(
        self,
        tenant: str,
        user: str,
        prompt: str,
        own_rules: frozenset[str] | None = None,
        folded: str | None = None,
        digest: bytes | None = None,
        quoted: bool = False,
        head: str | None = None,
    ) -> list[Reason]:
        """Record ``prompt`` and return behaviour reasons for it.

        ``own_rules``: the blocking pattern rules of ``prompt`` alone, and
        ``folded``: its normalised text (or ``digest``: :func:`prompt_digest`
        of it), if the caller already has them (each saves a pass over the prompt).
        ``quoted``: the quote policy excused one of its hits (``quoting.quote_excused``).
        ``head``: where the prompt's own words start, when it does not start with them (a
        chat's conversation after its system message: ``instructions.py``).
        """
        now = self.clock()
        head, short = cut_head(prompt if head is None else head, self.head_chars)
        rules = (
            own_rules
            if own_rules is not None
            else rule_ids(head + " " + prompt[-self.tail_chars :])
        )
        if digest is None:
            digest = prompt_digest(folded if folded is not None else fold_text(prompt))
        quiet_tail, quiet_head = self.outside_ends(prompt, quoted)
        entry = Entry(now, prompt[-self.tail_chars :], rules or NO_RULES, quiet_tail, short)
        with self._lock:
            state = self._tenant(user_key(tenant))
            was_flooding = now < state.flood_until
            hist = self._history(state, user_key(user), now)
            mine = hist.record(entry, digest)
            state.shared.expire(now, self.max_age_s)
            shared = state.shared.record(entry, digest)
            flooding = now < state.flood_until
        if flooding and not was_flooding:
            log.warning(
                "tenant %s brought more than %d new users in %.0f s: its prompts are also "
                "checked against one tenant-wide history (LLMAAS_FILTER_FRESH_USERS)",
                tenant[:MAX_USER_CHARS],
                self.fresh_user_limit,
                self.fresh_window_s,
            )
        reasons = self._reasons(*mine, head, rules, quiet_head=quiet_head, short=short)
        if flooding:
            # The same Entry objects go to both histories: when this user sent the tenant's
            # last prompts too, the tenant-wide join is the one just checked.
            same = len(mine[0]) == len(shared[0]) and all(map(is_, mine[0], shared[0]))
            seen = {r.rule for r in reasons}
            reasons += [
                r
                for r in self._reasons(
                    *shared,
                    head,
                    rules,
                    "tenant-wide ",
                    fragments=not same,
                    quiet_head=quiet_head,
                    short=short,
                )
                if r.rule not in seen
            ]
        return reasons

    def _reasons(
        self,
        previous: list[Entry],
        run: int,
        head: str,
        rules: frozenset[str],
        scope: str = "",
        fragments: bool = True,
        quiet_head: str | None = None,
        short: bool = True,
    ) -> list[Reason]:
        reasons = (
            self._fragment_reasons(previous, head, rules, scope, quiet_head, short)
            if fragments
            else []
        )
        if run >= self.repeat_limit:
            reasons.append(
                Reason(
                    LAYER,
                    "behavior.repeated_prompt",
                    0.95,
                    head[:40],
                    f"{run} {scope}identical prompts in a row",
                )
            )
        return reasons

    def outside_ends(self, prompt: str, quoted: bool) -> tuple[str | None, str | None]:
        """The tail and head kept of a prompt's text outside its quotes, when the quote
        policy excused one of its hits (``quoted``); (None, None): it joins as it is."""
        context = quote_context(prompt) if quoted else None
        if context is None:
            return None, None
        return context[0][-self.tail_chars :], context[0][: self.head_chars]

    def _tenant(self, key: UserKey) -> TenantState:
        state = self._tenants.get(key)
        if state is None:
            state = TenantState(
                OrderedDict(),
                History(deque(maxlen=self.history)),
                deque(maxlen=self.fresh_user_limit + 1),
            )
            self._tenants[key] = state
            while len(self._tenants) > self.max_tenants:
                _, gone = self._tenants.popitem(last=False)  # least recently used tenant
                self._total -= len(gone.users)
        else:
            self._tenants.move_to_end(key)
        return state

    def _history(self, state: TenantState, key: UserKey, now: float) -> History:
        hist = state.users.get(key)
        if hist is not None:
            state.users.move_to_end(key)
            hist.expire(now, self.max_age_s)
            return hist
        self._note_fresh_user(state, now)
        hist = History(deque(maxlen=self.history))
        state.users[key] = hist
        self._total += 1
        if len(state.users) > self.max_users_per_tenant:
            state.users.popitem(last=False)
            self._total -= 1
        while self._total > self.max_keys:
            self._evict_one(state)
        return hist

    def _note_fresh_user(self, state: TenantState, now: float) -> None:
        fresh = state.fresh
        fresh.append(now)  # keeps the last fresh_user_limit + 1 arrivals
        if len(fresh) > self.fresh_user_limit and now - fresh[0] <= self.fresh_window_s:
            state.flood_until = now + self.fresh_window_s

    def _evict_one(self, inserting: TenantState) -> None:
        # A tenant at or above its fair share pays for its own insert; one below it never
        # loses a history to another tenant's flood.
        if len(inserting.users) * len(self._tenants) >= self._total:
            victim = inserting
        else:
            victim = max(self._tenants.values(), key=lambda s: len(s.users))
        victim.users.popitem(last=False)
        self._total -= 1

    def _fragment_reasons(
        self,
        previous: list[Entry],
        head: str,
        rules: frozenset[str],
        scope: str = "",
        quiet_head: str | None = None,
        short: bool = True,
    ) -> list[Reason]:
        """``quiet_head``: the current prompt's head outside its quotes, when the quote
        policy excused one of its hits; ``short``: as ``Entry.short``, for the head."""
        if not previous:
            return []
        said = [e.tail for e in previous]
        quiet = [e.tail if e.outside is None else e.outside for e in previous]
        # quotes stay talked about unless this prompt carries them out (one the quote
        # policy excused orders nothing: its DOING_RE found no order)
        talked = quiet_head is not None or (quiet != said and not orders_quoted(head))
        tails = quiet if talked else said
        head = head if quiet_head is None else quiet_head
        # carried out, a quoted attack is read as said: no quote policy for the rejoin
        carried = quiet != said and not talked
        # A filler word between prompts: words from two prompts count one step
        # further apart than inside one prompt.
        # The same prompt n times in a row joins once: a repeat is the repetition rule's,
        # not a split attack (the learned rejoin reads its parts so too).
        parts = _once([*zip(tails, [e.short for e in previous], strict=True), (head, short)])
        joined = PROMPT_BREAK.join(text for text, _ in parts)
        known = rules.union(*(e.rules for e in previous))
        shorts = tuple(s for _, s in parts)
        found = blocking_pattern_reasons(joined, not carried) + learned_reasons(
            joined, shorts, known
        )
        if found:
            # the current prompt must complete it: a rule the earlier prompts fire without
            # it was blamed on the prompt that did complete it, not on every later one
            # (its quotes read as talked about: "do it" completes a quoted attack)
            known = known.union(r.rule for r in blocking_pattern_reasons(PROMPT_BREAK.join(quiet)))
        return [
            Reason(
                LAYER,
                "behavior.fragmented_attack",
                0.85,
                r.span,
                f"{r.rule} across {len(previous) + 1} {scope}prompts",
            )
            for r in found
            if r.rule not in known
        ]


def _once(parts: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """``parts`` without the consecutive repeats."""
    return [p for k, p in enumerate(parts) if k == 0 or p != parts[k - 1]]


def cut_head(text: str, chars: int) -> tuple[str, bool]:
    """The first ``chars`` of a prompt (or of a chat's conversation), and whether the text
    is short enough for the learned layer's question reading (``Entry.short``). A chat's
    head comes cut already (``instructions.conversation_head``): it counts as short, as
    its conversation may be."""
    return text[:chars], len(text) <= META_MAX_CHARS


def prompt_digest(folded: str) -> bytes:
    """Identical up to case, lookalikes, invisibles and whitespace."""
    canon = _collapse_spaces(folded)
    return hashlib.blake2b(canon.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _collapse_spaces(text: str) -> str:
    """``" ".join(text.split())``, without splitting when the text is already so.

    In ASCII text the only whitespace ``split`` knows besides " " are these few control
    characters (one memchr each); without them and without a double space, the result
    is the text stripped of spaces. Splitting costs one string per word.
    """
    if text.isascii() and "  " not in text and not any(map(text.__contains__, _ASCII_WS)):
        return text.strip(" ")
    return " ".join(text.split())


_ASCII_WS = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"  # str.split()'s ASCII whitespace, less " "
