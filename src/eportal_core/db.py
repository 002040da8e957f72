"""Engines and sessions: SQLite tuned for concurrent use, PostgreSQL alike, one request one transaction."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
import transaction
import zope.sqlalchemy
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 10000


def make_engine(url: str, **kwargs) -> sa.Engine:
    """An engine for ``url``. SQLite gets WAL, synchronous=NORMAL, a busy timeout, foreign keys,
    and explicit ``BEGIN`` so that write transactions can ask for ``BEGIN IMMEDIATE``."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}, **kwargs)
        _tune_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return sa.create_engine(url, **kwargs)


def _tune_sqlite(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn, _record):
        # take transaction control from the driver so BEGIN is ours (see on_begin)
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        # A read transaction that later writes fails at once with SQLITE_BUSY when another
        # writer got in first; write transactions therefore take the write lock up front.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def writer(engine: sa.Engine) -> sa.Engine:
    """The same engine, but its transactions start with ``BEGIN IMMEDIATE`` on SQLite."""
    return engine.execution_options(sqlite_begin="IMMEDIATE")


def get_session_factory(engine: sa.Engine) -> sessionmaker:
    """Sessions for console, API, CLI and jobs: they may write, so they begin IMMEDIATE on SQLite."""
    return sessionmaker(bind=writer(engine), expire_on_commit=False)


#: ``request.environ`` flag: keep this request's writes even though it ends in HTTPForbidden (a refused
#: HTTP Basic login on the API is a 401, and its login failure must still count for the throttle)
KEEP_WRITES_ON_FORBIDDEN = "eportal.keep_writes_on_forbidden"


def commit_veto(request, response) -> bool:
    """pyramid_tm's own rule (abort when an exception view rendered the response), but for
    KEEP_WRITES_ON_FORBIDDEN: a permission refusal happens before the view ran, so the only writes
    then are the ones the security policy made."""
    if getattr(request, "exc_info", None) is None:
        return False
    from pyramid.httpexceptions import HTTPForbidden
    return not (request.environ.get(KEEP_WRITES_ON_FORBIDDEN) and isinstance(request.exception, HTTPForbidden))


def wants_transaction(request) -> bool:
    """pyramid_tm's activate hook: the agent hot paths that never touch request.dbsession (listed
    by their modules in registry["eportal.transactionless"]) skip the transaction machinery."""
    path = request.environ.get("PATH_INFO", "")  # raw: request.path_info raises on bytes that are not UTF-8
    return not any(pattern.match(path) for pattern in request.registry.get("eportal.transactionless", ()))


def get_tm_session(session_factory: sessionmaker, transaction_manager, request=None) -> Session:
    """A session joined to ``transaction_manager``: it commits or aborts with it."""
    dbsession = session_factory(info={"request": request})
    zope.sqlalchemy.register(dbsession, transaction_manager=transaction_manager)
    return dbsession


@contextmanager
def transaction_session(session_factory: sessionmaker) -> Iterator[Session]:
    """One transaction outside a request (CLI commands, scheduled jobs, a plugin's background work): a
    session joined to a transaction manager of its own, committed when the block ends, aborted if it raises."""
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        yield get_tm_session(session_factory, tm)


def includeme(config):
    """``request.dbsession`` and ``request.tm``, one transaction per request (pyramid_tm)."""
    settings = config.get_settings()
    settings["tm.manager_hook"] = "pyramid_tm.explicit_manager"
    settings["tm.commit_veto"] = "eportal_core.db.commit_veto"
    settings["tm.activate_hook"] = "eportal_core.db.wants_transaction"
    config.include("pyramid_tm")
    engine = config.registry.get("dbengine")
    if engine is None:
        engine = make_engine(settings["sqlalchemy.url"])
        config.registry["dbengine"] = engine
    config.registry["dbsession_factory"] = get_session_factory(engine)

    def dbsession(request):
        # looked up at request time so tests can swap the factory for a rolled-back one
        return get_tm_session(request.registry["dbsession_factory"], request.tm, request=request)

    config.add_request_method(dbsession, reify=True)
