"""End-to-end pieces of the shared pytest harness: a real ``eportal serve`` process and Chromium.

- :class:`LiveServer`: a temporary ini and data dir, ``eportal init`` (the printed admin password
  is kept), then ``eportal serve`` on a free loopback port, stopped with SIGTERM like systemd does.
- ``live_server`` / ``live_server_pg``: one such server per test module, on SQLite or on the
  harness's PostgreSQL.
- ``start_live_server``: ``start_live_server("sqlite" | "postgresql", **ini_settings)`` for tests
  that need settings of their own; every server it started is stopped when the module ends.
- ``browser`` (one headless Chromium per session, through Playwright) and ``page`` (a fresh
  context per test; console errors, CSP violations, page errors and failed requests land in
  ``page.browser_log``; :func:`console_errors` returns those that count).
- Agents over HTTP: :func:`register_agent` (``register_server.json``) and :func:`agent_get` (HTTP
  Basic user = server_id); :func:`wait_until` for what the server does in the background; :func:`log_in` through the console's form; :func:`nav_click` for the
  navigation bar (``group="Settings"`` opens that menu first); :class:`Shots` for screenshots.

Plugin tests use them the same way, since ``eportal_core.testing`` imports these fixtures.
"""
from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

# ``testing`` imports this module's fixtures at its end, so its helpers are imported where used

#: the venv's console scripts sit next to its python
VENV_BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

# the same layout as development.ini; {app_settings} holds the per-server keys
INI_TEMPLATE = """\
# written by eportal_core.testing.live for one test server
[app:main]
use = egg:eportal-core

{app_settings}
pyramid.reload_templates = false
pyramid.default_locale_name = en

[server:main]
use = egg:waitress#main
listen = 127.0.0.1:{port}

[loggers]
keys = root, eportal_core, sqlalchemy

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = INFO
handlers = console

[logger_eportal_core]
level = DEBUG
handlers =
qualname = eportal_core

[logger_sqlalchemy]
level = WARN
handlers =
qualname = sqlalchemy.engine

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s:%(lineno)s][%(threadName)s] %(message)s
"""


class LiveServerError(RuntimeError):
    pass


