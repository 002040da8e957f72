"""End-to-end fixtures: a real ``eportal serve`` process (waitress) on a free loopback port.

``eportal_core.testing_live.LiveServer`` (the shared harness) is used when this tree has it;
until then :class:`MiniLiveServer` stands in with the same small interface: ``start()``,
``stop()`` (SIGTERM, like systemd), ``url``, ``ini``, ``data_dir``, ``process``, ``log_tail()``.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from eportal_core.testing import free_port, new_database_url

VENV_BIN = Path(sys.executable).parent
START_TIMEOUT = 30.0

INI = """\
[app:main]
use = egg:eportal-core
{settings}

[server:main]
use = egg:waitress#main
listen = 127.0.0.1:{port}

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = INFO
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s] %(message)s
"""


class MiniLiveServer:
    """``eportal --ini X init`` then ``eportal --ini X serve --port P`` in a subprocess."""

    def __init__(self, base_dir, *, sqlalchemy_url: str | None = None, settings: dict | None = None):
        self.base_dir = Path(base_dir)
        self.data_dir = self.base_dir / "data"
        self.ini = self.base_dir / "eportal.ini"
        self.log_path = self.base_dir / "server.log"
        self.sqlalchemy_url = sqlalchemy_url
        self.settings = {k: str(v) for k, v in (settings or {}).items()}
        self.port: int | None = None
        self.url = ""
        self.process: subprocess.Popen | None = None

    def env(self) -> dict:
        env = dict(os.environ)
        env.pop("EPORTAL_DATA_DIR", None)   # it would override the ini's data dir
        env["EPORTAL_INI"] = str(self.ini)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self) -> MiniLiveServer:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        keys = {"eportal.data_dir": str(self.data_dir)}
        if self.sqlalchemy_url:
            keys["sqlalchemy.url"] = self.sqlalchemy_url
        keys.update(self.settings)
        self.ini.write_text(INI.format(settings="\n".join(f"{k} = {v}" for k, v in keys.items()), port=self.port))
        init = subprocess.run([str(VENV_BIN / "eportal"), "--ini", str(self.ini), "init"], env=self.env(),
                              capture_output=True, text=True, timeout=120)
        if init.returncode != 0:
            raise RuntimeError(f"eportal init failed:\n{init.stdout}{init.stderr}")
        self.url = f"http://127.0.0.1:{self.port}"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "eportal"), "--ini", str(self.ini), "serve", "--host", "127.0.0.1",
                 "--port", str(self.port)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env())
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"eportal serve exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/admin/health", timeout=1):
                    return self
            except urllib.error.HTTPError:
                return self            # 503 is an answer too: the server is up
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"eportal serve did not answer within {START_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 15) -> int | None:
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
        return proc.returncode

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


try:  # the shared harness, once this tree has it
    from eportal_core.testing_live import LiveServer
except ImportError:
    LiveServer = MiniLiveServer


@pytest.fixture(scope="module")
def start_live_server(request, tmp_path_factory):
    """``start_live_server("sqlite" | "postgresql", **ini_settings)`` -> a started server on a fresh
    database; every server started through it is stopped (SIGTERM) when the module ends."""
    started = []

    def start(backend: str = "sqlite", **settings):
        url = None if backend == "sqlite" else new_database_url(request, backend, tmp_path_factory)
        server = LiveServer(tmp_path_factory.mktemp(f"live-{backend}"), sqlalchemy_url=url, settings=settings)
        started.append(server)
        try:
            server.start()
        except Exception as exc:
            server.stop()
            pytest.fail(f"could not start eportal serve on {backend}: {exc}", pytrace=False)
        return server

    yield start
    for server in started:
        server.stop()
