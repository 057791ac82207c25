"""Step 2: which model the call names, whether it may use it, and what serves it.

The catalog names the model (its lifecycle, kind and the `weights` workers serve it with);
a model only workers announce is served as is. Listing (GET /v1/models) uses the same view.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from pathlib import Path

from mesh.catalog import (
    Catalog,
    CatalogEntry,
    experimental_allowed,
    experimental_message,
    retired_message,
)
from mesh.catalog.model_info import model_info
from mesh.errors import InvalidRequest, ModelRetired, NotFound, PermissionDenied, Unavailable
from mesh.pb import common_pb2
from mesh.router.access import Principal, check_model_allowed
from mesh.router.pipeline.call import Call
from mesh.router.workers import WorkerPool

# Who owns (in `GET /v1/models`) a model workers serve that the catalog does not name: the
# operator that serves it (LLMAAS_MODELS, `python -m worker --served-model-name`).
OPERATOR_ENV, DEFAULT_OPERATOR = "LLMAAS_OPERATOR", "operator"


class Models:
    """The catalog and the workers' announcements, as one view of the models."""

    def __init__(
        self,
        pool: WorkerPool,
        catalog: Catalog,
        today: Callable[[], date],
        operator: str | None = None,
    ) -> None:
        self._pool, self._catalog, self._today = pool, catalog, today
        self._operator = operator or os.environ.get(OPERATOR_ENV) or DEFAULT_OPERATOR

    def resolve(self, call: Call, kind: str) -> None:
        """Sets call.entry/served_name; 404 unknown, 410 retired, 400 wrong kind."""
        call.entry = entry = self._catalog.get(call.model)
        call.served_name = self.served_name(call.model, entry)
        if entry is None and not self._pool.knows(call.model):
            raise NotFound(
                f"The model '{call.model}' does not exist. List the available models with GET /v1/models.",
                code="model_not_found",
                param="model",
            )
        if entry is not None:
            lifecycle = self._catalog.lifecycle(entry.id, self._today())
            if lifecycle.state == "retired":
                raise ModelRetired(retired_message(entry), code="model_retired", param="model")
            call.headers.update({k.lower(): v for k, v in lifecycle.headers.items()})
        model_kind = entry.kind if entry else self._pool.model_infos()[call.model].kind or "chat"
        if model_kind != kind:
            endpoint = "/v1/embeddings" if model_kind == "embedding" else "/v1/chat/completions"
            raise InvalidRequest(
                f"The model '{call.model}' is a {model_kind} model; call {endpoint} with it.",
                code="model_not_supported",
                param="model",
            )

    @staticmethod
    def authorise(call: Call) -> None:
        """403 for a model outside the key's patterns, or experimental without opt-in."""
        check_model_allowed(call.principal, call.model)
        if call.entry is not None and not experimental_allowed(
            call.entry, call.principal.experimental_opt_in
        ):
            raise PermissionDenied(
                experimental_message(call.entry), code="model_not_allowed", param="model"
            )

    def check_served(self, call: Call) -> None:
        """503 model_unavailable when no healthy worker serves the call's model."""
        if self._pool.is_served(call.served_name):
            return
        if self._pool.knows(call.served_name):
            raise Unavailable(
                f"No healthy worker serves '{call.model}' right now; retry in a few seconds.",
                code="model_unavailable",
                param="model",
                retry_after=5,
            )
        raise Unavailable(
            f"The model '{call.model}' is in the catalog but not served on this platform. "
            "Pick a served model from GET /v1/models.",
            code="model_unavailable",
            param="model",
        )

    def served_name(self, model_id: str, entry: CatalogEntry | None) -> str:
        """The model id workers announce for `model_id`. A catalog entry is served by the
        weights its `weights` column names (a builtin id such as 'smollm2:135m', or a path,
        announced by its file stem / directory name); without a mapping, only by a worker
        announcing the id itself. Never by any other model's weights."""
        if entry is None or not entry.weights:
            return model_id
        weights = entry.weights
        if self._pool.knows(weights):
            return weights
        path = Path(weights)
        return next(
            (alias for alias in (path.name, path.stem) if alias and self._pool.knows(alias)),
            weights,
        )

    def window(self, call: Call) -> int:
        """The model's context window: what its workers enforce, else the catalog's; 0 unknown."""
        return self._pool.context_length(call.served_name) or (
            call.entry.context_length if call.entry else 0
        )

    def visible(
        self, principal: Principal, include_retired: bool = False
    ) -> list[common_pb2.ModelInfo]:
        """The models `principal` may use: the catalog's, then those only workers announce."""
        served = self._pool.model_infos()
        out: list[common_pb2.ModelInfo] = []
        for entry in self._catalog.entries():
            if not principal.may_use(entry.id):
                continue
            if not experimental_allowed(entry, principal.experimental_opt_in):
                continue
            lifecycle = self._catalog.lifecycle(entry.id, self._today())
            info = model_info(entry, lifecycle, served.get(self.served_name(entry.id, entry)))
            if include_retired or info.phase != "retired":
                out.append(info)
        listed = {m.id for m in out}
        for m in served.values():
            if m.id not in listed and principal.may_use(m.id):
                info = common_pb2.ModelInfo()
                info.CopyFrom(m)
                info.owned_by = info.owned_by or self._operator
                out.append(info)
        return out

    def find(self, principal: Principal, model_id: str) -> common_pb2.ModelInfo:
        """One model `principal` may use, retired ones included; 404 otherwise."""
        for info in self.visible(principal, include_retired=True):
            if info.id == model_id:
                return info
        raise NotFound(
            f"The model '{model_id}' does not exist or your key may not use it. "
            "List the available models with GET /v1/models.",
            param="model",
        )
