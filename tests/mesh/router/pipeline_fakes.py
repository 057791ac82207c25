"""In-memory stand-ins for the pipeline steps' unit tests (no gRPC, no servers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from router_fakes import CATALOG

from mesh.catalog import Catalog
from mesh.catalog.entries import parse_text
from mesh.pb import common_pb2
from mesh.router.access import Admission, Principal, RequestRecord, StaticKeys
from mesh.router.ratelimit import Budget
from mesh.router.tenants import DEFAULT_TIERS, Tier


def catalog() -> Catalog:
    return Catalog(Path("catalog.csv"), parse_text(CATALOG), (0, 0))


@dataclass
class FakeContext:
    """What the steps read of a grpc.aio context: metadata and the deadline."""

    metadata: tuple[tuple[str, str], ...] = ()
    remaining: float | None = None

    def invocation_metadata(self):
        return self.metadata

    def time_remaining(self):
        return self.remaining


@dataclass
class FakeWorkerHandle:
    models: dict[str, common_pb2.ModelInfo]
    address: str = "w"


@dataclass
class FakePool:
    """The WorkerPool queries the steps make: models announced, served, windows."""

    infos: dict[str, common_pb2.ModelInfo] = field(default_factory=dict)
    served: set[str] = field(default_factory=set)
    handles: list[FakeWorkerHandle] = field(default_factory=list)
    picks: list[str] = field(default_factory=list)

    def knows(self, model: str) -> bool:
        return model in self.infos

    def is_served(self, model: str) -> bool:
        return model in self.served

    def model_infos(self) -> dict[str, common_pb2.ModelInfo]:
        return dict(self.infos)

    def context_length(self, model: str) -> int:
        info = self.infos.get(model)
        return info.context_length if info else 0

    def workers(self) -> list[FakeWorkerHandle]:
        return self.handles

    def pick(self, model: str):
        self.picks.append(model)
        return None


class TieredAccess(StaticKeys):
    """StaticKeys with a tier and a budget, recording what the pipeline writes."""

    def __init__(self, tier: Tier | None = None) -> None:
        super().__init__({"sk": "acme"})
        self._tier = tier or DEFAULT_TIERS["standard"]
        self.budget = Budget(lambda: 0.0)
        self.admitted: list[int] = []
        self.records: list[RequestRecord] = []
        self.released: list[RequestRecord] = []
        self.record_fails = False

    def tier(self, name: str) -> Tier:
        return self._tier

    async def admit(self, principal: Principal, model: str, estimated_tokens: int) -> Admission:
        self.admitted.append(estimated_tokens)
        return Admission(headers={"X-RateLimit-Limit-Requests": "60"})

    async def release(self, principal, admission, record) -> None:
        self.released.append(record)

    async def record(self, record: RequestRecord) -> None:
        if self.record_fails:
            raise RuntimeError("disk I/O error")
        self.records.append(record)


PRINCIPAL = Principal(tenant="acme", key_id="key_1")
PRICE = Decimal("1")
