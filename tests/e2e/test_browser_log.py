"""The harness's rule for what a browser test counts as an error (``console_errors``), in a real
Chromium against a small local HTTP server: a static request cut off by a navigation the test made
is not an error; a missing asset, a refused connection, a request the page itself aborted and a
JavaScript error are."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eportal_core.testing import free_port
from eportal_core.testing.browser import console_errors

pytestmark = pytest.mark.e2e

ICON = '<link rel="icon" href="data:,">'  # no favicon request
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>'


class Site(ThreadingHTTPServer):
    """Pages for the browser; ``/slow.svg`` answers only once ``release`` is set."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.closed_port = free_port()  # nobody listens there
        self.slow_started = threading.Event()
        self.release = threading.Event()

    def pages(self) -> dict[str, str]:
        return {
            "/slow-page": f'<!doctype html>{ICON}<img src="/slow.svg"><a href="/other">other</a>',
            "/other": f"<!doctype html>{ICON}<p>other</p>",
            "/missing-page": f'<!doctype html>{ICON}<img src="/missing.svg">',
            "/refused-page": f'<!doctype html>{ICON}<img src="http://127.0.0.1:{self.closed_port}/x.svg">',
            "/js-error-page": f"<!doctype html>{ICON}<script>window.noSuchFunction()</script>",
        }


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        site = self.server
        if self.path == "/slow.svg":
            site.slow_started.set()
            site.release.wait(30)
            self._answer(200, "image/svg+xml", SVG)
        elif self.path in site.pages():
            self._answer(200, "text/html", site.pages()[self.path].encode())
        else:
            self._answer(404, "text/plain", b"not found")

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the browser went away: that is the point of /slow.svg
            pass


@pytest.fixture(scope="module")
def site_server():
    site = Site()
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    yield site
    site.release.set()
    site.shutdown()
    site.server_close()


@pytest.fixture
def site(site_server):
    site_server.slow_started.clear()
    site_server.release.clear()
    yield site_server
    site_server.release.set()


def open_with_slow_image(page, site) -> None:
    """The page is up and its image still loading."""
    page.goto(site.url + "/slow-page", wait_until="domcontentloaded")
    assert site.slow_started.wait(10), "the browser never asked for /slow.svg"


@pytest.mark.parametrize("navigation", ["reload", "link"])
def test_a_request_cut_off_by_a_navigation_is_not_an_error(site, page, navigation):
    open_with_slow_image(page, site)
    with page.expect_event("requestfailed") as failed:
        if navigation == "reload":
            page.reload(wait_until="domcontentloaded")
        else:
            page.get_by_role("link", name="other").click()
    assert (failed.value.url, failed.value.failure) == (site.url + "/slow.svg", "net::ERR_ABORTED")
    site.release.set()
    assert console_errors(page) == []
    assert page.browser_log.navigation_aborts == [f"requestfailed: {site.url}/slow.svg net::ERR_ABORTED"]


def test_a_request_the_page_aborts_itself_is_an_error(site, page):
    page.goto(site.url + "/other")
    page.evaluate("""() => { window.controller = new AbortController();
                             fetch('/slow.svg', {signal: window.controller.signal}).catch(() => {}); }""")
    assert site.slow_started.wait(10)
    with page.expect_event("requestfailed"):
        page.evaluate("window.controller.abort()")
    page.goto(site.url + "/other")  # a navigation after the failure does not excuse it
    assert console_errors(page) == [f"requestfailed: {site.url}/slow.svg net::ERR_ABORTED"]


def test_a_missing_asset_is_an_error(site, page):
    with page.expect_console_message(lambda msg: msg.type == "error"):
        page.goto(site.url + "/missing-page")
    page.goto(site.url + "/other")
    errors = console_errors(page)
    assert len(errors) == 1 and "the server responded with a status of 404 " in errors[0], errors
    assert console_errors(page, allow_statuses=(404,)) == []


def test_a_refused_connection_is_an_error(site, page):
    with page.expect_event("requestfailed"):
        page.goto(site.url + "/refused-page")
    page.goto(site.url + "/other")
    url = f"http://127.0.0.1:{site.closed_port}/x.svg"
    assert sorted(console_errors(page)) == [f"console: Failed to load resource: net::ERR_CONNECTION_REFUSED ({url})",
                                            f"requestfailed: {url} net::ERR_CONNECTION_REFUSED"]


def test_a_javascript_error_is_an_error(site, page):
    with page.expect_event("pageerror"):
        page.goto(site.url + "/js-error-page")
    page.goto(site.url + "/other")
    errors = console_errors(page)
    assert len(errors) == 1 and errors[0].startswith("pageerror: ") and "noSuchFunction" in errors[0], errors
