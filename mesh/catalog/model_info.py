"""Catalog entry -> `ModelInfo`: the one conversion the router and the workers share."""

from __future__ import annotations

from datetime import UTC, datetime

from mesh.catalog.entries import CatalogEntry
from mesh.catalog.lifecycle import Lifecycle
from mesh.pb import common_pb2

# A model in notice is listed as "deprecated"; a retired one as "retired" whatever the file says.
_LISTED_PHASE = {"retired": "retired", "notice": "deprecated"}


def model_info(
    entry: CatalogEntry, lifecycle: Lifecycle, worker: common_pb2.ModelInfo | None = None
) -> common_pb2.ModelInfo:
    """What clients see of `entry` on `lifecycle`'s day; `worker` is what a worker reports of it.

    The worker's context window wins over the catalog's nominal one (it is what the worker
    accepts); the model is served only when a worker serves it and it is not retired.
    """
    phase = _LISTED_PHASE.get(lifecycle.state, entry.phase)
    dmp = entry.dmp
    return common_pb2.ModelInfo(
        id=entry.id,
        owned_by=entry.editor,
        created=int(datetime(dmp.year, dmp.month, dmp.day, tzinfo=UTC).timestamp()),
        phase=phase,
        dmp=dmp.isoformat(),
        dsp=entry.dsp.isoformat() if entry.dsp else "",
        context_length=(worker.context_length if worker else 0) or entry.context_length,
        served=bool(worker and worker.served) and phase != "retired",
        kind=entry.kind,
        successor=entry.successor or "",
        energy_kwh_per_mtok=float(entry.energy_kwh_per_mtok),
        deprecation_date=lifecycle.notice_start.isoformat() if lifecycle.notice_start else "",
    )
