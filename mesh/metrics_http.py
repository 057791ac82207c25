"""Serving Prometheus metrics: a port per gRPC process, and the edge's mesh-wide `/metrics`.

Ports (override with `LLMAAS_METRICS_PORT`, `off` disables; bind host `LLMAAS_METRICS_HOST`,
default 127.0.0.1 like every embedded-default port):
  router 9101, filter 9102, workers 9110 + (gRPC port - 50061), i.e. 9110, 9111, ...

The edge's `/metrics` = the edge process's own registry + the `llmaas_*` / `vllm:*` families
scraped from its upstreams (`LLMAAS_METRICS_UPSTREAMS`, comma-separated URLs, default the
router's `http://127.0.0.1:9101/metrics`). The router records the request, token, cost and
latency metrics and the workers' load, so one scrape of the edge shows the whole mesh. Other
processes' `process_*`/`python_*` families are left out (they would collide with the edge's
own and misdescribe it). Production Prometheus should scrape every component directly.

Who may read them (the metrics name tenants, their tokens, cost and budget use):
  - the edge's `/metrics` is on the public port: it answers 401 unless the request carries
    `Authorization: Bearer <LLMAAS_METRICS_TOKEN>` (a scrape credential) or the admin key
    (`LLMAAS_ADMIN_KEY`);
  - a component's own port is on loopback by default. With `LLMAAS_METRICS_TOKEN` set it
    requires the same bearer token (the edge sends it when it scrapes its upstreams), and a
    non-loopback `LLMAAS_METRICS_HOST` is refused unless the token is set.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mesh.config import ConfigError, env
from mesh.errors import MeshError, Unauthenticated

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"router": 9101, "filter": 9102, "worker": 9110}
WORKER_GRPC_BASE = 50061
DEFAULT_UPSTREAMS = ("http://127.0.0.1:9101/metrics",)
SCRAPE_TIMEOUT_S = 2.0  # well under Prometheus' default 10 s scrape timeout
_MESH_PREFIXES = ("llmaas_", "vllm:")
_ADDITIVE_TYPES = ("counter", "histogram", "summary")
METRICS_TOKEN_ENV = "LLMAAS_METRICS_TOKEN"
_CHALLENGE = 'Bearer realm="llmaas-metrics"'

UPSTREAM_UP = Gauge(
    "llmaas_metrics_upstream_up",
    "1 when the edge's last scrape of the upstream succeeded.",
    ["upstream"],
)


def metrics_port(
    component: str, grpc_port: int | None = None, environ: dict[str, str] | None = None
) -> int | None:
    """The metrics port of a component; None when disabled with LLMAAS_METRICS_PORT=off."""
    environ = os.environ if environ is None else environ
    raw = environ.get("LLMAAS_METRICS_PORT", "").strip().lower()
    if raw in ("off", "none", "disabled", "-1"):
        return None
    if raw:
        return env("LLMAAS_METRICS_PORT", int, 0, environ)
    if component not in DEFAULT_PORTS:
        raise ConfigError(f"unknown component {component!r}; set LLMAAS_METRICS_PORT")
    base = DEFAULT_PORTS[component]
    offset = (grpc_port or 0) - WORKER_GRPC_BASE
    if component == "worker" and 0 <= offset < 1000:
        return base + offset
    return base  # other layouts (free ports in tests) must set LLMAAS_METRICS_PORT per process


# ---------------------------------------------------------------- scrape credentials


def metrics_token(environ: dict[str, str] | None = None) -> str:
    return env(METRICS_TOKEN_ENV, str, "", environ)


def scrape_credentials(environ: dict[str, str] | None = None) -> list[str]:
    """Bearer tokens that may read the edge's /metrics: the scrape token and the admin key."""
    candidates = (metrics_token(environ), env("LLMAAS_ADMIN_KEY", str, "", environ))
    return [c for c in candidates if c]


def bearer_authorized(authorization: str | None, credentials: Iterable[str]) -> bool:
    """`Authorization: Bearer <token>` matches one of `credentials` (constant-time compare)."""
    scheme, _, presented = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return False
    given = presented.strip().encode("utf-8", "replace")
    # Compare against every credential (no early exit) so timing does not say which matched.
    matches = [hmac.compare_digest(given, c.encode()) for c in credentials if c]
    return any(matches)


def _unauthorized(where: str) -> MeshError:
    return Unauthenticated(
        f"{where} needs a scrape credential: send 'Authorization: Bearer <token>' with "
        f"{METRICS_TOKEN_ENV} (or the admin key). The metrics name every tenant's usage.",
        code="invalid_api_key",
    )


# ---------------------------------------------------------------- per-process port


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape on stderr."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass


def _bearer_app(app: Callable, token: str) -> Callable:
    """A WSGI app that answers 401 (OpenAI error object) unless the bearer token matches."""

    def guarded(environ: dict, start_response: Callable):
        if bearer_authorized(environ.get("HTTP_AUTHORIZATION"), [token]):
            return app(environ, start_response)
        body = json.dumps(_unauthorized("this metrics port").to_openai()).encode()
        start_response(
            "401 Unauthorized",
            [("Content-Type", "application/json"), ("WWW-Authenticate", _CHALLENGE)],
        )
        return [body]

    return guarded


def _serve_wsgi(app: Callable, host: str, port: int) -> ThreadingWSGIServer:
    """prometheus_client's start_http_server, with our app (it cannot take one)."""

    class Server(ThreadingWSGIServer):
        address_family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]

    httpd = make_server(host, port, app, Server, handler_class=_QuietHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True, name="metrics http").start()
    return httpd


