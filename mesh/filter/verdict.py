"""Reasons, verdicts and how layer scores combine.

Scores are probabilities-ish in [0, 1] and combine as a noisy OR,
``1 - prod(1 - s)``: one strong reason (>= 0.7) blocks on its own, weak hints
(0.1-0.45: "differs from NFKC", a lone hidden attribute) only block when
several point the same way.

BLOCK_THRESHOLD = 0.7 is the documented blocking threshold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mesh.pb import filter_pb2

BLOCK_THRESHOLD = 0.7
SPAN_MAX = 80  # the sidecar never echoes more than this of the prompt per reason
MAX_REASONS = 12


@dataclass(frozen=True, slots=True)
class Reason:
    layer: str  # structure | patterns | behavior
    rule: str  # stable id, e.g. "patterns.ignore_instructions"
    score: float
    span: str = ""
    detail: str = ""

    def __post_init__(self) -> None:
        if len(self.span) > SPAN_MAX:
            object.__setattr__(self, "span", truncate(self.span))

    def to_pb(self) -> filter_pb2.Reason:
        return filter_pb2.Reason(
            layer=self.layer, rule=self.rule, span=self.span, score=self.score, detail=self.detail
        )


def truncate(text: str, limit: int = SPAN_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def combine_scores(scores: Iterable[float]) -> float:
    remaining = 1.0
    for s in scores:
        remaining *= 1.0 - min(max(s, 0.0), 1.0)
    return round(1.0 - remaining, 4)


@dataclass(slots=True)
class Verdict:
    allowed: bool
    score: float
    reasons: list[Reason] = field(default_factory=list)

    @classmethod
    def from_reasons(cls, reasons: Iterable[Reason], threshold: float = BLOCK_THRESHOLD) -> Verdict:
        ordered = sorted(reasons, key=lambda r: -r.score)[:MAX_REASONS]
        score = combine_scores(r.score for r in ordered)
        return cls(allowed=score < threshold, score=score, reasons=ordered)

    def layer_score(self, layer: str) -> float:
        return combine_scores(r.score for r in self.reasons if r.layer == layer)

    def to_pb(self) -> filter_pb2.Verdict:
        return filter_pb2.Verdict(
            allowed=self.allowed, score=self.score, reasons=[r.to_pb() for r in self.reasons]
        )


def combine(*groups: Iterable[Reason], threshold: float = BLOCK_THRESHOLD) -> Verdict:
    """Merge the reasons of several layers into one verdict."""
    return Verdict.from_reasons([r for g in groups for r in g], threshold)
