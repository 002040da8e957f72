"""The shared pytest harness for core and plugin tests (loaded with ``-p eportal_core.testing``).

- ``engine``: a migrated database, once per test session and per backend: every test that uses
  it runs on SQLite and on a real PostgreSQL that the harness starts on a loopback port.
- ``dbsession``: a per-test transaction, rolled back at the end.
- ``app`` / ``testapp``: the real WSGI app (WebTest), its requests joined to that transaction
  (:func:`joined_to_test_transaction`: request sessions, agent reads and check-in writes).
- ``make_app_client``: a freshly assembled app (plugins in code, other settings), joined the same way.
- ``factory`` and ``make_user``/``make_feed``/``make_key``/``make_server``/``make_patchset``: test
  data through the core services (testing/factories.py); ``login``: through the real form.
- ``require_service``: a missing real server fails the run under ``CI=true`` and only skips,
  with a loud reason, on a developer's machine.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import ExitStack, closing, contextmanager, nullcontext
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from ..db import make_engine
from ..settings import load_settings
from .factories import Factories

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BACKENDS = ["sqlite", "postgresql"]


def require_service(name: str, available: bool, reason: str) -> None:
    """Fail (CI) or skip loudly (developer machine) when a real server the test needs is missing."""
    if available:
        return
    message = f"{name} is not available: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing server is a failure)", pytrace=False)
    pytest.skip("SKIPPED FOR LACK OF A REAL SERVER: " + message)


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- PostgreSQL -------------------------------------------------------------------------------

def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (fsync off: for tests only)."""

    def __init__(self, base: Path):
        self.bin = _pg_bin()
        self.dir = base
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0  # initdb refuses to run as root

    def _run(self, *args, **kw):
        cmd = [str(a) for a in args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)

    def start(self) -> str:
        if self.as_postgres:
            if subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
                subprocess.run(["useradd", "--system", "--home-dir", "/var/lib/postgresql", "postgres"], check=True)
            subprocess.run(["chown", "postgres:", str(self.dir)], check=True)
        self.dir.chmod(0o700)
        pwfile = self.dir / "pw"
        pwfile.write_text("postgres-test-pw\n")
        if self.as_postgres:
            subprocess.run(["chown", "postgres:", str(pwfile)], check=True)
        self._run(self.bin / "initdb", "-D", self.dir / "data", "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8")
        self._run(self.bin / "pg_ctl", "-D", self.dir / "data", "-l", self.dir / "server.log", "-w", "-t", "30",
                  "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
                        f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200", "start")
        return f"postgresql+psycopg://postgres:postgres-test-pw@127.0.0.1:{self.port}/postgres"

    def create_database(self, admin_url: str, name: str) -> str:
        engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return admin_url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        try:
            self._run(self.bin / "pg_ctl", "-D", self.dir / "data", "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """Admin URL of a PostgreSQL server for this test session (started here, stopped at the end)."""
    external = os.environ.get("EPORTAL_TEST_PG_URL")
    if external:
        yield external
        return
    # not under pytest's tmp dir: that is private to root, and the server runs as "postgres"
    base = Path(tempfile.mkdtemp(prefix="eportal-test-pg-"))
    server = PostgresServer(base)
    require_service("PostgreSQL", server.bin is not None, "no initdb under /usr/lib/postgresql (apt-get install postgresql)")
    try:
        url = server.start()
    except subprocess.CalledProcessError as exc:
        require_service("PostgreSQL", False, f"could not start: {exc.stderr or exc.stdout}")
    yield url
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


_db_counter = iter(range(1, 10**6))


def new_database_url(request, backend: str, tmp_path_factory) -> str:
    """A fresh, empty database on ``backend``: a SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'eportal.sqlite'}"
    admin_url = request.getfixturevalue("postgres_url")
    name = f"eportal_test_{os.getpid()}_{next(_db_counter)}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


class CommittedDatabase:
    """A fresh, migrated database whose writes commit, for code that reads through connections of
    its own (the agent directory, background threads): ``.url``, ``.engine``, and
    ``with db.session() as session:`` committed when the block ends."""

    def __init__(self, url: str):
        from ..migrate import upgrade
        self.url = url
        self.engine = make_engine(url)
        upgrade(self.engine)

    @contextmanager
    def session(self):
        import transaction

        from ..db import get_session_factory, get_tm_session
        tm = transaction.TransactionManager(explicit=True)
        with tm:
            yield get_tm_session(get_session_factory(self.engine), tm)


@pytest.fixture
def committed_db(request, backend, tmp_path_factory):
    """A :class:`CommittedDatabase` on the test's backend, disposed afterwards."""
    db = CommittedDatabase(new_database_url(request, backend, tmp_path_factory))
    yield db
    db.engine.dispose()


# --- the app and the database -------------------------------------------------------------------

def make_test_settings(data_dir: Path, url: str, **overrides) -> dict:
    raw = {"eportal.data_dir": str(data_dir), "sqlalchemy.url": url, "eportal.scheduler": "false",
           "eportal.password_min_length": "10"}
    raw.update({k: str(v) for k, v in overrides.items()})
    return raw


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(scope="session")
def database_url(request, backend, tmp_path_factory):
    return new_database_url(request, backend, tmp_path_factory)


@pytest.fixture(scope="session")
def engine(database_url):
    """A migrated database (through the real Alembic migrations), shared by the session."""
    from ..migrate import upgrade
    eng = make_engine(database_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def app_settings(tmp_path_factory, database_url):
    settings, pm = load_settings(make_test_settings(tmp_path_factory.mktemp("data"), database_url))
    return settings, pm


@pytest.fixture(scope="session")
def app(app_settings, engine):
    from .. import make_app
    settings, pm = app_settings
    return make_app(settings, pm, engine=engine)


@pytest.fixture
def dbconnection(engine):
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def dbsession(dbconnection):
    """A session inside the test's transaction (committing it only releases a savepoint)."""
    session = sessionmaker(bind=dbconnection, join_transaction_mode="create_savepoint", expire_on_commit=False)()
    yield session
    session.close()


#: what WebTest sends unless a test says otherwise (the host and address of a console user)
DEFAULT_ENVIRON = {"HTTP_HOST": "eportal.test", "REMOTE_ADDR": "192.0.2.10"}


@contextmanager
def joined_to_test_transaction(app, dbconnection):
    """Every database path of ``app`` goes through ``dbconnection`` while the block runs: the request
    sessions (savepoints of the test's transaction), the agent reads (``db_read`` and the agent
    directory's lookups) and the check-in buffer's writes (not started: flush it by hand). At the
    end pending check-ins are flushed into the test's transaction and the app is restored."""
    registry = app.registry
    saved = {name: registry.get(name) for name in ("dbsession_factory", "db_read", "main_feed_id")}
    checkins = registry["checkins"]
    registry["dbsession_factory"] = sessionmaker(bind=dbconnection, join_transaction_mode="create_savepoint",
                                                 expire_on_commit=False)
    registry["db_read"] = lambda: nullcontext(dbconnection)
    registry.pop("main_feed_id", None)  # cached from another database or transaction
    checkins.bind, checkins.autostart = dbconnection, False
    registry["agent_directory"].connection = dbconnection
    try:
        yield app
    finally:
        checkins.flush()
        checkins.bind, checkins.autostart = None, True
        registry["agent_directory"].connection = None
        for name, value in saved.items():
            if value is None:
                registry.pop(name, None)
            else:
                registry[name] = value


@pytest.fixture
def testapp(app, dbconnection, dbsession):
    """WebTest against the real app; each request's transaction is a savepoint of the test's one."""
    import webtest
    with joined_to_test_transaction(app, dbconnection):
        yield webtest.TestApp(app, extra_environ=dict(DEFAULT_ENVIRON))


@pytest.fixture
def make_app_client(tmp_path, database_url, engine, dbconnection, dbsession):
    """``make_app_client(extra_plugins=None, load_entrypoints=True, *, engine=None, **settings)`` ->
    WebTest client of a freshly assembled app: plugins registered in code, installed plugins left
    out with ``load_entrypoints=False``, ini settings by their dotted names (data dir
    ``tmp_path/"data"``), every database path joined to the test's transaction like ``testapp``.
    ``engine`` replaces the app's engine (what the health check probes); ``client.settings`` are
    the validated settings. The apps are disposed of when the test ends."""
    import webtest

    from .. import make_app
    shared_engine, stack = engine, ExitStack()

    def factory(extra_plugins: dict | None = None, load_entrypoints: bool = True, *, engine=None, **overrides):
        raw = make_test_settings(tmp_path / "data", database_url, **overrides)
        settings, pm = load_settings(raw, extra_plugins=extra_plugins, load_entrypoints=load_entrypoints)
        app = make_app(settings, pm, engine=engine if engine is not None else shared_engine)
        stack.callback(app.registry["agent_directory"].engine.dispose)
        stack.enter_context(joined_to_test_transaction(app, dbconnection))
        client = webtest.TestApp(app, extra_environ=dict(DEFAULT_ENVIRON))
        client.settings = settings
        return client

    with stack:
        yield factory


# --- factories (testing/factories.py): bound to the test's session, each call committed ----------

@pytest.fixture
def factory(dbsession, tmp_path) -> Factories:
    """:class:`Factories` on the test's session (``factory.server("k1")``); patchsets go to
    ``tmp_path/"data"``, ``make_app_client``'s data dir. (Not named ``factories``: that would hide
    the module ``eportal_core.testing.factories``.)"""
    return Factories(dbsession, tmp_path / "data")


@pytest.fixture
def make_user(factory):
    """``make_user("bob", readonly=True)`` -> (User, password); the password is ``bob-Secret-123`` unless given."""
    return factory.user


@pytest.fixture
def make_feed(factory):
    """``make_feed("beta", auto=True)`` -> Feed."""
    return factory.feed


@pytest.fixture
def make_key(factory):
    """``make_key("k1", feed="beta", server_limit=2)`` -> Key (a generated 16-character name without one)."""
    return factory.key


@pytest.fixture
def make_server(factory):
    """``make_server("k1", hostname=..., tags="env:prod", checkin_ago=timedelta(days=3))`` -> Server, registered like an agent."""
    return factory.server


@pytest.fixture
def make_patchset(factory):
    """``make_patchset(kernels={kernel_id: level}, enable_on="main")`` -> Patchset, imported into ``tmp_path/"data"``."""
    return factory.patchset


def login(testapp, username: str, password: str, status: int = 303):
    """Log in through the real form (CSRF token and all); returns the response."""
    form = testapp.get("/admin/login").forms[0]
    form["login"] = username
    form["password"] = password
    return form.submit(status=status)


def csrf_token(testapp) -> str:
    """The session's CSRF token, read from the page like a browser would."""
    response = testapp.get("/admin/")
    return response.html.find("input", {"name": "csrf_token"})["value"]
from .browser import browser, page  # noqa: E402,F401  (fixtures for core and plugin e2e tests)
from .live import live_server, live_server_pg, start_live_server  # noqa: E402,F401  (fixtures for core and plugin e2e tests)
from .patches import patch_archives  # noqa: E402,F401  (patchset archives for tests)
