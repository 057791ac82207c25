"""Quarterly lifecycle review: what is in notice, what retires soon, and who still uses it.

    python -m tools.ops.lifecycle_report                      # today, next 3 months
    python -m tools.ops.lifecycle_report --db run/llmaas.db   # + per-tenant usage of those models
    python -m tools.ops.lifecycle_report --today 2026-11-26 --months 6 --json

Lists every model that is in notice now, enters notice before the horizon (today + N
months), or retired in the last N months (tenants still calling those get 410s). With
`--db`, usage over the last `--usage-days` days comes from the router's store
(mesh.router.store.SqliteStore.usage, summed per tenant); when that module is not importable
the `usage` table is read directly (one row per request, or a `requests` column if present).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from mesh.catalog import Catalog, CatalogEntry
from mesh.catalog.lifecycle import evaluate, months_before, notice_start


@dataclass(slots=True)
class TenantUsage:
    tenant: str
    requests: int = 0
    tokens: int = 0
    last_day: str = ""


@dataclass(slots=True)
class ReportRow:
    model: str
    state: str  # notice | upcoming | retired
    notice_start: str
    dsp: str
    days_left: int  # negative: days since retirement
    successor: str
    served: bool
    usage: list[TenantUsage] = field(default_factory=list)


def months_after(day: date, months: int) -> date:
    return months_before(day, -months)


def classify(entry: CatalogEntry, today: date, horizon: date, retired_since: date) -> str | None:
    """The report's bucket for an entry, or None when it is not worth listing."""
    state = evaluate(entry, today).state
    if state == "notice":
        return "notice"
    if entry.dsp is None:
        return None
    if state == "retired":
        return "retired" if entry.dsp >= retired_since else None
    return "upcoming" if notice_start(entry.dsp) <= horizon else None


def select(catalog: Catalog, today: date, months: int) -> list[ReportRow]:
    horizon, retired_since = months_after(today, months), months_before(today, months)
    rows = []
    for e in catalog.entries():
        bucket = classify(e, today, horizon, retired_since)
        if bucket is None:
            continue
        rows.append(
            ReportRow(
                model=e.id,
                state=bucket,
                notice_start=notice_start(e.dsp).isoformat() if e.dsp else "",
                dsp=e.dsp.isoformat() if e.dsp else "",
                days_left=(e.dsp - today).days if e.dsp else 0,
                successor=e.successor or "",
                served=e.weights is not None,
            )
        )
    order = {"retired": 0, "notice": 1, "upcoming": 2}
    return sorted(rows, key=lambda r: (order[r.state], r.dsp or "9999", r.model))


# -- usage ----------------------------------------------------------------------------

Usage = dict[str, dict[str, TenantUsage]]  # model -> tenant -> usage


def _add(usage: Usage, tenant: str, model: str, day: str, requests: int, tokens: int) -> None:
    u = usage[model].setdefault(tenant, TenantUsage(tenant))
    u.requests += requests
    u.tokens += tokens
    u.last_day = max(u.last_day, day)


def usage_via_store(db: Path, since: float, until: float) -> Usage:
    from mesh.router.store import SqliteStore  # noqa: PLC0415 - optional, owned by the router

    async def fetch() -> list[Any]:
        store = SqliteStore(db)
        await store.open()
        try:
            return await store.usage("", since, until)
        finally:
            await store.close()

    usage: Usage = defaultdict(dict)
    for r in asyncio.run(fetch()):
        _add(usage, r.tenant, r.model, r.day, r.requests, r.input_tokens + r.output_tokens)
    return usage


def usage_via_sql(db: Path, since_day: str) -> Usage:
    """Direct read of `usage(tenant, model, day, [requests], [input_tokens, output_tokens])`."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        cols = {row[1] for row in conn.execute("PRAGMA table_info(usage)")}
        req = "sum(requests)" if "requests" in cols else "count(*)"
        tok = (
            "sum(input_tokens + output_tokens)"
            if {"input_tokens", "output_tokens"} <= cols
            else "0"
        )
        rows = conn.execute(
            f"SELECT tenant, model, max(day), {req}, {tok} FROM usage WHERE day >= ? "
            "GROUP BY tenant, model",
            (since_day,),
        ).fetchall()
    usage: Usage = defaultdict(dict)
    for tenant, model, day, requests, tokens in rows:
        _add(usage, tenant, model, day, int(requests or 0), int(tokens or 0))
    return usage


def load_usage(db: Path, today: date, days: int) -> Usage:
    start = today - timedelta(days=days)
    since = datetime.combine(start, time(), UTC).timestamp()
    until = datetime.combine(today + timedelta(days=1), time(), UTC).timestamp()
    try:
        return usage_via_store(db, since, until)
    except ImportError:
        return usage_via_sql(db, start.isoformat())


def attach_usage(rows: list[ReportRow], usage: Usage) -> None:
    for row in rows:
        row.usage = sorted(usage.get(row.model, {}).values(), key=lambda u: -u.requests)


# -- output ---------------------------------------------------------------------------


def render_text(rows: list[ReportRow], today: date, months: int, with_usage: bool) -> str:
    out = [f"Model lifecycle report for {today.isoformat()} (window: {months} months)", ""]
    head = f"{'model':<24} {'state':<9} {'notice from':<11} {'DSP':<10} {'days':>5}  successor"
    out += [head, "-" * len(head)]
    for r in rows:
        out.append(
            f"{r.model:<24} {r.state:<9} {r.notice_start:<11} {r.dsp:<10} "
            f"{r.days_left:>5}  {r.successor or '-'}"
        )
        for u in r.usage if with_usage else ():
            out.append(
                f"    tenant {u.tenant:<20} {u.requests:>8} req {u.tokens:>12} tok  "
                f"last {u.last_day}"
            )
        if with_usage and not r.usage:
            out.append("    (no usage in the period)")
    if not rows:
        out.append("(nothing in notice, retiring or recently retired)")
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tools.ops.lifecycle_report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--today", type=date.fromisoformat, default=None, help="YYYY-MM-DD")
    p.add_argument("--months", type=int, default=3, help="look-ahead/back window (quarter)")
    p.add_argument("--catalog", type=Path, help="catalog file (default: the shipped one)")
    p.add_argument("--db", type=Path, help="router SQLite database with the usage table")
    p.add_argument("--usage-days", type=int, default=30, help="usage look-back in days")
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    today = args.today or date.today()
    rows = select(Catalog.load(args.catalog), today, args.months)
    if args.db is not None:
        if not args.db.exists():
            print(f"error: no database at {args.db}", file=sys.stderr)
            return 2
        attach_usage(rows, load_usage(args.db, today, args.usage_days))
    if args.json:
        print(
            json.dumps(
                {
                    "today": today.isoformat(),
                    "months": args.months,
                    "models": [asdict(r) for r in rows],
                },
                indent=2,
            )
        )
    else:
        print(render_text(rows, today, args.months, args.db is not None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
