"""Typed configuration: defaults in the fields, overridden by a TOML file and LLMAAS_* env.

Read once per process in `from_env()`, never at import time. A bad value names its key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    pass


def _cast_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected a boolean, got {raw!r}")


def env(key: str, cast: Callable[[str], T], default: T, environ: dict[str, str] | None = None) -> T:
    """`LLMAAS_<KEY>` cast to its type, or default; a bad value raises ConfigError naming it."""
    environ = os.environ if environ is None else environ
    raw = environ.get(key)
    if raw is None or raw == "":
        return default
    caster: Callable[[str], Any] = _cast_bool if cast is bool else cast
    try:
        return caster(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key}={raw!r} is not valid: {exc}") from exc


def load_file(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The TOML config file named by LLMAAS_CONFIG (default: ./llmaas.toml if present)."""
    environ = os.environ if environ is None else environ
    path = Path(environ.get("LLMAAS_CONFIG", "llmaas.toml"))
    if not path.exists():
        if "LLMAAS_CONFIG" in environ:
            raise ConfigError(f"LLMAAS_CONFIG={str(path)!r}: file not found")
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def run_dir(environ: dict[str, str] | None = None) -> Path:
    """Where the embedded default keeps state: PIDs, SQLite, dev certificates."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("LLMAAS_RUN_DIR", ".run")).resolve()


# The edge refuses bodies above LLMAAS_MAX_BODY_BYTES with 413. Every gRPC message limit in
# the mesh is sized from it (plus headroom for the other fields), so a body the edge accepted
# is never refused deeper in as a transport error.
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
GRPC_HEADROOM_BYTES = 1024 * 1024


def max_body_bytes(environ: dict[str, str] | None = None) -> int:
    value = env("LLMAAS_MAX_BODY_BYTES", int, DEFAULT_MAX_BODY_BYTES, environ)
    if value < 1024:
        raise ConfigError(f"LLMAAS_MAX_BODY_BYTES={value} is too small (at least 1024)")
    return value


def grpc_message_limit(environ: dict[str, str] | None = None) -> int:
    """The send/receive limit of every gRPC server and channel in the mesh."""
    return max_body_bytes(environ) + GRPC_HEADROOM_BYTES


# Where the routers are: LLMAAS_ROUTER_ADDRS (a comma list) for the edge, the CLI and the
# workers' announcements; the older single-address names still work when it is unset.
ROUTER_ADDRS_KEY = "LLMAAS_ROUTER_ADDRS"
LEGACY_ROUTER_KEYS = ("LLMAAS_ROUTER_ADDR", "LLMAAS_ROUTER_ADDRESS")
# gRPC target schemes passed through as they are (e.g. dns:///router.llmaas:50051, which a
# channel resolves to every router pod).
_TARGET_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:")


def parse_addresses(raw: str, key: str = ROUTER_ADDRS_KEY) -> tuple[str, ...]:
    """`host:port,host:port` (or gRPC targets such as `dns:///name:port`), in order, without
    duplicates; a malformed entry raises ConfigError naming `key`."""
    out: list[str] = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        if not item.startswith(_TARGET_SCHEMES):
            host, sep, port = item.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(f"{key}: expected host:port, got {item!r}")
        if item not in out:
            out.append(item)
    return tuple(out)


def router_addresses(
    environ: dict[str, str] | None = None,
    legacy: tuple[str, ...] = LEGACY_ROUTER_KEYS,
    default: str = "",
) -> tuple[str, ...]:
    """LLMAAS_ROUTER_ADDRS, else the first of the `legacy` names that is set, else `default`."""
    environ = os.environ if environ is None else environ
    for key in (ROUTER_ADDRS_KEY, *legacy):
        if environ.get(key, "").strip():
            return parse_addresses(environ[key], key)
    return parse_addresses(default, "the default router address")