def start_metrics_server(
    port: int | None, host: str | None = None, environ: dict[str, str] | None = None
) -> int | None:
    """Serves this process's registry on http://host:port/metrics (a daemon thread).

    Returns the bound port (port 0 picks a free one), or None when port is None or busy
    (logged as an error: a metrics port conflict must not stop the component serving).
    Raises ConfigError for a non-loopback host without LLMAAS_METRICS_TOKEN: the metrics
    name every tenant, they must not be public by accident.
    """
    if port is None:
        return None
    from mesh.tls import is_loopback  # noqa: PLC0415 - avoids an import cycle at module load

    environ = os.environ if environ is None else environ
    host = host or environ.get("LLMAAS_METRICS_HOST") or "127.0.0.1"
    token = metrics_token(environ)
    if not token and not is_loopback(host):
        raise ConfigError(
            f"LLMAAS_METRICS_HOST={host}: metrics name every tenant's usage; serving them on a "
            f"non-loopback address needs a scrape credential ({METRICS_TOKEN_ENV})"
        )
    app = make_wsgi_app(REGISTRY)
    try:
        server = _serve_wsgi(_bearer_app(app, token) if token else app, host, port)
    except OSError as exc:  # metrics must never take a serving component down
        log.error(
            "metrics not served: cannot listen on %s:%d (%s); set LLMAAS_METRICS_PORT",
            host,
            port,
            exc,
        )
        return None
    return server.server_port


class _Families(Collector):
    """A registry-like wrapper so `generate_latest` can render already-parsed families."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self):
        return iter(self._families)


def merge_texts(local_text: str, upstream_texts: list[str]) -> list[Metric]:
    """The local families, plus the mesh samples of the upstreams, merged by family name.

    Samples are concatenated per family; for an identical (name, labels) sample the first
    one wins, the local one before any upstream (the edge imports `mesh.metrics` too, so it
    holds every family, mostly empty). Parsing the local text too keeps family names
    consistent (the parser and the registry name counters differently). Between upstreams,
    counters and histograms with the same labels are added up: several routers
    (LLMAAS_ROUTERS) each count their own requests; a gauge (a worker's load, which every
    router reports) keeps the first value.
    """
    families: dict[str, Metric] = {}
    seen: dict[tuple, tuple[Metric, int, int]] = {}  # key -> (family, sample index, source)

    def add(fam: Metric, source: int) -> None:
        target = families.setdefault(fam.name, Metric(fam.name, fam.documentation, fam.type))
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            if key not in seen:
                seen[key] = (target, len(target.samples), source)
                target.samples.append(s)
                continue
            into, index, first = seen[key]
            if 0 < first != source and fam.type in _ADDITIVE_TYPES:
                into.samples[index] = into.samples[index]._replace(
                    value=into.samples[index].value + s.value
                )

    for fam in text_string_to_metric_families(local_text):
        add(fam, 0)
    for source, text in enumerate(upstream_texts, start=1):
        for fam in text_string_to_metric_families(text):
            if fam.name.startswith(_MESH_PREFIXES):
                add(fam, source)
    return list(families.values())


async def _scrape(client: httpx.AsyncClient, url: str, timeout_s: float) -> str:
    token = metrics_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = await client.get(url, timeout=timeout_s, headers=headers)
        resp.raise_for_status()
    except httpx.HTTPError as exc:
        log.debug("metrics upstream %s unreachable: %s", url, exc)
        UPSTREAM_UP.labels(url).set(0)
        return ""
    UPSTREAM_UP.labels(url).set(1)
    return resp.text


_upstreams: tuple[str, ...] | None = None


def configure_upstreams(urls: list[str] | tuple[str, ...]) -> None:
    """Sets the URLs the edge's /metrics merges (else LLMAAS_METRICS_UPSTREAMS, read once)."""
    global _upstreams
    _upstreams = tuple(u for u in urls if u)


def _configured_upstreams() -> tuple[str, ...]:
    if _upstreams is None:
        raw = os.environ.get("LLMAAS_METRICS_UPSTREAMS")
        configure_upstreams(raw.split(",") if raw is not None else DEFAULT_UPSTREAMS)
    return _upstreams or ()


async def render_mesh_metrics(
    upstreams: tuple[str, ...] | None = None, timeout_s: float = SCRAPE_TIMEOUT_S
) -> bytes:
    """The edge's own registry merged with the mesh families of its upstreams."""
    urls = _configured_upstreams() if upstreams is None else upstreams
    texts: list[str] = []
    if urls:
        async with httpx.AsyncClient() as client:
            texts = list(await asyncio.gather(*(_scrape(client, u, timeout_s) for u in urls)))
    local_text = generate_latest(REGISTRY).decode()  # after the scrapes: includes UPSTREAM_UP
    return generate_latest(_Families(merge_texts(local_text, texts)))


async def metrics_endpoint(request: Request) -> Response:
    """Starlette handler for the edge's `GET /metrics` (Prometheus text format).

    The edge's port is public: without a scrape credential it answers 401 and scrapes
    nothing (no tenant's data, no load on the upstreams).
    """
    if not bearer_authorized(request.headers.get("authorization"), scrape_credentials()):
        err = _unauthorized("GET /metrics")
        return JSONResponse(
            err.to_openai(), status_code=err.http_status, headers={"WWW-Authenticate": _CHALLENGE}
        )
    return Response(await render_mesh_metrics(), media_type=CONTENT_TYPE_LATEST)
