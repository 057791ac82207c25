"""Model lifecycle rules (SPEC §7): active, in notice, retired; the headers that announce it.

Pure functions of a catalog entry and a date, so the router, the lifecycle report and the
tests all agree. Rules:
- notice starts 3 calendar months before the DSP (same day, clamped to the month's end) and
  runs through the DSP inclusive: still served, with Deprecation / Sunset / Link headers;
- after the DSP the model is retired: the router answers 410 `model_retired`;
- phase "deprecated" in the file means notice even without a DSP (or before the window);
- phase "retired" in the file means retired whatever the dates say.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mesh.catalog.entries import CatalogEntry

State = Literal["active", "notice", "retired"]
NOTICE_MONTHS = 3


@dataclass(frozen=True, slots=True)
class Lifecycle:
    state: State
    headers: dict[str, str] = field(default_factory=dict)
    successor: str | None = None
    notice_start: date | None = None

    @property
    def served(self) -> bool:
        return self.state != "retired"


def months_before(day: date, months: int) -> date:
    """Same day `months` calendar months earlier, clamped to the end of that month."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def notice_start(dsp: date) -> date:
    return months_before(dsp, NOTICE_MONTHS)


def state_of(entry: CatalogEntry, today: date) -> State:
    if entry.phase == "retired" or (entry.dsp is not None and today > entry.dsp):
        return "retired"
    if entry.phase == "deprecated":
        return "notice"
    if entry.dsp is not None and today >= notice_start(entry.dsp):
        return "notice"
    return "active"


def _midnight_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def http_date(day: date) -> str:
    """RFC 9110 IMF-fixdate, e.g. 'Thu, 31 Dec 2026 00:00:00 GMT'."""
    return format_datetime(_midnight_utc(day), usegmt=True)


def structured_date(day: date) -> str:
    """RFC 9745 Deprecation value: an RFC 9651 Date, '@<unix seconds>'."""
    return f"@{int(_midnight_utc(day).timestamp())}"


def successor_link(successor: str) -> str:
    return f'</v1/models/{successor}>; rel="successor-version"'


def lifecycle_headers(entry: CatalogEntry, start: date | None) -> dict[str, str]:
    """Headers for a served model in notice. Deprecation is omitted when no date is known
    (phase "deprecated" without DSP): RFC 9745 only allows a date there."""
    headers: dict[str, str] = {}
    if start is not None:
        headers["Deprecation"] = structured_date(start)
    if entry.dsp is not None:
        # Sunset names the DSP day; the model still answers through that day (inclusive).
        headers["Sunset"] = http_date(entry.dsp)
    if entry.successor:
        headers["Link"] = successor_link(entry.successor)
    return headers


def evaluate(entry: CatalogEntry, today: date) -> Lifecycle:
    state = state_of(entry, today)
    start = notice_start(entry.dsp) if entry.dsp is not None else None
    headers = lifecycle_headers(entry, start) if state == "notice" else {}
    return Lifecycle(state=state, headers=headers, successor=entry.successor, notice_start=start)


def retired_message(entry: CatalogEntry) -> str:
    """The message of the 410 `model_retired` error."""
    when = f" on {entry.dsp.isoformat()}" if entry.dsp else ""
    msg = f"The model '{entry.id}' was retired{when} (end of support) and is no longer served."
    if entry.successor:
        return f"{msg} Use '{entry.successor}' instead (see GET /v1/models/{entry.successor})."
    return f"{msg} Pick another model from GET /v1/models."


def experimental_allowed(entry: CatalogEntry, tenant_opted_in: bool) -> bool:
    """Experimental models are for tenants that opted in to beta models (SPEC §7)."""
    return entry.phase != "experimental" or tenant_opted_in


def experimental_message(entry: CatalogEntry) -> str:
    return (
        f"The model '{entry.id}' is experimental and only available to tenants that opted "
        "in to experimental models. Ask your administrator to enable them."
    )