class LiveServer:
    """``eportal serve`` in a subprocess, with its own ini, data dir and database.

    ``LiveServer(base_dir, sqlalchemy_url=None, settings={...}).start()``; then ``.url``,
    ``.admin_password``, ``.ini``, ``.data_dir``, ``.run_cli("kc.eportal", "-l")`` and ``.stop()``.
    """

    def __init__(self, base_dir: str | Path, *, sqlalchemy_url: str | None = None, settings: dict | None = None):
        self.base_dir = Path(base_dir)
        self.data_dir = self.base_dir / "data"
        self.ini = self.base_dir / "eportal.ini"
        self.log_path = self.base_dir / "server.log"
        self.sqlalchemy_url = sqlalchemy_url
        self.settings = {k: str(v) for k, v in (settings or {}).items()}
        self.port: int | None = None
        self.url = ""
        self.admin_password: str | None = None
        self.process: subprocess.Popen | None = None
        self._log_file = None

    # --- helpers ---------------------------------------------------------------------------

    def env(self) -> dict:
        env = dict(os.environ)
        env.pop("EPORTAL_DATA_DIR", None)  # it would override the ini's data dir
        env["EPORTAL_INI"] = str(self.ini)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _write_ini(self) -> None:
        keys = {"eportal.data_dir": str(self.data_dir)}
        if self.sqlalchemy_url:
            keys["sqlalchemy.url"] = self.sqlalchemy_url
        keys.update(self.settings)
        lines = "\n".join(f"{k} = {v}" for k, v in keys.items())
        self.ini.write_text(INI_TEMPLATE.format(app_settings=lines, port=self.port))

    def run_cli(self, program: str, *args: str, check: bool = True, timeout: float = 60, input: str | None = None):
        """Run ``eportal`` or ``kc.eportal`` from this venv against this server's ini."""
        if program not in ("eportal", "kc.eportal"):
            raise ValueError(f"run_cli runs eportal or kc.eportal, not {program!r}")
        result = subprocess.run([str(VENV_BIN / program), *args], env=self.env(), capture_output=True, text=True,
                                timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise LiveServerError(f"{program} {' '.join(args)} exited {result.returncode}:\n"
                                  f"{result.stdout}{result.stderr}")
        return result

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def get(self, path: str, timeout: float = 5):
        """``(status, headers, body)`` of a GET without following redirects."""
        return http_get(self.url + path, timeout=timeout)

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> LiveServer:
        from . import free_port
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._write_ini()
        init = self.run_cli("eportal", "--ini", str(self.ini), "init")
        found = re.search(r"^admin password: (\S+)$", init.stdout, re.M)
        if not found:
            raise LiveServerError(f"eportal init printed no admin password:\n{init.stdout}{init.stderr}")
        self.admin_password = found.group(1)
        return self._serve()

    def restart(self) -> LiveServer:
        """Stop, then serve the same data dir and database again (no ``init``)."""
        self.stop()
        return self._serve()

    def _serve(self) -> LiveServer:
        from . import free_port
        for attempt in range(3):  # a free port can be taken by someone else before we bind it
            if attempt:
                self.port = free_port()
                self._write_ini()
            if self._spawn_and_wait():
                return self
        raise LiveServerError(f"eportal serve could not get a port:\n{self.log_tail()}")

    def _spawn_and_wait(self) -> bool:
        """Start serve; True once /admin/health answers, False when the port was taken."""
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "eportal"), "--ini", str(self.ini), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env())
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self._close_log()
                if "cannot listen" in self.log_tail(5):
                    return False
                raise LiveServerError(f"eportal serve exited with {code} while starting; log tail:\n{self.log_tail()}")
            try:
                status, _, _ = http_get(self.url + "/admin/health", timeout=1)
            except OSError:
                time.sleep(0.05)
                continue
            if status in (200, 503):
                return True
            time.sleep(0.05)
        self.stop()
        raise LiveServerError(f"eportal serve did not answer GET /admin/health within {START_TIMEOUT:.0f} s; "
                              f"log tail:\n{self.log_tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL. Returns the exit code (None if never started)."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._close_log()
        return proc.returncode

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def http_get(url: str, timeout: float = 5) -> tuple[int, dict, bytes]:
    """A GET that does not follow redirects: ``(status, headers, body)``; errors are answers too."""
    try:
        with _opener.open(url, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def http_request(url: str, *, headers: dict | None = None, data: dict | None = None, method: str = "GET",
                 timeout: float = 30) -> tuple[int, bytes]:
    """``(status, body bytes)`` of a request (``data``: form fields); HTTP errors are answers too."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def register_agent(server: LiveServer, key: str, hostname: str) -> str:
    """Register like ``kcarectl --register KEY`` (protocol.md §2); the new server_id."""
    status, body = http_request(server.url + "/admin/api/kcare/register_server.json", method="POST",
                                data={"key": key, "hostname": hostname})
    answer = json.loads(body)
    assert status == 200 and answer["code"] == 0, answer
    return answer["server_id"]


def agent_get(server: LiveServer, path: str, server_id: str) -> tuple[int, bytes]:
    """A GET as the agent does it: HTTP Basic with user = server_id."""
    auth = "Basic " + base64.b64encode(f"{server_id}:x".encode()).decode()
    return http_request(server.url + path, headers={"Authorization": auth})


def health(server: LiveServer) -> dict:
    """The server's ``/admin/health`` JSON, plus ``http_status``."""
    status, _, body = server.get("/admin/health")
    data = json.loads(body)
    data["http_status"] = status
    return data


#: how long :func:`wait_until` waits by default: a bound for a loaded CI machine, not a measure
WAIT_SECONDS = 30.0


def wait_until(predicate, what: str, seconds: float = WAIT_SECONDS, interval: float = 0.1):
    """Call ``predicate`` until it returns something true, and return that; fail the test naming
    ``what`` after ``seconds``. For work the server does in the background (a flush, a refresh)."""
    deadline = time.monotonic() + seconds
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            break
        time.sleep(interval)
    if not result:
        pytest.fail(f"{what}: not within {seconds:g} s", pytrace=False)
    return result


# --- fixtures -------------------------------------------------------------------------------

def _live_server(base: Path, url: str | None = None):
    server = LiveServer(base, sqlalchemy_url=url)
    try:
        server.start()
    except LiveServerError as exc:
        server.stop()
        pytest.fail(str(exc), pytrace=False)
    return server


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """A real ``eportal serve`` on SQLite for this test module (admin password in ``.admin_password``)."""
    server = _live_server(tmp_path_factory.mktemp("live"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live_server_pg(request, tmp_path_factory):
    """The same, on a fresh database of the harness's PostgreSQL."""
    from . import new_database_url
    url = new_database_url(request, "postgresql", tmp_path_factory)
    server = _live_server(tmp_path_factory.mktemp("live-pg"), url)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def start_live_server(request, tmp_path_factory):
    """``start_live_server("sqlite" | "postgresql", **ini_settings)`` -> a started ``LiveServer`` on a
    fresh database; every server started through it is stopped (SIGTERM) when the module ends."""
    from . import new_database_url
    started = []

    def start(backend: str = "sqlite", **settings) -> LiveServer:
        url = None if backend == "sqlite" else new_database_url(request, backend, tmp_path_factory)
        server = LiveServer(tmp_path_factory.mktemp(f"live-{backend}"), sqlalchemy_url=url, settings=settings)
        started.append(server)
        try:
            server.start()
        except LiveServerError as exc:
            server.stop()
            pytest.fail(f"eportal serve on {backend} did not start: {exc}", pytrace=False)
        return server

    yield start
    for server in started:
        server.stop()


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
