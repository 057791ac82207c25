"""The three layers put together: one call, one verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

from .behavior import BehaviorTracker
from .normalize import normalize
from .patterns import BLOCKING, check_patterns
from .structure import check_structure
from .verdict import BLOCK_THRESHOLD, Verdict, combine


@dataclass
class PromptFilter:
    """Stateful filter: holds the behaviour history. One per sidecar process."""

    tracker: BehaviorTracker = field(default_factory=BehaviorTracker)
    threshold: float = BLOCK_THRESHOLD

    def check(self, prompt: str, tenant: str = "", user: str = "") -> Verdict:
        structure = check_structure(prompt)
        norm = normalize(prompt)
        patterns = check_patterns(norm)
        own = frozenset(r.rule for r in patterns if r.score >= BLOCKING)
        behavior = self.tracker.check(tenant, user, prompt, own_rules=own, folded=norm.folded)
        return combine(structure, patterns, behavior, threshold=self.threshold)


def check_prompt(prompt: str) -> Verdict:
    """Stateless check (structure + patterns), for one-off use and the benchmark."""
    return combine(check_structure(prompt), check_patterns(normalize(prompt)))
