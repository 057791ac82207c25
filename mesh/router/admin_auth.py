"""Who may call an Admin method: the caller's key, checked and audited when refused.

Admin keys may do everything. A tenant's own (non-admin) key may call the read-only
methods for its own tenant only, and GetSuccessorKey for itself only (a key fetches its
own auto-rotated successor, never that of another key).
"""

from __future__ import annotations

import grpc

from mesh.errors import MeshError, PermissionDenied
from mesh.router.access import Principal
from mesh.router.accounts import Accounts
from mesh.router.keys import public_id


def _bearer(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key.lower() == "authorization" and isinstance(value, str):
            return value.removeprefix("Bearer ").removeprefix("bearer ").strip()
    return ""


async def authorize(
    accounts: Accounts,
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
        principal = await accounts.authenticate(bearer)
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
        await accounts.audit_event(
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
