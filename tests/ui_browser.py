"""A real server and a real browser for the UI's tests: uvicorn on a free loopback port in a thread, and
Debian's chromium (`/usr/bin/chromium`, installed by apt-get; Playwright downloads no browser) with a fresh
profile, headless, nothing in the background that would reach the network.

    python -m tests.ui_browser PROJECT OUT_DIR    # docs/ui.md's screenshots of PROJECT (see tests.ui_project)
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
START_SECONDS = 30


@contextmanager
def serving(app) -> Iterator[str]:  # noqa: ANN001 - an ASGI application
    """Serve `app` on 127.0.0.1 (a free port) until the block ends; yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_SECONDS
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the UI server did not start")
        time.sleep(0.02)  # polling for the server's own start flag, not waiting for a fault
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def chromium() -> Iterator[object]:
    """A Playwright browser context on Debian's chromium, with a fresh profile directory."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="courier-ui-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1600, "height": 900})
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def screenshots(project: Path, out: Path) -> list[Path]:
    """The overview and the checkout experiment's page of `project`, as PNG files in `out`."""
    from optimizely_courier.ui.app import create_app

    shots = [("ui-overview.png", "/"), ("ui-experiment.png", "/experiments/checkout")]
    with serving(create_app(project)) as base, chromium() as browser:
        page = browser.new_page()
        for name, path in shots:
            page.goto(base + path)
            page.screenshot(path=str(out / name), full_page=True)
    return [out / name for name, _ in shots]


if __name__ == "__main__":
    for written in screenshots(Path(sys.argv[1]), Path(sys.argv[2])):
        print(written)
