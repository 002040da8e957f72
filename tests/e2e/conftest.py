"""End-to-end fixtures on top of the shared harness (``eportal_core.testing_live``).

``live_server`` / ``live_server_pg`` (from the harness) run with default settings; tests that need
ini settings of their own (a trusted proxy, a flush interval) start servers through
``start_live_server``.
"""
from __future__ import annotations

import pytest

from eportal_core.testing import new_database_url
from eportal_core.testing_live import LiveServer, LiveServerError


@pytest.fixture(scope="module")
def start_live_server(request, tmp_path_factory):
    """``start_live_server("sqlite" | "postgresql", **ini_settings)`` -> a started ``LiveServer`` on a
    fresh database; every server started through it is stopped (SIGTERM) when the module ends."""
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
