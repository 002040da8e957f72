"""Fixtures of the patch source tests, on top of the shared harness (``eportal_core.testing``).

- ``upstream``: a started :class:`eportal_patch_source.testing.Upstream` (real HTTP, Basic auth,
  Range, drop-once), empty; ``offer(upstream, archives)`` puts archives in its index.
- ``pki``: a throw-away CA and a certificate for ``localhost`` it signs (``openssl``), once per session;
  ``tls_upstream``: the same upstream speaking HTTPS with that certificate, its URL on ``localhost``.
- ``upstream_archives``: the harness's five good archives plus four corrupted ones (a member whose
  checksum is wrong, a ``..`` member, a symlink, a truncated file), released between the good ones.
- ``ps_env``: settings, plugin manager and a :class:`service.Context` whose sessions join the test's
  rolled-back transaction, with a data dir of the test's own.
- ``ps_client``: the harness's ``make_app_client`` with those settings (joined to the same
  transaction), its background runner switched to inline.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from eportal_patch_source import service
from eportal_patch_source.testing import Upstream
from eportal_patch_source.testing_tls import make_test_pki
from eportal_patch_source.web import RUNNER
from sqlalchemy.orm import sessionmaker

from eportal_core.testing import make_test_settings
from eportal_core.testing.core import load_settings
from eportal_core.testing.patches import KERNEL_IDS, make_archive

#: quick retries: a test that fails a request must not wait seconds for the backoff
FAST = {"patch_source.retries": "1", "patch_source.retry_backoff_seconds": "0", "patch_source.timeout_seconds": "10"}

CORRUPT_PLAN = (
    ("checksum", "K20240115_01", "2024-01-15T10:00:00"),
    ("dotdot", "K20240215_01", "2024-02-15T10:00:00"),
    ("symlink", "K20240315_01", "2024-03-15T10:00:00"),
    ("truncated", "K20240415_01", "2024-04-15T10:00:00"),
)


@dataclass
class UpstreamArchives:
    good: list
    corrupt: dict


@pytest.fixture(autouse=True)
def upstream_not_through_a_proxy(monkeypatch):
    """The test upstream is on 127.0.0.1: a proxy in the environment (a CI runner's) must not get
    those requests. Tests about proxies set their own."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def upstream_archives(patch_archives, tmp_path_factory) -> UpstreamArchives:
    base = tmp_path_factory.mktemp("corrupt-archives")
    corrupt = {kind: make_archive(base, name, released, {KERNEL_IDS[0]: 9, KERNEL_IDS[1]: 9}, corrupt=kind,
                                  payload_size=6000, seed=100 + i)
               for i, (kind, name, released) in enumerate(CORRUPT_PLAN)}
    return UpstreamArchives(list(patch_archives), corrupt)


@pytest.fixture
def upstream():
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_test_pki(tmp_path_factory.mktemp("pki"), names=("localhost",))


@pytest.fixture
def tls_upstream(pki):
    server = Upstream(tls=pki.server_context(), host="localhost").start()
    yield server
    server.stop()


@dataclass
class PsEnv:
    settings: dict
    pm: object
    ctx: service.Context
    data_dir: object


@pytest.fixture
def ps_settings(tmp_path, database_url):
    """``ps_settings(**overrides)`` -> (settings, pm) with the test's own data dir and quick retries."""
    def build(**overrides):
        raw = make_test_settings(tmp_path / "data", database_url, **{**FAST, **overrides})
        return load_settings(raw)
    return build


@pytest.fixture
def test_sessions(dbconnection):
    factory = sessionmaker(bind=dbconnection, join_transaction_mode="create_savepoint", expire_on_commit=False)

    @contextmanager
    def sessions():
        db = factory()
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise
        finally:
            db.close()
    return sessions


@pytest.fixture
def ps_env(ps_settings, test_sessions) -> PsEnv:
    settings, pm = ps_settings()
    ctx = service.Context(sessions=test_sessions, settings=settings, pm=pm, actor="test")
    return PsEnv(settings, pm, ctx, Path(settings["eportal.data_dir"]))


@pytest.fixture
def ps_client(make_app_client):
    """``ps_client(**settings)`` -> the harness's ``make_app_client`` with quick retries (``client.settings``),
    its background runner switched to inline."""
    def build(**overrides):
        client = make_app_client(**{**FAST, **overrides})
        client.app.registry[RUNNER].inline = True  # the requests share one connection: no second thread on it
        return client
    return build


# --- real servers --------------------------------------------------------------------------------

#: ini settings of the test servers: quick retries, and no scheduled poll during a test
LIVE_SETTINGS = {"patch_source.retries": "1", "patch_source.retry_backoff_seconds": "0",
                 "patch_source.poll_minutes": "1440"}


@pytest.fixture(scope="module")
def start_ps_server(start_live_server):
    """``start_ps_server("sqlite" | "postgresql", **ini)`` -> a started ``LiveServer`` (``eportal serve``
    with this plugin installed, LIVE_SETTINGS) on a fresh database; all are stopped when the module ends."""
    env = pytest.MonkeyPatch()  # the servers inherit the environment: keep their upstream requests local
    env.setenv("no_proxy", "127.0.0.1,localhost")
    env.setenv("NO_PROXY", "127.0.0.1,localhost")

    def start(backend: str = "sqlite", **settings):
        return start_live_server(backend, **{**LIVE_SETTINGS, **settings})

    yield start
    env.undo()
