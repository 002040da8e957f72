"""The hot-path lookup through per-thread DB-API connections, on both databases, committed data."""
import threading

import transaction

from eportal_core.agent_directory import AgentDirectory
from eportal_core.db import get_session_factory, get_tm_session, make_engine
from eportal_core.migrate import upgrade
from eportal_core.services import agents, keys
from eportal_core.testing import new_database_url


def test_lookup_sees_committed_servers_from_every_thread(request, backend, tmp_path_factory):
    url = new_database_url(request, backend, tmp_path_factory)
    engine = make_engine(url)
    upgrade(engine)
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        db = get_tm_session(get_session_factory(engine), tm)
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
    with tm:
        db = get_tm_session(get_session_factory(engine), tm)
        later = agents.register(db, "dirkey", hostname="h2").server.server_id
    assert directory.lookup(later) is not None
    directory.engine.dispose()
    engine.dispose()
