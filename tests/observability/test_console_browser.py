"""The console page in headless Chromium, against the real console routes and a fake summary.

Saves the screenshot to `.run/console.png`. Chromium is installed with apt when missing
(`tools.chromium`); the test fails when it can be neither found nor installed.
"""

from __future__ import annotations

import asyncio
import random
import time
import zlib
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette

from mesh.console.data import build_summary
from mesh.console.routes import console_routes
from mesh.errors import Unauthenticated
from mesh.observations import RequestSample
from tools.dev.chromium import find_or_install, headless_args

KEY = "sk-console-test"
ROOT = Path(__file__).resolve().parents[2]


def browser() -> str:
    try:
        return find_or_install()
    except RuntimeError as exc:  # the acceptance needs the browser: no silent skip
        pytest.fail(str(exc))


def fake_records(now: float) -> list[RequestSample]:
    rnd = random.Random(7)
    models = {"smollm2:135m": (0.08, 45.0), "llama3.3:70b": (0.6, 12.0), "gemma3:1b": (0.15, 30.0)}
    tenants = ("acme", "globex", "initech")
    out = []
    for i in range(600):
        model = rnd.choice(list(models))
        ttft0, speed = models[model]
        t = now - 3600 + i * 6 + rnd.random() * 5
        load = 1 + 0.8 * (i > 380 and i < 460)  # a slow patch, visible in the graphs
        out_tok = rnd.randint(20, 400)
        ttft = ttft0 * load * (0.7 + rnd.random() * 0.6)
        status = rnd.choices(["200", "429", "503"], [0.95, 0.03, 0.02])[0]
        done = status == "200"
        out.append(
            RequestSample(
                t=t,
                model=model,
                tenant=rnd.choice(tenants),
                status=status,
                ttft_s=ttft if done else None,
                duration_s=ttft + out_tok / speed if done else 0.01,
                input_tokens=rnd.randint(30, 900),
                output_tokens=out_tok if done else 0,
                cost_eur=(out_tok * 4 + 500 * 0.9) / 1e6 if done else 0.0,
                energy_kwh=out_tok * (11.75 if "70b" in model else 0.15) / 1e6,
                request_id=f"chatcmpl-{i:05d}",
            )
        )
    return out


FIRING = [
    {
        "alertname": "ttft_p95_high",
        "summary": "ttft_p95_seconds 2.41 > 2 (model=llama3.3:70b)",
        "labels": {"alertname": "ttft_p95_high", "severity": "warning", "model": "llama3.3:70b"},
        "starts_at": "2024-01-01T10:00:00+00:00",
        "value": 2.41,
        "threshold": 2.0,
    },
    {
        "alertname": "worker_down",
        "summary": "worker_down 1 > 0 (worker=w3)",
        "labels": {
            "alertname": "worker_down",
            "severity": "critical",
            "worker": "w3",
            "model": "gemma3:1b",
        },
        "starts_at": "2024-01-01T10:05:00+00:00",
        "value": 1,
        "threshold": 0,
    },
]


async def _fetch(request, key: str) -> dict:
    if key != KEY:
        raise Unauthenticated("Invalid API key.")
    now = time.time()
    return build_summary(fake_records(now), FIRING, None, now=now)


@pytest.fixture
async def console_url():
    app = Starlette(routes=console_routes(_fetch))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/console"
    server.should_exit = True
    await task


async def _chromium(chromium: str, tmp: Path, url: str, *mode: str) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        chromium,
        *headless_args(tmp / "profile"),
        *mode,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out


def _png_pixels_vary(png: bytes) -> bool:
    """Without an imaging library: the decompressed scanlines of a blank page are nearly
    constant; a rendered dashboard has text, lines and colours."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(png):
        length = int.from_bytes(png[pos : pos + 4], "big")
        if png[pos + 4 : pos + 8] == b"IDAT":
            idat += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    return len(set(raw)) > 64 and raw.count(raw[1:2]) / len(raw) < 0.95


async def test_console_renders_with_key_in_fragment(console_url, tmp_path):
    chromium = browser()
    url = f"{console_url}#key={KEY}"
    dom = (await _chromium(chromium, tmp_path, url, "--dump-dom")).decode()
    assert 'id="app" class=""' in dom or 'id="app" class="hidden"' not in dom
    assert "llama3.3:70b" in dom and "ttft_p95_high" in dom and "initech" in dom
    assert dom.count("<path") >= 4 * 3  # four charts, three models each
    assert dom.count("<tr>") > 20

    shot = ROOT / ".run" / "console.png"
    shot.parent.mkdir(exist_ok=True)
    shot.unlink(missing_ok=True)
    await _chromium(chromium, tmp_path, url, f"--screenshot={shot}")
    png = shot.read_bytes()
    assert len(png) > 40_000, len(png)
    assert _png_pixels_vary(png)


async def test_console_asks_for_a_key_without_one(console_url, tmp_path):
    chromium = browser()
    dom = (await _chromium(chromium, tmp_path, console_url, "--dump-dom")).decode()
    assert 'id="login" class=""' in dom and 'id="app" class="hidden"' in dom


async def test_summary_route_needs_a_valid_key(console_url):
    import httpx

    api = console_url + "/api/summary"
    async with httpx.AsyncClient() as client:
        assert (await client.get(api)).status_code == 401
        bad = await client.get(api, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_api_key"
        ok = await client.get(api, headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200 and ok.json()["scope"] == "admin"
        page = await client.get(console_url)
        assert page.status_code == 200 and "Content-Security-Policy" in page.headers
