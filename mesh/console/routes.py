"""Starlette routes for the console, for the edge: the page and its JSON.

The edge holds no business logic: `/console/api/summary` hands the caller's API key to
`fetch_summary` (the edge's call to the router, which authenticates the key and scopes the
summary: admin key -> every tenant, tenant key -> its own) and returns what it gets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from mesh.errors import MeshError, Unauthenticated

# (request, api key) -> summary; raises MeshError (e.g. rebuilt by from_rpc_error).
SummaryFetcher = Callable[[Request, str], Awaitable[dict[str, Any]]]
PAGE = Path(__file__).with_name("console.html")
# The page runs its own inline script and fetches only its own origin.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src 'self' data:",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@cache
def _page() -> bytes:
    return PAGE.read_bytes()


async def console_page(request: Request) -> Response:
    return HTMLResponse(_page(), headers=_PAGE_HEADERS)


def bearer_key(request: Request) -> str:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthenticated("Missing API key: send 'Authorization: Bearer <key>'.")
    return key.strip()


def console_routes(fetch_summary: SummaryFetcher) -> list[Route]:
    async def summary(request: Request) -> Response:
        try:
            data = await fetch_summary(request, bearer_key(request))
        except MeshError as err:
            return JSONResponse(err.to_openai(), status_code=err.http_status)
        return JSONResponse(data, headers={"Cache-Control": "no-store"})

    return [
        Route("/console", console_page, methods=["GET"]),
        Route("/console/", console_page, methods=["GET"]),
        Route("/console/api/summary", summary, methods=["GET"]),
    ]
