"""llmaas-admin's command line: groups, commands and their options."""

from __future__ import annotations

import argparse

PROG = "llmaas-admin"
DESCRIPTION = "llmaas-admin: tenants, keys, usage and audit against a running router."


def on_off(value: str) -> bool:
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError("expected on or off")
    return value == "on"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)
    parser.add_argument(
        "--addr", help="router host:port[,host:port...] (default: $LLMAAS_ROUTER_ADDRS)"
    )
    parser.add_argument("--key", help="API key (default: $LLMAAS_ADMIN_KEY)")
    groups = parser.add_subparsers(dest="group", required=True)

    tenant = groups.add_parser("tenant", help="tenants").add_subparsers(dest="cmd", required=True)
    p = tenant.add_parser("create", parents=[common])
    p.add_argument("name")
    p.add_argument("--tier", default="standard")
    p.add_argument("--models", nargs="+", default=[], metavar="PATTERN")
    tenant.add_parser("list", parents=[common])
    p = tenant.add_parser("get", parents=[common])
    p.add_argument("name")
    p = tenant.add_parser("set", parents=[common])
    p.add_argument("name")
    p.add_argument("--tier")
    p.add_argument("--filter", type=on_off, metavar="on|off")
    p.add_argument("--experimental", type=on_off, metavar="on|off")
    p.add_argument("--rotation-max-age-days", type=float, metavar="N")
    p.add_argument("--rotation-overlap-hours", type=float, metavar="H")
    p.add_argument(
        "--retention-days",
        type=int,
        metavar="N",
        help="keep content and usage detail N days (0 = forever)",
    )
    p.add_argument(
        "--content-logging",
        type=on_off,
        metavar="on|off",
        help="store prompts/answers (encrypted)",
    )

    key = groups.add_parser("key", help="API keys").add_subparsers(dest="cmd", required=True)
    p = key.add_parser("create", parents=[common])
    p.add_argument("--tenant", required=True)
    p.add_argument("--models", nargs="+", default=[], metavar="PATTERN")
    p.add_argument("--expires-in", type=int, default=0, metavar="DAYS")
    p.add_argument("--admin", action="store_true")
    p = key.add_parser("list", parents=[common])
    p.add_argument("--tenant", default="")
    for name in ("rotate", "revoke", "successor"):
        p = key.add_parser(name, parents=[common])
        p.add_argument("key_id")
    key.choices["rotate"].add_argument(
        "--overlap-hours",
        type=float,
        default=0.0,
        help="both keys work this long (default: tenant policy)",
    )

    p = groups.add_parser("usage", parents=[common], help="usage and cost")
    p.add_argument("--tenant", default="")
    p.add_argument("--since", default="")
    p.add_argument("--until", default="")
    audit = groups.add_parser("audit", parents=[common], help="audit trail")
    audit.add_argument("action", nargs="?", choices=["verify", "export"])
    audit.add_argument("--tenant", default="")
    audit.add_argument("--since", default="")
    audit.add_argument("--until", default="", help="export: records before this time")
    audit.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="export format")
    audit.add_argument("--limit", type=int, default=100)
    p = groups.add_parser(
        "migrate", help="move the SQLite store into PostgreSQL (offline: no router needed)"
    )
    p.add_argument("--from", dest="source", default="", help="SQLite accounts database")
    p.add_argument("--content-from", default="", help="SQLite content log (if any)")
    p.add_argument("--to", default="", help="postgresql:// URL (default: LLMAAS_DATABASE_URL)")
    return parser
