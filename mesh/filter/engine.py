"""The three layers put together: one call, one verdict.

:func:`analyse` is the stateless, expensive part (structure and patterns over
the whole prompt); it is a plain function of the prompt, so the sidecar can run
it in another process for long prompts. :meth:`PromptFilter.record` is the
cheap, stateful part (the behaviour history), always in the serving process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .addressed import check_addressed
from .behavior import BehaviorTracker, prompt_digest
from .behavior_redis import RedisBehavior
from .decode import check_decoded
from .exfil import check_exfil
from .learned import check_learned_prompt
from .normalize import normalize
from .orders import check_orders
from .patterns import BLOCKING, check_patterns
from .refusal import check_refusal_suppression
from .structure import check_structure
from .tool_fields import ToolFields, check_tool_fields
from .verdict import BLOCK_THRESHOLD, Reason, Verdict, combine

# The learned layer (learned.py) is part of the verdict at the threshold stored with its
# weights, set on fresh hand-written prompts it never saw and on the repo corpus (see
# tools/calibrate_filter.py). It judges the prompt (with the quote policy), decoded
# payloads and tool fields; False turns it off.
LEARNED_LAYER = True
NO_TOOLS = ToolFields()


@dataclass(frozen=True, slots=True)
class Analysis:
    """What one prompt says on its own (small and picklable: no copy of the prompt)."""

    structure: list[Reason]
    patterns: list[Reason]
    own_rules: frozenset[str]  # blocking pattern and learned rules of the prompt alone
    digest: bytes  # of the normalised prompt, for the repetition check
    decoded: list[Reason] = field(default_factory=list)  # rules on decoded payloads
    learned: list[Reason] = field(default_factory=list)  # learned layer (LEARNED_LAYER)


def analyse(prompt: str, tools: ToolFields = NO_TOOLS) -> Analysis:
    """The prompt's layers, plus its tool definitions and results screened as content."""
    norm = normalize(prompt)
    structure = (
        check_structure(prompt)
        + check_exfil(prompt, quote_policy=True)
        + check_addressed(prompt, norm.folded)
    )
    patterns = check_patterns(norm) + check_refusal_suppression(prompt) + check_orders(prompt)
    # base64/hex/URL/rot13 payloads: by rule, and by the learned layer when it is on
    decoded = check_decoded(prompt, learned=LEARNED_LAYER)
    learned = check_learned_prompt(norm) if LEARNED_LAYER else []
    if tools:
        found = check_tool_fields(tools, learned=LEARNED_LAYER)
        structure, patterns, decoded = (
            structure + found.structure,
            patterns + found.patterns,
            decoded + found.decoded,
        )
        learned += found.learned
    # what fired on the prompt alone: a rejoined history that fires the same rule adds nothing
    own = frozenset(r.rule for r in patterns + learned if r.score >= BLOCKING)
    return Analysis(structure, patterns, own, prompt_digest(norm.folded), decoded, learned)


@dataclass
class PromptFilter:
    """Stateful filter: holds the behaviour history. One per sidecar process."""

    tracker: BehaviorTracker = field(default_factory=BehaviorTracker)
    threshold: float = BLOCK_THRESHOLD
    # The history in Redis instead (LLMAAS_REDIS_URL): one for every filter replica.
    shared: RedisBehavior | None = None

    def check(
        self, prompt: str, tenant: str = "", user: str = "", tools: ToolFields = NO_TOOLS
    ) -> Verdict:
        return self.record(analyse(prompt, tools), prompt, tenant=tenant, user=user)

    def record(self, analysis: Analysis, prompt: str, tenant: str = "", user: str = "") -> Verdict:
        """The verdict for ``prompt`` given its :func:`analyse` result; records it in the history."""
        behavior = self.tracker.check(
            tenant, user, prompt, own_rules=analysis.own_rules, digest=analysis.digest
        )
        return self._verdict(analysis, behavior)

    async def record_async(
        self, analysis: Analysis, prompt: str, tenant: str = "", user: str = ""
    ) -> Verdict:
        """`record`, with the shared history where there is one (503 while it is away)."""
        if self.shared is None:
            return self.record(analysis, prompt, tenant=tenant, user=user)
        behavior = await self.shared.check(
            tenant, user, prompt, analysis.own_rules, analysis.digest
        )
        return self._verdict(analysis, behavior)

    def _verdict(self, analysis: Analysis, behavior: list[Reason]) -> Verdict:
        return combine(
            analysis.structure,
            analysis.patterns,
            analysis.decoded,
            analysis.learned,
            behavior,
            threshold=self.threshold,
        )


def check_prompt(prompt: str, tools: ToolFields = NO_TOOLS) -> Verdict:
    """Stateless check (structure + patterns + decoded payloads)."""
    a = analyse(prompt, tools)
    return combine(a.structure, a.patterns, a.decoded, a.learned)
