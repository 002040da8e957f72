"""The agent hot path's one lookup: server_id -> (server pk, key id, feed id).

Each worker thread keeps its own DB-API connection (from a small engine of its own, autocommit)
and runs one indexed SELECT through it: no ORM, no pool checkout, no request transaction, so a
check-in costs little more than the bare route (see bench/fleet_bench.py).

On PostgreSQL through psycopg 3 the SELECT is a server-side prepared statement run through libpq
directly (``PGconn.exec_prepared``, which releases the GIL while it waits): measured per lookup in
a loop, 11-20 us of Python and 20-36 us of PostgreSQL CPU against 46 and 40 us through a psycopg
cursor (its parameter adaptation and result wrapping cost more than the lookup itself; see
bench/README.md for what it changes in the running portal). Other drivers use the DB-API cursor.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

_SQL = ("SELECT s.id, s.key_id, k.feed_id FROM servers s LEFT OUTER JOIN keys k ON k.id = s.key_id "
        "WHERE s.server_id = {}")
#: the prepared statement's name on each of the directory's PostgreSQL connections
_STATEMENT = b"eportal_agent_lookup"


class DirectoryError(Exception):
    """libpq reported an error for the lookup (the connection is dropped and the lookup retried once)."""


class AgentDirectory:
    def __init__(self, engine):
        self.engine = engine
        self.sql = _SQL.format("?" if engine.dialect.paramstyle == "qmark" else "%s")
        self._libpq = engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
        self._local = threading.local()
        #: a SQLAlchemy Connection to read through instead (tests: the rolled-back one)
        self.connection = None
        #: server_id -> pk of every server, for check-ins (memory.ServerMemory), or None
        self.memory = None

    def server_pk(self, server_id: str) -> int | None:
        """The check-in path: the server's pk, from memory when it is kept there (a miss is looked
        up in the database and remembered), else through :meth:`lookup`."""
        memory = self.memory if self.connection is None else None
        if memory is not None:
            pk = memory.get(server_id)
            if pk is not None:
                return pk
        row = self.lookup(server_id)
        if row is None:
            return None
        if memory is not None:
            memory.remember(server_id, row[0])
        return row[0]

    def lookup(self, server_id: str) -> tuple | None:
        if self.connection is not None:
            return self.connection.exec_driver_sql(self.sql, (server_id,)).first()
        errors = (self.engine.dialect.loaded_dbapi.Error, DirectoryError)
        for attempt in (1, 2):
            try:
                conn = self._thread_connection()
                if self._libpq:
                    return _exec_prepared(conn.dbapi_connection.pgconn, server_id)
                cur = conn.cursor()
                try:
                    cur.execute(self.sql, (server_id,))
                    return cur.fetchone()
                finally:
                    cur.close()
            except errors:
                # a broken connection (database restarted): drop it and try once on a new one
                self._drop()
                if attempt == 2:
                    raise
        return None

    @contextmanager
    def reading(self):
        """``registry["db_read"]`` on PostgreSQL: this thread's own connection (autocommit, kept
        open), so the reads of an agent request (a patch level, a file's row) cost one round trip
        each: no pool checkout with its pre-ping, no BEGIN, no ROLLBACK. SQLite gets a pooled
        connection each time: its engine opens every SQLAlchemy transaction with an explicit BEGIN
        (db.py), which would stay open on a kept connection."""
        if self.connection is not None:
            yield self.connection
            return
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as conn:
                yield conn
            return
        errors = (DBAPIError, self.engine.dialect.loaded_dbapi.Error)
        self._thread_connection()
        conn = self._local.sa
        try:
            yield conn
        except errors:
            self._drop()
            raise
        finally:
            if getattr(self._local, "sa", None) is conn:
                try:
                    conn.rollback()  # ends SQLAlchemy's transaction marker; nothing is sent in autocommit
                except errors:
                    self._drop()

    def _thread_connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            sa_conn = None
            if self.engine.dialect.name == "sqlite":
                conn = self.engine.raw_connection()
            else:
                # each SELECT sees committed rows; no idle transaction
                sa_conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                conn = sa_conn.connection
            if self._libpq:
                try:
                    _prepare(conn.dbapi_connection.pgconn, self.sql.replace("%s", "$1"))
                except BaseException:
                    _invalidate(sa_conn or conn)
                    raise
            self._local.conn, self._local.sa = conn, sa_conn
        return conn

    def _drop(self) -> None:
        """Forget this thread's connection (broken: the database restarted, say); the next use opens one."""
        conn, sa_conn = getattr(self._local, "conn", None), getattr(self._local, "sa", None)
        self._local.conn = self._local.sa = None
        if sa_conn is not None or conn is not None:
            _invalidate(sa_conn if sa_conn is not None else conn)


def _invalidate(conn) -> None:
    """Invalidate and close a pool connection (fairy) or a SQLAlchemy Connection, quietly."""
    try:
        conn.invalidate()
        conn.close()
    except Exception:
        pass


def _prepare(pgconn, sql: str) -> None:
    from psycopg import pq
    result = pgconn.prepare(_STATEMENT, sql.encode())
    # 42P05: prepared on this connection already (a pooled connection another thread had used)
    if result.status != pq.ExecStatus.COMMAND_OK and result.error_field(pq.DiagnosticField.SQLSTATE) != b"42P05":
        raise DirectoryError(_message(result, "cannot prepare the agent lookup"))


def _exec_prepared(pgconn, server_id: str) -> tuple | None:
    from psycopg import pq
    result = pgconn.exec_prepared(_STATEMENT, [server_id.encode()])
    if result.status != pq.ExecStatus.TUPLES_OK:
        raise DirectoryError(_message(result, "agent lookup failed"))
    if result.ntuples == 0:
        return None
    key_id, feed_id = result.get_value(0, 1), result.get_value(0, 2)
    return (int(result.get_value(0, 0)), None if key_id is None else int(key_id),
            None if feed_id is None else int(feed_id))


def _message(result, what: str) -> str:
    text = (result.error_message or b"").decode("utf-8", "replace").strip()
    return f"{what}: {text or result.status.name}"
