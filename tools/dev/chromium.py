"""Headless Chromium for the console's browser checks: find it, or install Debian's package.

The machine is offline except for the package registries, so the flags also switch off
every background connection Chromium would try.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
_APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def find() -> str | None:
    for name in CANDIDATES:
        if path := shutil.which(name):
            return path
    return None


def _apt(*args: str) -> None:
    subprocess.run(["apt-get", *args], check=True, timeout=900, capture_output=True, env=_APT_ENV)


def find_or_install() -> str:
    """The browser's path; installs `chromium` with apt when missing (package lists first
    refreshed if the plain install fails). Raises RuntimeError saying why it cannot."""
    if path := find():
        return path
    if not shutil.which("apt-get"):
        raise RuntimeError("Chromium not found and no apt-get to install it")
    try:
        try:
            _apt("install", "-y", "chromium")
        except subprocess.CalledProcessError:
            _apt("update")
            _apt("install", "-y", "chromium")
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(
            f"Chromium not found and apt-get install chromium failed: {exc}"
        ) from exc
    if path := find():
        return path
    raise RuntimeError("apt-get installed chromium but no browser binary was found")


def headless_args(profile: Path, window: str = "1280,900", budget_ms: int = 5000) -> list[str]:
    """Flags for a one-shot headless run (add --screenshot=... or --dump-dom, then the URL)."""
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        f"--window-size={window}",
        f"--virtual-time-budget={budget_ms}",
    ]
