"""Request errors the engine raises, and the kind each is for its caller.

The engine knows nothing of gRPC: the table at the end registers each error with the mesh's
one error table (`mesh.errors.KIND_BY_ERROR`), which the error interceptor of every mesh
server (`mesh.rpc`) turns into a gRPC status with trailing metadata.
"""

from __future__ import annotations

from mesh import errors as mesh_errors

# One class for the router's pre-check and the engine's own: the refusal is built in one
# place (mesh.prompt_bounds.check_fits) and is a 400 like every RequestError.
ContextLengthExceeded = mesh_errors.ContextLengthExceeded


class RequestError(ValueError):
    """The request itself is wrong; the caller must change it (HTTP 400)."""

    code = "invalid_request_error"

    def __init__(self, message: str, param: str = "") -> None:
        super().__init__(message)
        self.param = param


class InvalidRequest(RequestError):
    """A field has a value the worker cannot honour."""


class EngineFailed(RuntimeError):
    """A step of the engine failed while this request was in it (or the engine is down):
    the request did not complete; another worker (or this one, later) may serve it."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "The worker's engine failed while running this request"
            + (f" ({detail})" if detail else "")
            + "; retry the request."
        )


class ModelNotFound(LookupError):
    """The request names a model this worker does not serve."""

    def __init__(self, requested: str, served: str) -> None:
        super().__init__(
            f"The model '{requested}' is not served by this worker; it serves '{served}'."
        )
        self.requested = requested
        self.served = served


class Draining(RuntimeError):
    """The worker is shutting down and takes no new sequences."""

    def __init__(self) -> None:
        super().__init__("This worker is shutting down; retry on another worker.")


# Looked up along the MRO: InvalidRequest is a RequestError (its `code` and `param` travel as
# metadata; ContextLengthExceeded is a mesh error with its own kind); Draining and EngineFailed send the router elsewhere.
mesh_errors.register_kinds(
    {
        RequestError: mesh_errors.INVALID_REQUEST,
        ModelNotFound: mesh_errors.NOT_FOUND,
        Draining: mesh_errors.UNAVAILABLE,
        EngineFailed: mesh_errors.UNAVAILABLE,
    }
)
