"""Step 1: who is calling (the bearer key, checked by the access control)."""

from __future__ import annotations

from mesh.errors import Unauthenticated
from mesh.router.access import AccessControl, Principal
from mesh.router.pipeline.call import metadata


async def authenticate(access: AccessControl, context) -> Principal:
    """The principal of the call's 'Authorization: Bearer <key>'; raises Unauthenticated."""
    header = metadata(context).get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthenticated(
            "You didn't provide an API key. Pass it as 'Authorization: Bearer <key>'.",
            code="missing_api_key",
        )
    return await access.authenticate(key.strip())
