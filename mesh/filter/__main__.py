"""``python -m mesh.filter [--host 127.0.0.1] [--port 50052]``.

The port also comes from ``LLMAAS_FILTER_PORT`` (default 50052).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from .service import serve

DEFAULT_PORT = 50052


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mesh.filter", description="prompt-security sidecar"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("LLMAAS_FILTER_PORT", DEFAULT_PORT))
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        import uvloop
    except ImportError:  # optional speed-up only
        asyncio.run(serve(args.host, args.port))
    else:
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
