"""Headless Chromium for the HTML leaderboard: find the browser, screenshot a page."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ltbench.errors import LTBenchError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install Chromium (Debian/Ubuntu: apt-get install -y chromium)"
WINDOW = (1400, 1600)


def find_browser() -> str | None:
    """The first Chromium-family browser on PATH, or None."""
    return next((p for b in BROWSERS if (p := shutil.which(b))), None)


def screenshot(page: Path, png: Path, window: tuple[int, int] = WINDOW, timeout: float = 60) -> Path:
    """Render ``page`` in headless Chromium and write its viewport to ``png``."""
    exe = find_browser()
    if exe is None:
        raise LTBenchError("--screenshot needs a Chromium browser and none is on PATH", INSTALL_HINT)
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
    cmd += [f"--window-size={window[0]},{window[1]}", f"--screenshot={png}", Path(page).resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not png.exists():
        raise LTBenchError(f"{exe} could not screenshot {page}: {done.stderr.strip()[-300:]}", INSTALL_HINT)
    return png
