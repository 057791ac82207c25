"""llmaas-admin's commands: each calls the Admin API and returns (json-able value, text)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable
from typing import Any

from mesh.pb import admin_pb2 as pb
from mesh.pb import admin_pb2_grpc
from tools.ops.admin.output import as_dict, audit_text, keys_text, tenants_text, usage_text

TIMEOUT_S = 15.0


class CliError(Exception):
    pass


Command = Callable[[admin_pb2_grpc.AdminStub, argparse.Namespace], tuple[Any, str]]


def created(c: pb.CreatedKey) -> tuple[Any, str]:
    info = f"{c.key.id} for tenant {c.key.tenant}: shown once, store it now"
    print(info, file=sys.stderr)
    return {"id": c.key.id, "key": c.secret}, c.secret


def tenant_set(stub: admin_pb2_grpc.AdminStub, a: argparse.Namespace) -> tuple[Any, str]:
    req = pb.UpdateTenantRequest(name=a.name)
    if a.tier is not None:
        req.tier = a.tier
    if a.filter is not None:
        req.filter_enabled = a.filter
    if a.experimental is not None:
        req.experimental_opt_in = a.experimental
    if a.rotation_max_age_days is not None:
        req.rotation_max_age_s = round(a.rotation_max_age_days * 86400)
    if a.rotation_overlap_hours is not None:
        req.rotation_overlap_s = round(a.rotation_overlap_hours * 3600)
    if a.retention_days is not None:
        if a.retention_days < 0:
            raise CliError("--retention-days must be >= 0 (0 = keep forever)")
        req.retention_days = a.retention_days
    if a.content_logging is not None:
        req.content_logging = a.content_logging
    t = stub.UpdateTenant(req, timeout=TIMEOUT_S)
    return as_dict(t), tenants_text([t])


def audit(stub: admin_pb2_grpc.AdminStub, a: argparse.Namespace) -> tuple[Any, str]:
    if a.action == "verify":
        r = stub.VerifyAudit(pb.VerifyAuditRequest(), timeout=TIMEOUT_S)
        if not r.ok and a.json:
            raise VerifyFailed(r)
        if not r.ok:
            raise CliError(
                f"audit chain BROKEN at seq {r.first_bad_seq}: {r.problem} "
                f"({r.checked} records verified before it)"
            )
        start = f" (from retention checkpoint seq {r.checkpoint_seq})" if r.checkpoint_seq else ""
        return as_dict(r), f"audit chain ok: {r.checked} records verified{start}"
    if a.action == "export":
        return audit_export(stub, a)
    r = stub.ListAudit(
        pb.AuditRequest(tenant=a.tenant, since=a.since, limit=a.limit), timeout=TIMEOUT_S
    )
    return [as_dict(x) for x in r.records], audit_text(r.records)


_EXPORT_PAGE = 1000


def audit_export(stub: admin_pb2_grpc.AdminStub, a: argparse.Namespace) -> tuple[Any, str]:
    """Every matching record in chain order (seq, prev_hash and hash included, so an auditor
    can re-check the links), as JSON lines or CSV."""
    records: list[dict] = []
    after = 0
    while True:
        req = pb.AuditRequest(
            tenant=a.tenant, since=a.since, until=a.until, after_seq=after, limit=_EXPORT_PAGE
        )
        page = stub.ListAudit(req, timeout=TIMEOUT_S).records
        records += [as_dict(r) for r in page]
        if not page:  # a page may be cut short by bytes (the message limit): go on to empty
            break
        after = page[-1].seq
    if a.format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[f.name for f in pb.AuditRecord.DESCRIPTOR.fields])
        writer.writeheader()
        writer.writerows(records)
        return records, out.getvalue().rstrip("\n")
    lines = (json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records)
    return records, "\n".join(lines)


class VerifyFailed(CliError):
    def __init__(self, result: pb.VerifyAuditResponse) -> None:
        super().__init__(json.dumps(as_dict(result)))


def run(stub: admin_pb2_grpc.AdminStub, a: argparse.Namespace) -> tuple[Any, str]:
    t = TIMEOUT_S
    match (a.group, getattr(a, "cmd", None)):
        case ("tenant", "create"):
            r = stub.CreateTenant(
                pb.CreateTenantRequest(name=a.name, tier=a.tier, model_patterns=a.models), timeout=t
            )
            return as_dict(r), tenants_text([r])
        case ("tenant", "list"):
            r = stub.ListTenants(pb.ListTenantsRequest(), timeout=t)
            return [as_dict(x) for x in r.tenants], tenants_text(r.tenants)
        case ("tenant", "get"):
            r = stub.GetTenant(pb.GetTenantRequest(name=a.name), timeout=t)
            return as_dict(r), tenants_text([r])
        case ("tenant", "set"):
            return tenant_set(stub, a)
        case ("key", "create"):
            return created(
                stub.CreateKey(
                    pb.CreateKeyRequest(
                        tenant=a.tenant,
                        model_patterns=a.models,
                        expires_in_days=a.expires_in,
                        admin=a.admin,
                    ),
                    timeout=t,
                )
            )
        case ("key", "list"):
            r = stub.ListKeys(pb.ListKeysRequest(tenant=a.tenant), timeout=t)
            return [as_dict(x) for x in r.keys], keys_text(r.keys)
        case ("key", "rotate"):
            return created(
                stub.RotateKey(
                    pb.RotateKeyRequest(key_id=a.key_id, overlap_s=round(a.overlap_hours * 3600)),
                    timeout=t,
                )
            )
        case ("key", "revoke"):
            r = stub.RevokeKey(pb.RevokeKeyRequest(key_id=a.key_id), timeout=t)
            return as_dict(r), f"revoked {r.id} (tenant {r.tenant})"
        case ("key", "successor"):
            return created(
                stub.GetSuccessorKey(pb.GetSuccessorKeyRequest(key_id=a.key_id), timeout=t)
            )
        case ("usage", _):
            r = stub.GetUsage(
                pb.UsageRequest(tenant=a.tenant, since=a.since, until=a.until), timeout=t
            )
            return as_dict(r), usage_text(r)
        case ("audit", _):
            return audit(stub, a)
    raise CliError(f"unknown command {a.group} {getattr(a, 'cmd', '')}")
