"""A fake router (sync gRPC server in threads) for the edge's tests: answers by model name."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent import futures

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.errors import (
    MeshError,
    ModelRetired,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from mesh.pb import common_pb2, inference_pb2, inference_pb2_grpc
from mesh.wire import HEALTH_FILTER as FILTER
from mesh.wire import HEALTH_MESH as MESH
from mesh.wire import HEALTH_MODEL_PREFIX as MODEL_PREFIX

ERRORS: dict[str, MeshError] = {
    "e401": Unauthenticated("bad key", code="invalid_api_key"),
    "e403": PermissionDenied("not yours", param="model"),
    "e404": NotFound("no such model", param="model"),
    "e410": ModelRetired("retired", param="model"),
    "e429": RateLimited(
        "slow down", retry_after=3, headers={"x-ratelimit-remaining-requests": "0"}
    ),
    "e503": Unavailable("no worker", code="model_unavailable", retry_after=5),
}
AUTH = {"Authorization": "Bearer sk-test"}


class FakeRouter(inference_pb2_grpc.InferenceServicer):
    def __init__(self) -> None:
        self.metadata: dict[str, str] = {}
        self.calls = 0  # requests that reached the router

    def _authenticate(self, context) -> None:
        # Like the real router: no valid key (the tests' AUTH), no service.
        md = dict(context.invocation_metadata())
        if md.get("authorization") != AUTH["Authorization"]:
            context.abort_with_status(
                status(Unauthenticated("missing key", code="invalid_api_key"))
            )

    def _start(self, request, context):
        self.calls += 1
        self.metadata = dict(context.invocation_metadata())
        self._authenticate(context)
        err = ERRORS.get(request.model)
        if err is not None:
            context.abort_with_status(status(err))
        context.send_initial_metadata(
            (
                ("x-request-id", self.metadata.get("x-request-id", "")),
                ("x-ratelimit-remaining-requests", "41"),
                ("sunset", "Thu, 31 Dec 2026"),
            )
        )

    def ChatCompletion(self, request, context):
        self._start(request, context)
        base = {"id": "r1", "model": request.model, "created": 1700000000}
        yield inference_pb2.CompletionChunk(text="Hel", **base)
        if request.model == "midfail":
            context.abort(grpc.StatusCode.UNAVAILABLE, "worker died")
        yield inference_pb2.CompletionChunk(text="lo", **base)
        yield inference_pb2.CompletionChunk(
            finish_reason=common_pb2.FINISH_REASON_STOP,
            usage=common_pb2.Usage(
                prompt_tokens=5, completion_tokens=2, reasoning_tokens=0, cached_tokens=1
            ),
            cost=common_pb2.Cost(cost_eur="0.0000125", energy_kwh="0.0000001"),
            **base,
        )

    Completion = ChatCompletion

    def Embeddings(self, request, context):
        self._start(request, context)
        return inference_pb2.EmbeddingsResponse(
            model=request.model,
            data=[inference_pb2.EmbeddingVector(values=[0.5]) for _ in request.inputs],
            usage=common_pb2.Usage(prompt_tokens=2),
        )

    def ListModels(self, request, context):
        self._authenticate(context)
        return inference_pb2.ListModelsResponse(
            models=[common_pb2.ModelInfo(id="smollm2:135m", served=True)]
        )

    def GetModel(self, request, context):
        self._authenticate(context)
        if request.id != "smollm2:135m":
            context.abort_with_status(status(NotFound("unknown model", param="model")))
        return common_pb2.ModelInfo(id=request.id, owned_by="HF", served=True)


class FakeHealth(health_pb2_grpc.HealthServicer):
    def __init__(self) -> None:
        self.model_ok = True

    def Check(self, request, context):  # what the edge's router pool watches
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    def List(self, request, context):
        serving = health_pb2.HealthCheckResponse.SERVING
        model = serving if self.model_ok else health_pb2.HealthCheckResponse.NOT_SERVING
        statuses = {"": serving, FILTER: serving, MODEL_PREFIX + "smollm2:135m": model, MESH: model}
        return health_pb2.HealthListResponse(
            statuses={k: health_pb2.HealthCheckResponse(status=v) for k, v in statuses.items()}
        )


class _Status(grpc.Status):
    def __init__(self, code, details, trailing_metadata):
        self.code, self.details, self.trailing_metadata = code, details, trailing_metadata


def status(err: MeshError) -> grpc.Status:
    return _Status(err.kind.grpc_code, err.message, err.trailing_metadata())


@contextlib.contextmanager
def fake_router() -> Iterator[FakeRouter]:
    """A started fake router on 127.0.0.1; `.port` and `.health` are set."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    fake, fake_health = FakeRouter(), FakeHealth()
    inference_pb2_grpc.add_InferenceServicer_to_server(fake, server)
    health_pb2_grpc.add_HealthServicer_to_server(fake_health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    fake.port, fake.health = port, fake_health
    try:
        yield fake
    finally:
        server.stop(0)
