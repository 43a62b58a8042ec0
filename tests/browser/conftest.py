"""Browser tests: Playwright (sync API) driving Debian's Chromium, headless, against the
test app served by werkzeug on 127.0.0.1 (the same app and database as the ``db``
fixture: a test seeds its data through services, then drives the browser).

Chromium is never downloaded: ``/usr/bin/chromium`` (``apt-get install chromium``)
or ``KASSA_CHROMIUM``. Without it, or without the ``playwright`` package, the tests
skip, and fail under CI=true (kassa.testing.services.missing).

Every test leaves a full-page screenshot in ``test-artifacts/browser/``; a page that
logs a JavaScript error or a Content-Security-Policy violation fails the test.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

from kassa.testing.pytest_plugin import TEST_PASSWORD, free_port
from kassa.testing.services import missing

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
#: console messages that are not faults: the status of a page a test opens on purpose (403, 404)
IGNORED_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status of (4\d\d)")


def _chromium_path() -> str | None:
    """KASSA_CHROMIUM when set (and only it), else Debian's chromium."""
    wanted = os.environ.get("KASSA_CHROMIUM")
    if wanted:
        return wanted if os.access(wanted, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("The playwright package", "pip install -e '.[test]'")
    executable = _chromium_path()
    if executable is None:
        missing("Chromium", "apt-get install chromium, or set KASSA_CHROMIUM to its path")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
    except Exception as exc:  # a broken or incompatible binary: say so like a missing one
        playwright.stop()
        missing(f"Chromium at {executable}", f"it does not start: {str(exc).splitlines()[0]}")
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture(scope="session")
def live_server(app):
    """The test app on http://127.0.0.1:<free port>, served by werkzeug in a thread."""
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="kassa-live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


class UI:
    """A browser tab on the live server, with what it saw: dialogs and JavaScript errors."""

    def __init__(self, page, base_url: str, name: str):
        self.page = page
        self.base_url = base_url
        self.name = name
        self.dialogs: list[tuple[str, str]] = []  # (type, message)
        self.errors: list[str] = []
        self.accept_dialogs = True
        page.on("dialog", self._dialog)
        page.on("console", lambda m: m.type == "error" and not IGNORED_CONSOLE.search(m.text)
                and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _dialog(self, dialog):
        self.dialogs.append((dialog.type, dialog.message))
        dialog.accept() if self.accept_dialogs else dialog.dismiss()

    def url(self, path: str) -> str:
        return self.base_url + path

    def goto(self, path: str):
        return self.page.goto(self.url(path))

    def sign_in(self, email: str, password: str = TEST_PASSWORD) -> None:
        page = self.page
        self.goto("/login")
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password", exact=True).fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/login" not in url)

    def sign_out(self) -> None:
        self.page.get_by_role("button", name="Sign out").click()
        self.page.wait_for_url(re.compile(r"/login$"))

    def submit(self, button) -> None:
        """Click ``button`` and wait for the page its form leads to."""
        with self.page.expect_navigation():
            button.click()

    def flash(self) -> str:
        """The page's messages (waiting for the first to be there)."""
        self.page.locator(".flash").first.wait_for()
        return " ".join(self.page.locator(".flash").all_inner_texts())

    def snap(self, step: str = "") -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / (self.name + (f"--{step}" if step else "") + ".png")
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def ui(chromium, live_server, db, request):
    """A fresh browser context (no cookies) per test; a full-page screenshot at the end."""
    context = chromium.new_context(base_url=live_server, accept_downloads=True, locale="en-GB",
                                   viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(10_000)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    tab = UI(page, live_server, name)
    yield tab
    try:
        tab.snap()
    finally:
        context.close()
    assert not tab.errors, f"the browser reported errors: {tab.errors}"
