"""The `Admin` gRPC service: tenants, keys, usage and audit for operators and tenants.

Admin keys may do everything. A tenant's own (non-admin) key may call the read-only
methods for its own tenant only: GetTenant, ListKeys, GetUsage, ListAudit, and
GetSuccessorKey for itself only (`admin_auth`). Changes, successor retrievals and
refusals are audited. Field checks live in `admin_checks`, wire conversion and the
byte-bounded audit pages in `admin_wire`.
"""

from __future__ import annotations

from dataclasses import replace

import grpc

from mesh.errors import InvalidRequest
from mesh.pb import admin_pb2, admin_pb2_grpc
from mesh.router.access import Principal
from mesh.router.accounts import Accounts
from mesh.router.admin_auth import authorize
from mesh.router.admin_checks import check_patterns, check_rotation, check_tier
from mesh.router.admin_wire import (
    audit_pb,
    bounded_reply,
    key_pb,
    parse_time,
    tenant_pb,
    total_of,
    usage_pb,
)
from mesh.router.audit import iso_time
from mesh.router.tenants import Tenant, valid_tenant_name

SERVICE_NAME = "llmaas.v1.Admin"
_MAX_AUDIT = 10_000
_FAR_FUTURE = 253402300799.0  # 9999-12-31
# Kept importable from here (the wire helpers moved to admin_wire).
__all__ = ["SERVICE_NAME", "AdminService", "add_to_server", "audit_pb", "key_pb", "tenant_pb"]


class AdminService(admin_pb2_grpc.AdminServicer):
    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self.directory = accounts.directory

    async def _caller(
        self,
        context: grpc.aio.ServicerContext,
        action: str,
        *,
        admin: bool = True,
        tenant: str | None = "",
        own_key: str | None = None,
    ) -> Principal:
        """The authenticated caller, audited when refused (see `admin_auth.authorize`)."""
        return await authorize(
            self.accounts, context, action, admin=admin, tenant=tenant, own_key=own_key
        )

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
            tier=check_tier(self.accounts.tiers, request.tier or "standard"),
            model_patterns=check_patterns(request.model_patterns) or ("*",),
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
            changes["tier"] = check_tier(self.accounts.tiers, changes["tier"])
        updated = replace(tenant, **changes)
        check_rotation(updated)
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
            request.tenant, check_patterns(request.model_patterns) or None, expires, request.admin
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
            return bounded_reply(entries, newest_first=False)
        entries = await self.accounts.store.audit(tenant, since, limit)
        return bounded_reply(entries, newest_first=True)

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


def add_to_server(accounts: Accounts, server: grpc.aio.Server) -> AdminService:
    service = AdminService(accounts)
    admin_pb2_grpc.add_AdminServicer_to_server(service, server)
    return service
