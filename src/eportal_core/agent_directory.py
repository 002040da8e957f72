"""The agent hot path's one lookup: server_id -> (server pk, key id, feed id).

Each worker thread keeps its own DB-API connection (from a small engine of its own, autocommit)
and runs one indexed SELECT through it: no ORM, no pool checkout, no request transaction, so a
check-in costs little more than the bare route (see bench/fleet_bench.py).
"""
from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)

_SQL = ("SELECT s.id, s.key_id, k.feed_id FROM servers s LEFT OUTER JOIN keys k ON k.id = s.key_id "
        "WHERE s.server_id = {}")


class AgentDirectory:
    def __init__(self, engine):
        self.engine = engine
        self.sql = _SQL.format("?" if engine.dialect.paramstyle == "qmark" else "%s")
        self._local = threading.local()
        #: a SQLAlchemy Connection to read through instead (tests: the rolled-back one)
        self.connection = None

    def lookup(self, server_id: str) -> tuple | None:
        if self.connection is not None:
            return self.connection.exec_driver_sql(self.sql, (server_id,)).first()
        for attempt in (1, 2):
            conn = self._thread_connection()
            try:
                cur = conn.cursor()
                try:
                    cur.execute(self.sql, (server_id,))
                    return cur.fetchone()
                finally:
                    cur.close()
            except self.engine.dialect.loaded_dbapi.Error:
                # a broken connection (database restarted): drop it and try once on a new one
                self._local.conn = None
                try:
                    conn.invalidate()
                except Exception:
                    pass
                if attempt == 2:
                    raise
        return None

    def _thread_connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.engine.raw_connection()
            if self.engine.dialect.name != "sqlite":
                conn.dbapi_connection.autocommit = True  # each SELECT sees committed rows; no idle transaction
            self._local.conn = conn
        return conn
