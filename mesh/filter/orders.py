"""Orders to the model that a prompt's or a fetched text's shape gives away.

An assembled text to obey (``assembled``), quoted pieces named by letters and joined
(``split_variables``), labelled parts joined and acted on (``joined_parts``), an encoded
payload to carry out (``encoded_order``), a dump of the hidden context (``context_dump``)
and a fake dialogue of compliant answers (``many_shot``): one list, read on prompts by the
engine and on tool results by ``tool_fields`` (a fetched page can carry any of them), so a
rule added here is screened in both places.
"""

from __future__ import annotations

from .assembled import check_assembled
from .context_dump import check_context_dump
from .encoded_order import check_encoded_order
from .joined_parts import check_joined_parts
from .many_shot import check_many_shot
from .split_variables import check_split_variables
from .verdict import Reason


def check_orders(raw: str, *, quote_policy: bool = True) -> list[Reason]:
    """The reasons of the six rules. ``quote_policy``: a short question about a quoted
    order is judged on the words outside the quotes (off for tool results, which cannot
    ask a question on the user's behalf)."""
    return (
        check_assembled(raw, quote_policy=quote_policy)
        + check_context_dump(raw, quote_policy=quote_policy)
        + check_many_shot(raw)
        + check_split_variables(raw)
        + check_joined_parts(raw)
        + check_encoded_order(raw)
    )
