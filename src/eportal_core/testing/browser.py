"""Browser pieces of the shared pytest harness: Chromium through Playwright, and what a console test
does with it.

- ``browser`` (one headless Chromium per session) and ``page`` (a fresh context per test; console
  errors, CSP violations, page errors and failed requests land in ``page.browser_log``;
  :func:`console_errors` returns those that count).
- :func:`log_in` through the console's form; :func:`nav_click` for the navigation bar
  (``group="Settings"`` opens that menu first); :class:`Shots` for screenshots.

Plugin tests use them the same way, since ``eportal_core.testing`` imports these fixtures.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from .live import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (the system's ``/usr/bin/chromium``) driven by Playwright."""
    from . import require_service
    require_service("Chromium", os.path.exists(CHROMIUM), "apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_service("Playwright", False, "pip install -e '.[test]'")
    pw = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    except Exception:
        pw.stop()
        raise
    yield chromium
    chromium.close()
    pw.stop()


class BrowserLog:
    """What went wrong in one page, as strings in ``.errors``: console errors (CSP violations
    included), uncaught page errors and failed requests.

    A request that fails with ``net::ERR_ABORTED`` while its frame (or the main frame) is navigating
    was cut off by that navigation (``page.reload()`` while the logo still loads, a click on a link,
    the page refreshing itself): it goes to ``.navigation_aborts`` instead. "Navigating" means that,
    when the failure is reported, a navigation of the frame had begun after the request started, or
    committed after it, or has begun and not yet committed (the old document's loads are cancelled at
    the commit, which Chromium reports after their failures). Every other failure counts: a refused
    connection, a request the page aborted itself; a 404 or 500 reaches the console as "Failed to
    load resource". A navigation that never commits (a 204, a download) excuses aborts until the frame
    next commits one.
    """

    ABORTED = "net::ERR_ABORTED"

    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []
        self.navigation_aborts: list[str] = []
        self._seq = 0                            # events in the order Playwright delivers them
        self._started: dict[object, int] = {}    # request -> when it started
        self._changed: dict[object, int] = {}    # frame -> when a navigation last began or committed
        self._pending: dict[object, int] = {}    # frame -> when its uncommitted navigation began
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("request", self._on_request)
        page.on("framenavigated", self._on_commit)
        page.on("requestfailed", self._on_request_failed)

    def _tick(self) -> int:
        self._seq += 1
        return self._seq

    @staticmethod
    def _frame(request):
        try:
            return request.frame
        except Exception:  # a service worker's request has none
            return None

    def _on_console(self, msg) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text} ({msg.location.get('url', '')})")

    def _on_request(self, request) -> None:
        seq = self._started[request] = self._tick()
        if request.is_navigation_request():
            frame = self._frame(request)
            self._changed[frame] = self._pending[frame] = seq

    def _on_commit(self, frame) -> None:
        self._changed[frame] = self._tick()
        self._pending.pop(frame, None)

    def _on_request_failed(self, request) -> None:
        entry = f"requestfailed: {request.url} {request.failure}"
        frame, started = self._frame(request), self._started.get(request, 0)
        if request.is_navigation_request() and self._pending.get(frame) == started:
            del self._pending[frame]
        if request.failure == self.ABORTED and any(
                self._changed.get(f, 0) > started or self._pending.get(f, started) < started
                for f in (frame, self.page.main_frame)):
            self.navigation_aborts.append(entry)
        else:
            self.errors.append(entry)


@pytest.fixture
def page(browser):
    """A new browser context and page (1366x800); ``page.browser_log`` (a :class:`BrowserLog`) collects
    what went wrong in it, and :func:`console_errors` returns what counts."""
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    context.set_default_timeout(10_000)
    pg = context.new_page()
    pg.browser_log = BrowserLog(pg)
    yield pg
    context.close()


def console_errors(page, *, allow_statuses: tuple[int, ...] = ()) -> list[str]:
    """The page's console errors, page errors and failed requests (see :class:`BrowserLog` for the
    requests a navigation cut off, which do not count), minus Chromium's 'Failed to load resource'
    for expected statuses (a 401 login page or a 403 refusal is logged like a broken resource)."""
    allowed = [f"the server responded with a status of {s} " for s in allow_statuses]
    return [e for e in page.browser_log.errors if not any(a in e for a in allowed)]


def log_in(page, server: LiveServer, username: str = "admin", password: str | None = None, *,
           succeeds: bool = True) -> None:
    """Log in through the console's form (the admin ``eportal init`` created, by default) and wait
    for the start page to load; ``succeeds=False`` only submits the form (a wrong password)."""
    from playwright.sync_api import expect
    page.goto(server.url + "/admin/login")
    page.fill("#login", username)
    page.fill("#password", password if password is not None else server.admin_password)
    page.get_by_role("button", name="Log in").click()
    if succeeds:
        expect(page).to_have_url(server.url + "/admin/")
        expect(page.locator("header.topbar")).to_be_visible()
        page.wait_for_load_state()  # eportal.js (deferred) has wired the menus and dialogs


def nav_click(page, title: str, group: str | None = None) -> None:
    """Follow the bar's entry ``title`` (at desktop width) and wait for the page to load; with ``group``,
    open that menu first: ``nav_click(page, "Feeds", group="Settings")`` is Settings → Feeds."""
    nav = page.get_by_role("navigation", name="Main")
    if group:
        page.wait_for_load_state("domcontentloaded")  # the menu opens through eportal.js (deferred)
        nav.get_by_role("button", name=group, exact=True).click()
    nav.get_by_role("link", name=title, exact=True).click()
    page.wait_for_load_state()


class Shots:
    """``shot("name")`` saves a full-page screenshot as ``<dir>/NN-name.png`` and prints its path
    (run pytest with ``-s`` to see them)."""

    def __init__(self, page, directory: Path):
        self.page, self.dir, self.n = page, Path(directory), 0
        self.dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str, full_page: bool = True) -> Path:
        self.n += 1
        path = self.dir / f"{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        print(f"screenshot: {path}")
        return path
