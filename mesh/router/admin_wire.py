"""Admin replies on the wire: records -> protobuf, time parsing, byte-bounded audit pages.

ListAudit replies are bounded in bytes, not only in records: a page stops before it would
pass the gRPC message limit (`mesh.config.grpc_message_limit()`), so a reply is never
refused by the transport; exports page on with `after_seq` until an empty page.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from mesh.config import grpc_message_limit
from mesh.errors import InvalidRequest
from mesh.pb import admin_pb2
from mesh.router.audit import AuditEntry, clip
from mesh.router.keys import KeyRecord
from mesh.router.store import UsageRow
from mesh.router.tenants import Tenant

# Room left in a reply for framing and the fields around the records.
_REPLY_MARGIN_BYTES = 64 * 1024
_OVERSIZE_FIELD_CHARS = 4096  # a legacy record too large for a reply on its own is clipped


def tenant_pb(t: Tenant) -> admin_pb2.Tenant:
    return admin_pb2.Tenant(
        name=t.name,
        tier=t.tier,
        filter_enabled=t.filter_enabled,
        experimental_opt_in=t.experimental_opt_in,
        rotation_max_age_s=t.rotation_max_age_s,
        rotation_overlap_s=t.rotation_overlap_s,
        retention_days=t.retention_days,
        content_logging=t.content_logging,
        model_patterns=list(t.model_patterns),
        created_at=int(t.created_at),
    )


def key_pb(k: KeyRecord) -> admin_pb2.ApiKey:
    return admin_pb2.ApiKey(
        id=k.id,
        tenant=k.tenant,
        model_patterns=list(k.model_patterns or ()),
        admin=k.admin,
        created_at=int(k.created_at),
        expires_at=int(k.expires_at),
        revoked_at=int(k.revoked_at),
        predecessor_id=k.predecessor_id,
        successor_id=k.successor_id,
        last_used_at=int(k.last_used_at),
    )


def usage_pb(r: UsageRow) -> admin_pb2.UsageRow:
    return admin_pb2.UsageRow(
        tenant=r.tenant,
        model=r.model,
        day=r.day,
        requests=r.requests,
        input_tokens=r.input_tokens,
        output_tokens=r.output_tokens,
        reasoning_tokens=r.reasoning_tokens,
        system_tokens=r.system_tokens,
        cost_eur=str(r.cost_eur),
        energy_kwh=str(r.energy_kwh),
    )


def audit_pb(e: AuditEntry) -> admin_pb2.AuditRecord:
    return admin_pb2.AuditRecord(
        seq=e.seq,
        time=e.time,
        request_id=e.request_id,
        tenant=e.tenant,
        key_id=e.key_id,
        model=e.model,
        action=e.action,
        outcome=e.outcome,
        status=e.status,
        input_tokens=e.input_tokens,
        output_tokens=e.output_tokens,
        latency_ms=e.latency_ms,
        reason=e.reason,
        filter_verdict=e.filter_verdict,
        prev_hash=e.prev_hash,
        hash=e.hash,
    )


def total_of(rows: list[UsageRow], tenant: str) -> UsageRow:
    total = UsageRow(tenant=tenant, cost_eur=Decimal(0), energy_kwh=Decimal(0))
    for r in rows:
        total.requests += r.requests
        total.input_tokens += r.input_tokens
        total.output_tokens += r.output_tokens
        total.reasoning_tokens += r.reasoning_tokens
        total.system_tokens += r.system_tokens
        total.cost_eur += r.cost_eur
        total.energy_kwh += r.energy_kwh
    return total


def parse_time(value: str, param: str) -> float:
    """ISO 8601 date or datetime (UTC when no offset) as a timestamp."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(
            f"'{param}' must be an ISO 8601 date or datetime, got {value!r}.", param=param
        ) from exc
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def bounded_reply(entries: list[AuditEntry], *, newest_first: bool) -> admin_pb2.AuditResponse:
    """As many records as fit under the gRPC message limit: the oldest ones (a chain-order
    page, continued from its last seq) or the newest ones (the most recent listing)."""
    budget = grpc_message_limit() - _REPLY_MARGIN_BYTES
    kept: list[admin_pb2.AuditRecord] = []
    used = 0
    for e in reversed(entries) if newest_first else entries:
        record = audit_pb(e)
        size = record.ByteSize() + 8  # + the field's tag and length
        if size > budget and not kept:  # a legacy oversized record: shown clipped
            record = audit_pb(_clipped_for_reply(e))
            size = record.ByteSize() + 8
        if used + size > budget:
            break
        kept.append(record)
        used += size
    if newest_first:
        kept.reverse()
    return admin_pb2.AuditResponse(records=kept)


def _clipped_for_reply(e: AuditEntry) -> AuditEntry:
    n = _OVERSIZE_FIELD_CHARS
    return replace(
        e,
        request_id=clip(e.request_id, n),
        tenant=clip(e.tenant, n),
        key_id=clip(e.key_id, n),
        model=clip(e.model, n),
        action=clip(e.action, n),
        reason=clip(e.reason, n),
        filter_verdict=clip(e.filter_verdict, n),
    )
