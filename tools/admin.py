"""llmaas-admin: tenants, keys, usage and audit against a running router.

Router address from LLMAAS_ROUTER_ADDR (default 127.0.0.1:$LLMAAS_ROUTER_PORT or 50051);
authenticates with LLMAAS_ADMIN_KEY (a tenant's own key works for its read-only commands).
Every command takes --json. Errors print one line on stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.message import Message

from mesh import tls
from mesh.config import run_dir
from mesh.errors import MD_ERROR_CODE, from_rpc_error
from mesh.pb import admin_pb2 as pb
from mesh.pb import admin_pb2_grpc
from mesh.rpc import message_limit_options

PROG = "llmaas-admin"
_TIMEOUT_S = 15.0


class CliError(Exception):
    pass


def _on_off(value: str) -> bool:
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError("expected on or off")
    return value == "on"


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--addr", help="router host:port (default: $LLMAAS_ROUTER_ADDR)")
    parser.add_argument("--key", help="API key (default: $LLMAAS_ADMIN_KEY)")
    groups = parser.add_subparsers(dest="group", required=True)

    tenant = groups.add_parser("tenant", help="tenants").add_subparsers(dest="cmd", required=True)
    p = tenant.add_parser("create", parents=[common])
    p.add_argument("name")
    p.add_argument("--tier", default="standard")
    p.add_argument("--models", nargs="+", default=[], metavar="PATTERN")
    tenant.add_parser("list", parents=[common])
    p = tenant.add_parser("get", parents=[common])
    p.add_argument("name")
    p = tenant.add_parser("set", parents=[common])
    p.add_argument("name")
    p.add_argument("--tier")
    p.add_argument("--filter", type=_on_off, metavar="on|off")
    p.add_argument("--experimental", type=_on_off, metavar="on|off")
    p.add_argument("--rotation-max-age-days", type=float, metavar="N")
    p.add_argument("--rotation-overlap-hours", type=float, metavar="H")
    p.add_argument(
        "--retention-days",
        type=int,
        metavar="N",
        help="keep content and usage detail N days (0 = forever)",
    )
    p.add_argument(
        "--content-logging",
        type=_on_off,
        metavar="on|off",
        help="store prompts/answers (encrypted)",
    )

    key = groups.add_parser("key", help="API keys").add_subparsers(dest="cmd", required=True)
    p = key.add_parser("create", parents=[common])
    p.add_argument("--tenant", required=True)
    p.add_argument("--models", nargs="+", default=[], metavar="PATTERN")
    p.add_argument("--expires-in", type=int, default=0, metavar="DAYS")
    p.add_argument("--admin", action="store_true")
    p = key.add_parser("list", parents=[common])
    p.add_argument("--tenant", default="")
    for name in ("rotate", "revoke", "successor"):
        p = key.add_parser(name, parents=[common])
        p.add_argument("key_id")
    key.choices["rotate"].add_argument(
        "--overlap-hours",
        type=float,
        default=0.0,
        help="both keys work this long (default: tenant policy)",
    )

    p = groups.add_parser("usage", parents=[common], help="usage and cost")
    p.add_argument("--tenant", default="")
    p.add_argument("--since", default="")
    p.add_argument("--until", default="")
    audit = groups.add_parser("audit", parents=[common], help="audit trail")
    audit.add_argument("action", nargs="?", choices=["verify", "export"])
    audit.add_argument("--tenant", default="")
    audit.add_argument("--since", default="")
    audit.add_argument("--until", default="", help="export: records before this time")
    audit.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="export format")
    audit.add_argument("--limit", type=int, default=100)
    return parser


# -- output --


def _dict(msg: Message) -> dict:
    # Not MessageToDict: proto3 JSON writes int64 as strings; scripts want numbers.
    out: dict[str, Any] = {}
    for field in msg.DESCRIPTOR.fields:
        value = getattr(msg, field.name)
        if field.message_type is not None and not _is_repeated(field):
            out[field.name] = _dict(value)
        elif _is_repeated(field):
            out[field.name] = [_dict(v) if field.message_type else v for v in value]
        else:
            out[field.name] = value
    return out


def _is_repeated(field: Any) -> bool:
    return field.is_repeated


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ts else "-"


def _table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header, *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def _tenants_text(tenants: Sequence[pb.Tenant]) -> str:
    return _table(
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


def _keys_text(keys: Sequence[pb.ApiKey]) -> str:
    return _table(
        [
            [
                k.id,
                k.tenant,
                "admin" if k.admin else "tenant",
                ",".join(k.model_patterns) or "(tenant)",
                _when(k.created_at),
                _when(k.expires_at),
                _when(k.revoked_at),
                k.successor_id or "-",
            ]
            for k in keys
        ],
        ["ID", "TENANT", "ROLE", "MODELS", "CREATED", "EXPIRES", "REVOKED", "SUCCESSOR"],
    )


def _usage_text(resp: pb.UsageResponse) -> str:
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
    return _table(
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


def _audit_text(records: Sequence[pb.AuditRecord]) -> str:
    return "\n".join(
        f"{r.seq:>6} {r.time} {r.tenant or '-'} {r.key_id or '-'} {r.action} {r.model or '-'} "
        f"{r.outcome} {r.status} in={r.input_tokens} out={r.output_tokens} {r.latency_ms:.1f}ms"
        + (f" filter={r.filter_verdict}" if r.filter_verdict else "")
        + (f" reason={r.reason}" if r.reason else "")
        for r in records
    )


# -- commands: each returns (json-able value, text) --

Command = Callable[[admin_pb2_grpc.AdminStub, argparse.Namespace], tuple[Any, str]]


def _created(c: pb.CreatedKey) -> tuple[Any, str]:
    info = f"{c.key.id} for tenant {c.key.tenant}: shown once, store it now"
    print(info, file=sys.stderr)
    return {"id": c.key.id, "key": c.secret}, c.secret


def _tenant_set(stub: admin_pb2_grpc.AdminStub, a: argparse.Namespace) -> tuple[Any, str]:
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
    t = stub.UpdateTenant(req, timeout=_TIMEOUT_S)
    return _dict(t), _tenants_text([t])


def _audit(stub: admin_pb2_grpc.AdminStub, a: argparse.Namespace) -> tuple[Any, str]:
    if a.action == "verify":
        r = stub.VerifyAudit(pb.VerifyAuditRequest(), timeout=_TIMEOUT_S)
        if not r.ok and a.json:
            raise _VerifyFailed(r)
        if not r.ok:
            raise CliError(
                f"audit chain BROKEN at seq {r.first_bad_seq}: {r.problem} "
                f"({r.checked} records verified before it)"
            )
        start = f" (from retention checkpoint seq {r.checkpoint_seq})" if r.checkpoint_seq else ""
        return _dict(r), f"audit chain ok: {r.checked} records verified{start}"
    if a.action == "export":
        return _audit_export(stub, a)
    r = stub.ListAudit(
        pb.AuditRequest(tenant=a.tenant, since=a.since, limit=a.limit), timeout=_TIMEOUT_S
    )
    return [_dict(x) for x in r.records], _audit_text(r.records)


_EXPORT_PAGE = 1000


def _audit_export(stub: admin_pb2_grpc.AdminStub, a: argparse.Namespace) -> tuple[Any, str]:
    """Every matching record in chain order (seq, prev_hash and hash included, so an auditor
    can re-check the links), as JSON lines or CSV."""
    records: list[dict] = []
    after = 0
    while True:
        req = pb.AuditRequest(
            tenant=a.tenant, since=a.since, until=a.until, after_seq=after, limit=_EXPORT_PAGE
        )
        page = stub.ListAudit(req, timeout=_TIMEOUT_S).records
        records += [_dict(r) for r in page]
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


class _VerifyFailed(CliError):
    def __init__(self, result: pb.VerifyAuditResponse) -> None:
        super().__init__(json.dumps(_dict(result)))


def _run(stub: admin_pb2_grpc.AdminStub, a: argparse.Namespace) -> tuple[Any, str]:
    t = _TIMEOUT_S
    match (a.group, getattr(a, "cmd", None)):
        case ("tenant", "create"):
            r = stub.CreateTenant(
                pb.CreateTenantRequest(name=a.name, tier=a.tier, model_patterns=a.models), timeout=t
            )
            return _dict(r), _tenants_text([r])
        case ("tenant", "list"):
            r = stub.ListTenants(pb.ListTenantsRequest(), timeout=t)
            return [_dict(x) for x in r.tenants], _tenants_text(r.tenants)
        case ("tenant", "get"):
            r = stub.GetTenant(pb.GetTenantRequest(name=a.name), timeout=t)
            return _dict(r), _tenants_text([r])
        case ("tenant", "set"):
            return _tenant_set(stub, a)
        case ("key", "create"):
            return _created(
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
            return [_dict(x) for x in r.keys], _keys_text(r.keys)
        case ("key", "rotate"):
            return _created(
                stub.RotateKey(
                    pb.RotateKeyRequest(key_id=a.key_id, overlap_s=round(a.overlap_hours * 3600)),
                    timeout=t,
                )
            )
        case ("key", "revoke"):
            r = stub.RevokeKey(pb.RevokeKeyRequest(key_id=a.key_id), timeout=t)
            return _dict(r), f"revoked {r.id} (tenant {r.tenant})"
        case ("key", "successor"):
            return _created(
                stub.GetSuccessorKey(pb.GetSuccessorKeyRequest(key_id=a.key_id), timeout=t)
            )
        case ("usage", _):
            r = stub.GetUsage(
                pb.UsageRequest(tenant=a.tenant, since=a.since, until=a.until), timeout=t
            )
            return _dict(r), _usage_text(r)
        case ("audit", _):
            return _audit(stub, a)
    raise CliError(f"unknown command {a.group} {getattr(a, 'cmd', '')}")


def _address(a: argparse.Namespace) -> str:
    port = os.environ.get("LLMAAS_ROUTER_PORT") or "50051"
    return a.addr or os.environ.get("LLMAAS_ROUTER_ADDR") or f"127.0.0.1:{port}"


def _channel(address: str) -> grpc.Channel:
    # LLMAAS_TLS=1: the CLI presents the admin certificate (the router's Admin API accepts
    # only that role) unless LLMAAS_TLS_ROLE names another.
    environ = {**os.environ, "LLMAAS_TLS_ROLE": os.environ.get("LLMAAS_TLS_ROLE") or "admin"}
    creds = tls.channel_credentials("router", environ)
    limits = message_limit_options()  # the router's replies may use the mesh-wide limit
    if creds is None:
        return grpc.insecure_channel(address, options=limits)
    return grpc.secure_channel(
        address, creds, options=[*tls.channel_options("router", environ), *limits]
    )


class _Bearer(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, key: str) -> None:
        self._md = (("authorization", f"Bearer {key}"),)

    def intercept_unary_unary(self, continuation, details, request):
        details = details._replace(metadata=tuple(details.metadata or ()) + self._md)
        return continuation(details, request)


def _default_admin_key() -> str:
    """The admin key `make run` made for the embedded default (.run/secrets/admin-key)."""
    path = run_dir() / "secrets" / "admin-key"
    return path.read_text().strip() if path.exists() else ""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    key = args.key or os.environ.get("LLMAAS_ADMIN_KEY", "") or _default_admin_key()
    address = _address(args)
    if not key:
        print(f"{PROG}: error: no API key: set LLMAAS_ADMIN_KEY (or pass --key)", file=sys.stderr)
        return 2
    with _channel(address) as channel:
        stub = admin_pb2_grpc.AdminStub(grpc.intercept_channel(channel, _Bearer(key)))
        try:
            value, text = _run(stub, args)
        except grpc.RpcError as err:
            return _fail(_rpc_message(err, address))
        except _VerifyFailed as err:
            print(str(err))
            return 1
        except CliError as err:
            return _fail(str(err))
    print(json.dumps(value, indent=2, default=str) if args.json else text)
    return 0


def _rpc_message(err: grpc.RpcError, address: str) -> str:
    if (
        err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        and not err.trailing_metadata()
    ):
        return f"cannot reach the router at {address}: {err.details()}"
    codes = {k for k, _v in err.trailing_metadata() or ()}
    if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and MD_ERROR_CODE not in codes:
        # gRPC's own limit (a message too large), not the router's rate limiter.
        return f"transport limit: {err.details()} (message_too_large)"
    mesh_err = from_rpc_error(err)
    return f"{mesh_err.message} ({mesh_err.code})"


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
