"""Request errors the engine raises, and the kind each is for its caller.

The engine knows nothing of gRPC: the table at the end registers each error with the mesh's
one error table (`mesh.errors.KIND_BY_ERROR`), which the error interceptor of every mesh
server (`mesh.rpc`) turns into a gRPC status with trailing metadata.
"""

from __future__ import annotations

from mesh import errors as mesh_errors


class RequestError(ValueError):
    """The request itself is wrong; the caller must change it (HTTP 400)."""

    code = "invalid_request_error"

    def __init__(self, message: str, param: str = "") -> None:
        super().__init__(message)
        self.param = param


class InvalidRequest(RequestError):
    """A field has a value the worker cannot honour."""


class ContextLengthExceeded(RequestError):
    """Prompt tokens + max_tokens do not fit in the model's context window."""

    code = "context_length_exceeded"

    def __init__(
        self,
        context_length: int,
        num_prompt_tokens: int,
        max_tokens: int | None,
        *,
        num_bytes: int | None = None,
    ) -> None:
        """num_bytes: refused by size before tokenising; num_prompt_tokens is then a lower
        bound (the bytes over the most any one token stands for)."""
        has = (
            f"has {num_prompt_tokens} tokens"
            if num_bytes is None
            else f"of {num_bytes} bytes has at least {num_prompt_tokens} tokens"
        )
        if max_tokens is None:  # "up to the context window", but the prompt fills it
            message = (
                f"This model's maximum context length is {context_length} tokens; your prompt "
                f"{has}, which leaves no room to generate. Shorten the prompt."
            )
            param = "messages"
        else:
            message = (
                f"This model's maximum context length is {context_length} tokens; your prompt "
                f"{has} and max_tokens asks for {max_tokens}. "
                "Shorten the prompt or lower max_tokens."
            )
            param = "messages" if num_prompt_tokens >= context_length else "max_tokens"
        super().__init__(message, param=param)
        self.context_length = context_length
        self.num_prompt_tokens = num_prompt_tokens
        self.max_tokens = max_tokens


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


# Looked up along the MRO: ContextLengthExceeded and InvalidRequest are RequestErrors (their
# `code` and `param` travel as metadata); Draining and EngineFailed send the router elsewhere.
mesh_errors.register_kinds(
    {
        RequestError: mesh_errors.INVALID_REQUEST,
        ModelNotFound: mesh_errors.NOT_FOUND,
        Draining: mesh_errors.UNAVAILABLE,
        EngineFailed: mesh_errors.UNAVAILABLE,
    }
)
