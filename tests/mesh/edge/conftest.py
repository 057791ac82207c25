"""A real edge (uvicorn with the production limits) in a thread, in front of the fake router."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import uvicorn

from mesh.edge.__main__ import uvicorn_limits
from mesh.edge.app import create_app
from mesh.edge.config import EdgeConfig
from tests.mesh.edge.fakes import FakeRouter, fake_router


@contextlib.contextmanager
def serve_edge(router: FakeRouter, **overrides) -> Iterator[str]:
    """Serves the edge on 127.0.0.1 (a free port); yields its base URL."""
    config = EdgeConfig(router_address=f"127.0.0.1:{router.port}", port=8000, **overrides)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host="127.0.0.1",
            port=0,
            loop="asyncio",
            log_level="warning",
            **uvicorn_limits(config),
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):  # bounded wait for startup (the lifespan opens the router channel)
        if server.started or not thread.is_alive():
            break
        time.sleep(0.01)
    assert server.started, "the edge did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def edge_factory() -> Iterator[Callable[..., tuple[str, FakeRouter]]]:
    """`edge_factory(**EdgeConfig overrides)` -> (base URL, fake router); stopped at teardown."""
    with contextlib.ExitStack() as stack:

        def start(**overrides) -> tuple[str, FakeRouter]:
            router = stack.enter_context(fake_router())
            return stack.enter_context(serve_edge(router, **overrides)), router

        yield start
