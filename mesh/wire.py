"""The wire contract beyond the protos: health service names and gRPC metadata keys.

Components meet only on the wire (import contracts in pyproject.toml), so the names both
sides of a call must agree on live here, in the shared layer, and nowhere else.
"""

from __future__ import annotations

# -- health (grpc.health.v1) ------------------------------------------------------------
# Set by the router (mesh/router/health.py), read by the edge's `GET /health` (Health.List).
HEALTH_MESH = "llmaas.mesh"  # SERVING when the filter and every expected model are
HEALTH_FILTER = "llmaas.mesh.filter"  # SERVING when the filter answers its health check
HEALTH_MODEL_PREFIX = "llmaas.mesh.model/"  # + model id: SERVING when a healthy worker has it

# -- request metadata ---------------------------------------------------------------------
MD_AUTHORIZATION = "authorization"  # "Bearer <key>": tenant or admin API key
MD_REQUEST_ID = "x-request-id"  # the edge's request id, echoed back and kept in records
MD_MESH_TOKEN = "x-llmaas-mesh-token"  # shared token guarding the control plane (meshtoken)

# -- trailing metadata of an error: what a gRPC status alone cannot carry (mesh.errors) -------
MD_ERROR_CODE = "llmaas-error-code"
MD_ERROR_PARAM = "llmaas-error-param"
MD_HTTP_STATUS = "llmaas-http-status"
MD_RETRY_AFTER = "retry-after"

# -- response metadata the edge copies to HTTP headers ------------------------------------
MD_COPIED_PREFIXES = ("x-ratelimit-", "x-llmaas-")

# -- request bounds every entry point applies (the edge for HTTP, the router for gRPC) ----
MAX_MODEL_ID_CHARS = 256  # a longer model id is refused 400 before authentication
