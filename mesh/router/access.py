"""The router's view of accounts: who is calling, what they may do, what they used.

`AccessControl` is the seam between the request path (mesh.router.pipeline) and the account
store. `StaticKeys` is the minimal implementation (keys from config, no limits);
`mesh.router.accounts.Accounts` is the full one (tenants, tiers, usage, audit).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from mesh.errors import PermissionDenied, Unauthenticated

if TYPE_CHECKING:  # ratelimit imports this module (Ticket is an Admission)
    from mesh.router.ratelimit import Budget
    from mesh.router.tenants import Tier

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    tenant: str
    key_id: str
    admin: bool = False
    tier: str = "standard"
    model_patterns: tuple[str, ...] = ("*",)
    filter_enabled: bool = True
    experimental_opt_in: bool = False
    content_logging: bool = False  # the tenant keeps its prompts/answers (encrypted at rest)

    def may_use(self, model_id: str) -> bool:
        return any(fnmatch.fnmatchcase(model_id, p) for p in self.model_patterns)


@dataclass(slots=True)
class Admission:
    """A request admitted by the limiter; `headers` go on the response (x-ratelimit-*)."""

    headers: dict[str, str] = field(default_factory=dict)
    estimated_tokens: int = 0


@dataclass(slots=True)
class RequestRecord:
    """What one request did: written to usage and the audit trail."""

    request_id: str
    action: str  # chat.completions, completions, embeddings, models.list, ...
    model: str
    outcome: str  # ok, cancelled, error, refused
    status: int  # HTTP-equivalent status
    principal: Principal | None = None
    key_id: str = ""
    reason: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    system_tokens: int = 0
    cost_eur: Decimal = Decimal(0)
    energy_kwh: Decimal = Decimal(0)
    latency_ms: float = 0.0
    filter_verdict: str = ""


class AccessControl(Protocol):
    # The month-to-date spend per tenant, where the accounts keep one (None: no budgets).
    # The pipeline holds a request's estimated cost against it while the request runs.
    budget: Budget | None

    def tier(self, name: str) -> Tier | None:
        """The billing tier named `name` (limits, fair-queue weight, monthly budget);
        None where the accounts know no tiers."""
        ...

    async def authenticate(self, api_key: str) -> Principal:
        """The principal of a key; raises Unauthenticated."""
        ...

    async def admit(self, principal: Principal, model: str, estimated_tokens: int) -> Admission:
        """Applies the tier's limits; raises RateLimited / QuotaExceeded."""
        ...

    async def release(
        self, principal: Principal, admission: Admission, record: RequestRecord
    ) -> None:
        """Ends an admitted request: frees its concurrency slot, reconciles token estimates."""
        ...

    async def record(self, record: RequestRecord) -> None:
        """Appends usage and audit for any request, refused ones included."""
        ...

    def ensure_recording(self) -> None:
        """Raises Unavailable (503 `audit_unavailable`) while usage/audit cannot be written
        durably, so no request is served unaudited; called before admitting a request."""
        ...


def check_model_allowed(principal: Principal, model_id: str) -> None:
    if not principal.may_use(model_id):
        raise PermissionDenied(
            f"The API key {principal.key_id} is not allowed to use model '{model_id}'. "
            "Ask your administrator to extend the key's model permissions.",
            code="model_not_allowed",
            param="model",
        )


def key_fingerprint(api_key: str) -> str:
    return "key_" + hashlib.sha256(api_key.encode()).hexdigest()[:12]


class StaticKeys:
    """Keys from configuration (the dev key): every served model, no limits, log-only records."""

    budget: Budget | None = None  # no budgets

    def __init__(self, keys: dict[str, str]) -> None:
        # key secret -> tenant; compared in constant time by digest.
        self._digests = {hashlib.sha256(k.encode()).digest(): t for k, t in keys.items() if k}

    async def authenticate(self, api_key: str) -> Principal:
        digest = hashlib.sha256(api_key.encode()).digest()
        for known, tenant in self._digests.items():
            if hmac.compare_digest(known, digest):
                return Principal(tenant=tenant, key_id=key_fingerprint(api_key))
        raise Unauthenticated(
            "Incorrect API key provided. Pass a valid key as 'Authorization: Bearer <key>'.",
            code="invalid_api_key",
        )

    async def admit(self, principal: Principal, model: str, estimated_tokens: int) -> Admission:
        return Admission(estimated_tokens=estimated_tokens)

    def tier(self, name: str) -> Tier | None:
        return None  # no tiers: no limits, fair-queue weight 1

    def ensure_recording(self) -> None:
        return None  # records go to the log only: nothing durable to fail

    async def release(
        self, principal: Principal, admission: Admission, record: RequestRecord
    ) -> None:
        return None

    async def record(self, record: RequestRecord) -> None:
        log.info(
            "request %s %s model=%s outcome=%s status=%s tokens=%s/%s",
            record.request_id,
            record.action,
            record.model,
            record.outcome,
            record.status,
            record.input_tokens,
            record.output_tokens,
        )
