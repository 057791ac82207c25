"""Prompt-security filter: structure, pattern and behaviour layers (SPEC §4).

On by default. Whether a tenant is filtered at all is the router's decision;
nothing in a request can turn the filter off.

    from mesh.filter import PromptFilter
    verdict = PromptFilter().check(prompt, tenant="acme", user="u-42")
    if not verdict.allowed: ...  # verdict.reasons explain why
"""

from .behavior import BehaviorTracker
from .engine import PromptFilter, check_prompt
from .patterns import check_patterns
from .structure import check_structure
from .tool_fields import ToolFields
from .verdict import BLOCK_THRESHOLD, Reason, Verdict, combine

__all__ = [
    "BLOCK_THRESHOLD",
    "BehaviorTracker",
    "PromptFilter",
    "Reason",
    "ToolFields",
    "Verdict",
    "check_behavior",
    "check_patterns",
    "check_prompt",
    "check_structure",
    "combine",
]


def check_behavior(tracker: BehaviorTracker, tenant: str, user: str, prompt: str) -> list[Reason]:
    """Record ``prompt`` in ``tracker`` and return the behaviour reasons."""
    return tracker.check(tenant, user, prompt)
