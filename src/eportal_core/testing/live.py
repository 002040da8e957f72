"""End-to-end pieces of the shared pytest harness: a real ``eportal serve`` process and agents over HTTP.

- :class:`LiveServer`: a temporary ini and data dir, ``eportal init`` (the printed admin password
  is kept), then ``eportal serve`` on a free loopback port, stopped with SIGTERM like systemd does.
- ``live_server`` / ``live_server_pg``: one such server per test module, on SQLite or on the
  harness's PostgreSQL.
- ``start_live_server``: ``start_live_server("sqlite" | "postgresql", **ini_settings)`` for tests
  that need settings of their own; every server it started is stopped when the module ends.
- Agents over HTTP: :func:`register_agent` (``register_server.json``) and :func:`agent_get` (HTTP
  Basic user = server_id); :func:`wait_until` for what the server does in the background.
- The browser side (Chromium, ``page``, :func:`log_in`, :func:`nav_click`, :class:`Shots`,
  :func:`console_errors`) is in ``testing/browser.py``.

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
