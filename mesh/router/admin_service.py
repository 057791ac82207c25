"""The `Admin` gRPC service: tenants, keys, usage and audit for operators and tenants.

Admin keys may do everything. A tenant's own (non-admin) key may call the read-only
methods for its own tenant only: GetTenant, ListKeys, GetUsage, ListAudit, and
GetSuccessorKey for itself only (a key fetches its own auto-rotated successor, never that
of another key). Changes, successor retrievals and refusals are audited.

ListAudit replies are bounded in bytes, not only in records: a page stops before it would
pass the gRPC message limit (`mesh.config.grpc_message_limit()`), so a reply is never
refused by the transport; exports page on with `after_seq` until an empty page.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import grpc

from mesh.config import grpc_message_limit
from mesh.errors import InvalidRequest, MeshError, PermissionDenied
from mesh.pb import admin_pb2, admin_pb2_grpc
from mesh.router.access import Principal
from mesh.router.accounts import Accounts
from mesh.router.audit import AuditEntry, clip, iso_time
from mesh.router.keys import KeyRecord, public_id
from mesh.router.store import UsageRow
from mesh.router.tenants import Tenant, valid_tenant_name

SERVICE_NAME = "llmaas.v1.Admin"
_MAX_AUDIT = 10_000
_FAR_FUTURE = 253402300799.0  # 9999-12-31
# Room left in a reply for framing and the fields around the records.
_REPLY_MARGIN_BYTES = 64 * 1024
_OVERSIZE_FIELD_CHARS = 4096  # a legacy record too large for a reply on its own is clipped


# -- wire conversion --


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


def _bearer(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key.lower() == "authorization" and isinstance(value, str):
            return value.removeprefix("Bearer ").removeprefix("bearer ").strip()
    return ""


class AdminService(admin_pb2_grpc.AdminServicer):
    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self.directory = accounts.directory

    # -- who may call --

    async def _caller(
        self,
        context: grpc.aio.ServicerContext,
        action: str,
        *,
        admin: bool = True,
        tenant: str | None = "",
        own_key: str | None = None,
    ) -> Principal:
        """The authenticated caller, audited when refused.

        admin=True: an admin key is required. admin=False: a tenant key passes for its own
        `tenant` ("" = its own implicitly; None = a resource whose owner is unknown) and,
        with `own_key`, only when it is that very key.
        """
        principal: Principal | None = None
        bearer = _bearer(context)
        try:
            principal = await self.accounts.authenticate(bearer)
            other_key = own_key is not None and own_key != principal.key_id
            if not principal.admin and (
                admin or (tenant is None or tenant not in ("", principal.tenant)) or other_key
            ):
                what = (
                    "an admin key is required"
                    if admin
                    else "only for itself"
                    if other_key and tenant == principal.tenant
                    else "not for another tenant"
                )
                raise PermissionDenied(
                    f"The API key {principal.key_id} may not call {action}: {what}.",
                    code="permission_denied",
                )
        except MeshError as err:
            await self.accounts.audit_event(
                principal,
                f"admin.{action}",
                tenant=principal.tenant if principal else "",
                key_id=principal.key_id if principal else public_id(bearer),
                outcome="refused",
                status=err.http_status,
                reason=err.code,
            )
            raise
        return principal

    # -- tenants --

    async def CreateTenant(self, request, context):
        p = await self._caller(context, "CreateTenant")
        if not valid_tenant_name(request.name):
            raise InvalidRequest(
                f"Invalid tenant name {request.name!r}: use 1-63 of a-z 0-9 _ . - "
                "starting with a letter or digit.",
                param="name",
            )
        if self.directory.find_tenant(request.name):
            raise InvalidRequest(
                f"Tenant '{request.name}' already exists.", code="tenant_exists", param="name"
            )
        tenant = Tenant(
            name=request.name,
            tier=self._tier(request.tier or "standard"),
            model_patterns=self._patterns(request.model_patterns) or ("*",),
            created_at=self.accounts.now(),
        )
        await self.directory.save_tenant(tenant)
        await self.accounts.audit_event(
            p, "tenant.create", tenant=tenant.name, reason=f"tier {tenant.tier}"
        )
        return tenant_pb(tenant)

    async def GetTenant(self, request, context):
        await self._caller(context, "GetTenant", admin=False, tenant=request.name)
        return tenant_pb(self.directory.tenant(request.name))

    async def ListTenants(self, request, context):
        await self._caller(context, "ListTenants")
        return admin_pb2.ListTenantsResponse(
            tenants=[tenant_pb(t) for t in self.directory.tenants()]
        )

    async def UpdateTenant(self, request, context):
        p = await self._caller(context, "UpdateTenant")
        tenant = self.directory.tenant(request.name)
        changes = {f.name: v for f, v in request.ListFields() if f.name != "name"}
        if "tier" in changes:
            changes["tier"] = self._tier(changes["tier"])
        updated = replace(tenant, **changes)
        self._check_rotation(updated)
        await self.directory.save_tenant(updated)
        summary = ", ".join(f"{k}={v}" for k, v in sorted(changes.items()))
        await self.accounts.audit_event(p, "tenant.update", tenant=tenant.name, reason=summary)
        return tenant_pb(updated)

    # -- keys --

    async def CreateKey(self, request, context):
        p = await self._caller(context, "CreateKey")
        self.directory.tenant(request.tenant)
        if request.expires_in_days < 0:
            raise InvalidRequest("'expires_in_days' must be >= 0.", param="expires_in_days")
        expires = (
            self.accounts.now() + request.expires_in_days * 86400
            if request.expires_in_days
            else 0.0
        )
        key, secret = await self.directory.create_key(
            request.tenant, self._patterns(request.model_patterns) or None, expires, request.admin
        )
        await self.accounts.audit_event(
            p,
            "key.create",
            tenant=key.tenant,
            key_id=key.id,
            reason="admin key" if key.admin else "",
        )
        return admin_pb2.CreatedKey(key=key_pb(key), secret=secret)

    async def ListKeys(self, request, context):
        p = await self._caller(context, "ListKeys", admin=False, tenant=request.tenant)
        tenant = request.tenant or p.tenant
        self.directory.tenant(tenant)
        return admin_pb2.ListKeysResponse(keys=[key_pb(k) for k in self.directory.keys_of(tenant)])

    async def RotateKey(self, request, context):
        p = await self._caller(context, "RotateKey")
        if request.overlap_s < 0:
            raise InvalidRequest("'overlap_s' must be >= 0.", param="overlap_s")
        _old, new, secret = await self.accounts.rotate_key(request.key_id, request.overlap_s, p)
        return admin_pb2.CreatedKey(key=key_pb(new), secret=secret)

    async def RevokeKey(self, request, context):
        p = await self._caller(context, "RevokeKey")
        key = await self.directory.revoke(request.key_id)
        await self.accounts.audit_event(p, "key.revoke", tenant=key.tenant, key_id=key.id)
        return key_pb(key)

    async def GetSuccessorKey(self, request, context):
        key = self.directory.find_key(request.key_id)
        p = await self._caller(
            context,
            "GetSuccessorKey",
            admin=False,
            tenant=key.tenant if key else None,
            own_key=request.key_id,
        )
        new, secret = await self.directory.take_successor(request.key_id)
        await self.accounts.audit_event(
            p,
            "key.successor",
            tenant=new.tenant,
            key_id=new.id,
            reason=f"successor of {request.key_id} retrieved",
        )
        return admin_pb2.CreatedKey(key=key_pb(new), secret=secret)

    # -- usage and audit --

    async def GetUsage(self, request, context):
        p = await self._caller(context, "GetUsage", admin=False, tenant=request.tenant)
        tenant = request.tenant or ("" if p.admin else p.tenant)
        since = parse_time(request.since, "since") if request.since else 0.0
        until = parse_time(request.until, "until") if request.until else _FAR_FUTURE
        rows = await self.accounts.store.usage(tenant, since, until)
        return admin_pb2.UsageResponse(
            rows=[usage_pb(r) for r in rows], total=usage_pb(total_of(rows, tenant))
        )

    async def ListAudit(self, request, context):
        p = await self._caller(context, "ListAudit", admin=False, tenant=request.tenant)
        tenant = request.tenant or ("" if p.admin else p.tenant)
        since = iso_time(parse_time(request.since, "since")) if request.since else ""
        limit = min(request.limit or 100, _MAX_AUDIT)
        if request.HasField("after_seq") or request.until:  # export: chain order, paged
            until = iso_time(parse_time(request.until, "until")) if request.until else ""
            entries = await self.accounts.store.audit_page(
                tenant, since, until, request.after_seq, limit
            )
            return _bounded_reply(entries, newest_first=False)
        entries = await self.accounts.store.audit(tenant, since, limit)
        return _bounded_reply(entries, newest_first=True)

    async def VerifyAudit(self, request, context):
        await self._caller(context, "VerifyAudit")
        result = await self.accounts.store.verify_audit()
        return admin_pb2.VerifyAuditResponse(
            ok=result.ok,
            checked=result.checked,
            first_bad_seq=result.first_bad_seq,
            problem=result.problem,
            checkpoint_seq=result.start_seq,
        )

    # -- validation --

    def _tier(self, name: str) -> str:
        if name not in self.accounts.tiers:
            raise InvalidRequest(
                f"Unknown tier '{name}' (known: {', '.join(self.accounts.tiers)}).", param="tier"
            )
        return name

    @staticmethod
    def _patterns(patterns) -> tuple[str, ...]:
        cleaned = tuple(p.strip() for p in patterns)
        if any(not p for p in cleaned):
            raise InvalidRequest("Model patterns must not be empty.", param="model_patterns")
        return cleaned

    @staticmethod
    def _check_rotation(t: Tenant) -> None:
        if t.rotation_max_age_s < 0 or t.rotation_overlap_s < 0:
            raise InvalidRequest("Rotation settings must be >= 0.", param="rotation_max_age_s")
        if t.rotation_max_age_s and t.rotation_overlap_s >= t.rotation_max_age_s:
            raise InvalidRequest(
                "The rotation overlap must be shorter than the maximum key age.",
                param="rotation_overlap_s",
            )


def _bounded_reply(entries: list[AuditEntry], *, newest_first: bool) -> admin_pb2.AuditResponse:
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


def add_to_server(accounts: Accounts, server: grpc.aio.Server) -> AdminService:
    service = AdminService(accounts)
    admin_pb2_grpc.add_AdminServicer_to_server(service, server)
    return service
