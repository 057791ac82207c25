"""llmaas mesh: edge, router and security filter, over one shared layer.

Components (each a process, each a package; `python -m mesh edge|router|filter`):
  mesh.edge     OpenAI-compatible HTTP front (it also serves mesh.console's pages)
  mesh.router   authentication, limits, screening, placement, accounting
  mesh.filter   the prompt-security sidecar
  mesh.console  the operator console's pages and data (read by the edge and the router)
  worker        the inference engine (its own top-level package)

The shared layer is everything else directly under `mesh/`; every component may use it and
it imports no component (nor `tools`):
  mesh.pb                           generated protobuf/gRPC code, the wire itself
  mesh.wire                         the wire contract beyond the protos: health service
                                    names, metadata keys
  mesh.catalog                      the model catalog (models.csv, lifecycle, ModelInfo)
  mesh.rpc, mesh.interceptor        server bootstrap, channels, interceptor plumbing
  mesh.tls, mesh.meshtoken          mTLS roles, the control-plane token
  mesh.errors                       the one error table (gRPC status <-> HTTP <-> OpenAI)
  mesh.config                       env/TOML settings and limits
  mesh.tracing, mesh.tracing_asgi   OpenTelemetry
  mesh.metrics, mesh.metrics_http   Prometheus metrics and their endpoint
  mesh.observations, mesh.alerts, mesh.alert_rules   request samples and alerting
  mesh.crypto                       sealed content records
  mesh.pricing, mesh.prompt_bounds  prices, cheap prompt-size bounds

Components meet only through this layer and on the wire: the edge imports no router, filter
or worker code, the router and the workers never import each other, the filter imports no
other component. `lint-imports` enforces it (pyproject.toml [tool.importlinter]; `make lint`
and tests/test_import_contracts.py, which also fails when a new module here is left out).
"""
