"""The hot-path lookup through per-thread DB-API connections, on both databases, committed data."""
import threading

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from eportal_core.agent.directory import AgentDirectory
from eportal_core.db import make_engine
from eportal_core.models import Server
from eportal_core.services import agents, keys


def test_lookup_sees_committed_servers_from_every_thread(committed_db):
    url = committed_db.url
    with committed_db.session() as db:
        key = keys.create_key(db, "dirkey")
        server = agents.register(db, "dirkey", hostname="h1").server
        expected = (server.id, key.id, key.feed_id)
        sid = server.server_id
    directory = AgentDirectory(make_engine(url))
    assert tuple(directory.lookup(sid)) == expected
    assert directory.lookup("Zzzzzzzzzzzzzzzz") is None
    results = []
    threads = [threading.Thread(target=lambda: results.append(tuple(directory.lookup(sid)))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4
    # a later registration is visible at once (autocommit: no stale snapshot held by the thread)
    with committed_db.session() as db:
        later = agents.register(db, "dirkey", hostname="h2").server.server_id
    assert directory.lookup(later) is not None
    directory.engine.dispose()


def test_a_server_without_a_key_and_a_lost_connection(committed_db, backend):
    """A server whose key is gone reads back with no key and no feed (PostgreSQL: libpq text values
    to ints and NULLs); a connection the database dropped is replaced and the lookup retried."""
    url, engine = committed_db.url, committed_db.engine
    with committed_db.session() as db:
        keys.create_key(db, "k-nullkey")
        orphan = agents.register(db, "k-nullkey", hostname="o1").server
        orphan_pk, orphan_sid = orphan.id, orphan.server_id
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE servers SET key_id = NULL WHERE id = {orphan_pk}")
    directory = AgentDirectory(make_engine(url))
    assert tuple(directory.lookup(orphan_sid)) == (orphan_pk, None, None)
    first = directory._local.conn
    if backend == "postgresql":
        pid = first.dbapi_connection.info.backend_pid
        with engine.connect() as conn:
            assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid}, 5000)").scalar() is True
    else:
        first.dbapi_connection.close()
    assert tuple(directory.lookup(orphan_sid)) == (orphan_pk, None, None)
    assert directory._local.conn is not first
    assert directory.lookup("Zzzzzzzzzzzzzzzz") is None
    directory.engine.dispose()


def test_concurrent_lookups_each_get_their_own_row(committed_db):
    """32 threads at once, half of them asking for unknown ids (some odd enough to need quoting):
    each gets its own answer through its own connection."""
    url = committed_db.url
    with committed_db.session() as db:
        key = keys.create_key(db, "k-many")
        found = {agents.register(db, "k-many", hostname=f"m{n}").server.server_id: None for n in range(16)}
        for sid in found:
            found[sid] = (db.scalar(select(Server.id).where(Server.server_id == sid)), key.id, key.feed_id)
    unknown = [f"Unknown{n:09d}" for n in range(12)] + ['a"b', "a,b", "x\\", "{}"]
    directory = AgentDirectory(make_engine(url))
    results, barrier = {}, threading.Barrier(32)

    def ask(sid):
        barrier.wait()
        row = directory.lookup(sid)
        results[sid] = None if row is None else tuple(row)

    threads = [threading.Thread(target=ask, args=(sid,)) for sid in [*found, *unknown]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == {**found, **dict.fromkeys(unknown)}
    directory.engine.dispose()


def test_a_connection_another_thread_used_is_taken_over(committed_db):
    """A worker thread's connection goes back to the pool when the thread ends; the next thread that
    gets it finds the lookup prepared there already (PostgreSQL: 42P05) and uses it."""
    url = committed_db.url
    with committed_db.session() as db:
        keys.create_key(db, "k-reuse")
        sid = agents.register(db, "k-reuse", hostname="r1").server.server_id
    directory = AgentDirectory(make_engine(url, pool_size=1, max_overflow=0))
    seen = []

    def ask():
        seen.append((directory.lookup(sid) is not None, id(directory._local.conn.dbapi_connection)))

    for _ in range(2):
        thread = threading.Thread(target=ask)
        thread.start()
        thread.join(timeout=30)
    assert [found for found, _ in seen] == [True, True]
    assert seen[0][1] == seen[1][1]  # the same DB-API connection, taken over from the pool
    directory.engine.dispose()


def test_reading_through_the_threads_connection(committed_db, backend):
    """AgentDirectory.reading (registry["db_read"] on PostgreSQL): one kept connection per thread,
    in autocommit (later commits are seen, it never sits in a transaction), the lookup's own; a
    connection the database dropped fails that read only, the next one opens a new connection."""
    from sqlalchemy import func, text

    from eportal_core.models import Key

    with committed_db.session() as db:
        keys.create_key(db, "k-read")
        sid = agents.register(db, "k-read", hostname="r1").server.server_id
    directory = AgentDirectory(make_engine(committed_db.url))
    directory.lookup(sid)
    with directory.reading() as conn:
        assert conn.scalar(select(func.count()).select_from(Key)) == 1
        first = conn
    with committed_db.session() as db:
        keys.create_key(db, "k-read-2")
    with directory.reading() as conn:
        assert conn.scalar(select(func.count()).select_from(Key)) == 2
        assert (conn is first) == (backend == "postgresql")   # SQLite: a pooled connection each time
    if backend == "postgresql":
        assert directory._local.conn is first.connection   # the lookup's connection
        pid = first.connection.dbapi_connection.info.backend_pid
        with committed_db.engine.connect() as admin:
            state = admin.execute(text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).scalar()
            assert state == "idle"   # not "idle in transaction"
            assert admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar() is True
        with pytest.raises(DBAPIError):
            with directory.reading() as conn:
                conn.scalar(select(func.count()).select_from(Key))
        with directory.reading() as conn:
            assert conn is not first and conn.scalar(select(func.count()).select_from(Key)) == 2
        assert directory.lookup(sid) is not None
    directory.engine.dispose()
