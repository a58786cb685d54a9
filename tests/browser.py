"""Open a page in a real headless browser (Debian's chromium driven by playwright) and report what a
user would see: the title, console errors, images that failed to load and the visible text.

The browser is the system's /usr/bin/chromium (installed by the set-up), never a downloaded one.
Outside CI a missing browser or playwright skips the calling test; in CI (env CI set) it fails it.
"""
import contextlib
import functools
import http.server
import os
import threading
from dataclasses import dataclass, field

import pytest

CHROMIUM = "/usr/bin/chromium"


@dataclass
class PageResult:
    title: str
    console_errors: list = field(default_factory=list)  # console.error messages and page errors
    broken_images: list = field(default_factory=list)  # img src whose naturalWidth is 0 after load
    text: str = ""  # document.body.innerText


def unavailable(reason):
    """A test tool is missing: skip the calling test, or fail it in CI (env CI set)."""
    if os.environ.get("CI"):
        pytest.fail(f"unavailable in CI: {reason}")
    pytest.skip(f"unavailable: {reason}")


def open_page(url: str, timeout: float = 60) -> PageResult:
    """Load ``url`` in headless chromium, wait until the network is idle, and report the page."""
    return open_pages([url], timeout)[0]


def open_pages(urls, timeout: float = 60):
    """``open_page`` for several URLs in one browser (starting chromium is the slow part)."""
    if not os.path.exists(CHROMIUM):
        unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install -r requirements-docs.txt)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            return [_visit(browser, url, timeout) for url in urls]
        finally:
            browser.close()


def _visit(browser, url, timeout):
    page = browser.new_page()
    errors = []

    def on_console(message):
        # the browser asks every site for /favicon.ico on its own; its 404 is no page error
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url, wait_until="networkidle", timeout=timeout * 1000)
    broken = page.evaluate("() => Array.from(document.images)"
                           ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
    result = PageResult(title=page.title(), console_errors=errors, broken_images=broken,
                        text=page.evaluate("() => document.body.innerText"))
    page.close()
    return result


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output free of access lines
        pass


@contextlib.contextmanager
def serve_directory(path):
    """Serve the folder ``path`` on 127.0.0.1 (a free port) in a thread; yields the base URL
    (no trailing slash)."""
    handler = functools.partial(_QuietHandler, directory=str(path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
