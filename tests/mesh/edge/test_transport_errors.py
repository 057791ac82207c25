"""gRPC transport limits are reported as "too large", never as rate limiting (issue #14.5)."""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest

from mesh.errors import RateLimited, from_rpc_error
from mesh.pb import common_pb2, inference_pb2, inference_pb2_grpc

pytestmark = pytest.mark.timeout(30)


class _Models(inference_pb2_grpc.InferenceServicer):
    def GetModel(self, request, context):
        return common_pb2.ModelInfo(id=request.id)


class _Err(grpc.RpcError):
    def __init__(self, code, details, md=()):
        self._code, self._details, self._md = code, details, md

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._md


def test_a_message_over_the_peer_limit_is_413_not_429():
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2),
        options=[("grpc.max_receive_message_length", 1024)],
    )
    inference_pb2_grpc.add_InferenceServicer_to_server(_Models(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = inference_pb2_grpc.InferenceStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                stub.GetModel(inference_pb2.GetModelRequest(id="x" * 4096), timeout=10)
    finally:
        server.stop(0)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    err = from_rpc_error(info.value)
    assert (err.http_status, err.code, err.kind.openai_type) == (
        413,
        "request_too_large",
        "invalid_request_error",
    )
    assert "too large" in err.message and "rate" not in err.message.lower()


def test_metadata_size_errors_are_not_rate_limits():
    raw = _Err(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "Stream removed (received metadata size exceeds hard limit (1048633 vs. 16384))",
    )
    err = from_rpc_error(raw)
    assert err.http_status == 413 and err.code == "request_too_large"


def test_a_real_rate_limit_stays_429():
    limited = RateLimited("slow down", retry_after=2)
    raw = _Err(limited.kind.grpc_code, limited.message, limited.trailing_metadata())
    err = from_rpc_error(raw)
    assert (err.http_status, err.code, err.retry_after) == (429, "rate_limit_exceeded", 2.0)
