"""RouterConfig: every router setting, from defaults, the TOML file and LLMAAS_* env.

File sections used here (all optional):

    [router]   host, port, request_timeout_s, catalog = "path/to/catalog.csv", catalog_reload_s,
               queue_timeout_s, max_queued_per_tenant, max_token_bytes, max_token_runs,
               console_calls_per_window, console_window_s
    [filter]   address, timeout_s, disabled_tenants = ["acme"]
    [prices]   input = "0.9", output = "4", reasoning = "21"          # €/M tokens
    [prices.models."llama3.3:70b"]  input = "...", output = "...", reasoning = "..."
    [[workers]] model = "smollm2:135m"  address = "127.0.0.1:50061"

Environment wins over the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from mesh.config import ConfigError, env, load_file
from mesh.pricing import Prices
from mesh.prompt_bounds import DEFAULT_MAX_TOKEN_BYTES, DEFAULT_MAX_TOKEN_RUNS


@dataclass(frozen=True, slots=True)
class WorkerAddress:
    """A statically configured worker; `model` is what the operator expects it to serve
    (the worker's own Info decides what it is actually sent)."""

    model: str
    address: str


@dataclass(slots=True)
class RouterConfig:
    host: str = "127.0.0.1"
    port: int = 50051
    filter_address: str = "127.0.0.1:50052"
    filter_timeout_s: float = 2.0
    filter_disabled_tenants: frozenset[str] = frozenset()
    workers: tuple[WorkerAddress, ...] = ()
    dev_key: str = ""
    dev_tenant: str = "dev"
    # Upper bound on one request, applied even when the client sets no deadline.
    request_timeout_s: float = 600.0
    health_interval_s: float = 1.0
    catalog_path: Path | None = None
    # How often the catalog file is checked for edits (mtime/size), applied without restart.
    catalog_reload_s: float = 10.0
    # Fair queue (per model) when every worker is saturated: longest wait, then 503.
    queue_timeout_s: float = 30.0
    max_queued_per_tenant: int = 256
    # What the longest vocabulary token may span (mesh.prompt_bounds): a prompt whose bytes
    # prove it cannot fit the window is refused before anything tokenises it.
    max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES
    max_token_runs: int = DEFAULT_MAX_TOKEN_RUNS
    # GetConsoleSummary calls allowed per API key per window (the console polls every 10 s).
    console_calls_per_window: int = 5
    console_window_s: float = 10.0
    prices: Prices = field(default_factory=Prices)
    model_prices: dict[str, Prices] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"router port {self.port} is out of range")
        if self.request_timeout_s <= 0 or self.filter_timeout_s <= 0:
            raise ConfigError("timeouts must be positive")
        if self.max_token_bytes < 1 or self.max_token_runs < 1:
            raise ConfigError("max_token_bytes and max_token_runs must be at least 1")
        if self.console_calls_per_window < 1 or self.console_window_s <= 0:
            raise ConfigError("console_calls_per_window and console_window_s must be positive")
        if self.catalog_reload_s <= 0:
            raise ConfigError(f"catalog_reload_s must be positive, got {self.catalog_reload_s}")

    def prices_for(self, model: str) -> Prices:
        return self.model_prices.get(model, self.prices)

    def filter_enabled_for(self, tenant: str) -> bool:
        return tenant not in self.filter_disabled_tenants

    def expected_models(self) -> frozenset[str]:
        return frozenset(w.model for w in self.workers)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> RouterConfig:
        environ = dict(os.environ) if environ is None else environ
        cfg = _from_file(load_file(environ))
        return replace(
            cfg,
            host=env("LLMAAS_ROUTER_HOST", str, cfg.host, environ),
            port=env("LLMAAS_ROUTER_PORT", int, cfg.port, environ),
            filter_address=env("LLMAAS_FILTER_ADDR", str, cfg.filter_address, environ),
            workers=cfg.workers + env("LLMAAS_WORKER_ADDRS", parse_worker_addrs, (), environ),
            dev_key=env("LLMAAS_DEV_KEY", str, cfg.dev_key, environ),
            request_timeout_s=env(
                "LLMAAS_REQUEST_TIMEOUT_S", float, cfg.request_timeout_s, environ
            ),
            catalog_path=env("LLMAAS_CATALOG", Path, cfg.catalog_path, environ),
            catalog_reload_s=env("LLMAAS_CATALOG_RELOAD_S", float, cfg.catalog_reload_s, environ),
            queue_timeout_s=env("LLMAAS_QUEUE_TIMEOUT_S", float, cfg.queue_timeout_s, environ),
            max_queued_per_tenant=env(
                "LLMAAS_MAX_QUEUED_PER_TENANT", int, cfg.max_queued_per_tenant, environ
            ),
            max_token_bytes=env("LLMAAS_MAX_TOKEN_BYTES", int, cfg.max_token_bytes, environ),
            max_token_runs=env("LLMAAS_MAX_TOKEN_RUNS", int, cfg.max_token_runs, environ),
        )


def parse_worker_addrs(raw: str) -> tuple[WorkerAddress, ...]:
    """`model=host:port,model=host:port` (model ids contain ':', so split on the first '=')."""
    out = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        model, sep, address = item.partition("=")
        if not sep or not model or ":" not in address:
            raise ValueError(f"expected model=host:port, got {item!r}")
        out.append(WorkerAddress(model.strip(), address.strip()))
    return tuple(out)


def _from_file(data: dict[str, Any]) -> RouterConfig:
    router, flt = data.get("router", {}), data.get("filter", {})
    prices = data.get("prices", {})
    try:
        return RouterConfig(
            host=str(router.get("host", "127.0.0.1")),
            port=int(router.get("port", 50051)),
            request_timeout_s=float(router.get("request_timeout_s", 600.0)),
            catalog_path=Path(router["catalog"]) if "catalog" in router else None,
            catalog_reload_s=float(router.get("catalog_reload_s", 10.0)),
            queue_timeout_s=float(router.get("queue_timeout_s", 30.0)),
            max_queued_per_tenant=int(router.get("max_queued_per_tenant", 256)),
            max_token_bytes=int(router.get("max_token_bytes", DEFAULT_MAX_TOKEN_BYTES)),
            max_token_runs=int(router.get("max_token_runs", DEFAULT_MAX_TOKEN_RUNS)),
            console_calls_per_window=int(router.get("console_calls_per_window", 5)),
            console_window_s=float(router.get("console_window_s", 10.0)),
            filter_address=str(flt.get("address", "127.0.0.1:50052")),
            filter_timeout_s=float(flt.get("timeout_s", 2.0)),
            filter_disabled_tenants=frozenset(flt.get("disabled_tenants", ())),
            workers=tuple(
                WorkerAddress(str(w["model"]), str(w["address"])) for w in data.get("workers", ())
            ),
            prices=_prices(prices, Prices()),
            model_prices={
                m: _prices(p, _prices(prices, Prices()))
                for m, p in prices.get("models", {}).items()
            },
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"config file: invalid router settings: {exc}") from exc


def _prices(section: dict[str, Any], base: Prices) -> Prices:
    try:
        return Prices(
            input=Decimal(str(section.get("input", base.input))),
            output=Decimal(str(section.get("output", base.output))),
            reasoning=Decimal(str(section.get("reasoning", base.reasoning))),
        )
    except InvalidOperation as exc:
        raise ConfigError(
            f"config file: [prices] values must be decimal numbers: {section}"
        ) from exc
