"""llmaas-admin's output: messages as plain dicts (--json) and as text tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message

from mesh.pb import admin_pb2 as pb


def as_dict(msg: Message) -> dict:
    # Not MessageToDict: proto3 JSON writes int64 as strings; scripts want numbers.
    out: dict[str, Any] = {}
    for field in msg.DESCRIPTOR.fields:
        value = getattr(msg, field.name)
        if field.message_type is not None and not is_repeated(field):
            out[field.name] = as_dict(value)
        elif is_repeated(field):
            out[field.name] = [as_dict(v) if field.message_type else v for v in value]
        else:
            out[field.name] = value
    return out


def is_repeated(field: Any) -> bool:
    return field.is_repeated


def when(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ts else "-"


def table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header, *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def tenants_text(tenants: Sequence[pb.Tenant]) -> str:
    return table(
        [
            [
                t.name,
                t.tier,
                "on" if t.filter_enabled else "off",
                "on" if t.experimental_opt_in else "off",
                t.rotation_max_age_s or "-",
                t.rotation_overlap_s or "-",
                t.retention_days or "forever",
                "on" if t.content_logging else "off",
                ",".join(t.model_patterns),
            ]
            for t in tenants
        ],
        [
            "NAME",
            "TIER",
            "FILTER",
            "EXPERIMENTAL",
            "ROTATE_S",
            "OVERLAP_S",
            "RETENTION_D",
            "CONTENT_LOG",
            "MODELS",
        ],
    )


def keys_text(keys: Sequence[pb.ApiKey]) -> str:
    return table(
        [
            [
                k.id,
                k.tenant,
                "admin" if k.admin else "tenant",
                ",".join(k.model_patterns) or "(tenant)",
                when(k.created_at),
                when(k.expires_at),
                when(k.revoked_at),
                k.successor_id or "-",
            ]
            for k in keys
        ],
        ["ID", "TENANT", "ROLE", "MODELS", "CREATED", "EXPIRES", "REVOKED", "SUCCESSOR"],
    )


def usage_text(resp: pb.UsageResponse) -> str:
    def row(r: pb.UsageRow, day: str, model: str) -> list[Any]:
        return [
            day,
            r.tenant or "*",
            model,
            r.requests,
            r.input_tokens,
            r.output_tokens,
            r.reasoning_tokens,
            r.system_tokens,
            r.cost_eur,
            r.energy_kwh,
        ]

    rows = [row(r, r.day, r.model) for r in resp.rows] + [row(resp.total, "TOTAL", "")]
    return table(
        rows,
        [
            "DAY",
            "TENANT",
            "MODEL",
            "REQUESTS",
            "INPUT",
            "OUTPUT",
            "REASONING",
            "SYSTEM",
            "COST_EUR",
            "ENERGY_KWH",
        ],
    )


def audit_text(records: Sequence[pb.AuditRecord]) -> str:
    return "\n".join(
        f"{r.seq:>6} {r.time} {r.tenant or '-'} {r.key_id or '-'} {r.action} {r.model or '-'} "
        f"{r.outcome} {r.status} in={r.input_tokens} out={r.output_tokens} {r.latency_ms:.1f}ms"
        + (f" filter={r.filter_verdict}" if r.filter_verdict else "")
        + (f" reason={r.reason}" if r.reason else "")
        for r in records
    )
