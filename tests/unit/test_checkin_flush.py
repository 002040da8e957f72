"""The coalesced check-in writer with a batch like a real fleet's: several servers in one
executemany, the first of them without a patch level (PostgreSQL once refused the whole batch:
"could not determine data type of parameter", and no check-in was ever written)."""
from eportal_core.agent.checkins import CheckinBuffer
from eportal_core.models import Server, utcnow


def test_a_mixed_batch_is_written_on_both_databases(dbsession, dbconnection, engine, make_server):
    servers = [make_server("kf", hostname=f"h{n}") for n in range(4)]
    buf = CheckinBuffer(engine)
    buf.bind, buf.autostart = dbconnection, False
    now = utcnow()
    for n, s in enumerate(servers):
        level = None if n % 2 == 0 else n   # the agent's -1 ("no patches") is stored as None
        buf.record(s.id, s.server_id, {"checkin": now, "ip": f"10.0.0.{n}", "patch_level": level, "uptime": 100 + n})
    assert buf.flush() == 4
    assert buf.errors == 0
    dbsession.expire_all()
    rows = {s.id: dbsession.get(Server, s.id) for s in servers}
    assert [rows[s.id].ip for s in servers] == ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert [rows[s.id].patch_level for s in servers] == [None, 1, None, 3]
    # the level changed from none to 1 and 3: "updated" is the check-in time; unchanged levels keep it empty
    assert [rows[s.id].updated is not None for s in servers] == [False, True, False, True]


def test_checkin_times_written_by_driver_sql_compare_like_orm_ones(dbsession, dbconnection, engine, make_server):
    """The flush writes through driver SQL with the column types' own bind processors: a time with
    no microseconds must read back equal and compare right against ORM-written times (SQLite keeps
    datetimes as text, so a different format would sort wrong)."""
    from datetime import timedelta

    from sqlalchemy import func, select

    server = make_server("kt", hostname="t1")
    buf = CheckinBuffer(engine)
    buf.bind, buf.autostart = dbconnection, False
    whole = utcnow().replace(microsecond=0)
    buf.record(server.id, server.server_id, {"checkin": whole, "ip": "10.0.0.9"})
    buf.flush()
    dbsession.expire_all()
    assert dbsession.get(Server, server.id).checkin == whole
    just_after = whole + timedelta(microseconds=1)
    assert dbsession.scalar(select(func.count()).select_from(Server).where(
        Server.id == server.id, Server.checkin < just_after, Server.checkin >= whole)) == 1


def test_a_flush_larger_than_one_statement_writes_every_server(dbsession, dbconnection, engine, make_server, monkeypatch):
    """PostgreSQL writes a flush as UPDATE ... FROM unnest(arrays), UNNEST_CHUNK servers per
    statement: a flush of several chunks, with two column sets (one check-in without the agent's
    info), writes each server's own values, the `updated` rule included."""
    from eportal_core.agent import checkins

    monkeypatch.setattr(checkins, "UNNEST_CHUNK", 2)
    servers = [make_server("kc", hostname=f"c{n}") for n in range(5)]
    buf = CheckinBuffer(engine)
    buf.bind, buf.autostart = dbconnection, False
    now = utcnow()
    for n, s in enumerate(servers):
        info = {"checkin": now, "ip": f"10.1.0.{n}"}
        if n != 2:
            info.update(patch_level=n + 1, uptime=1000 * n, hostname=f"renamed-{n}", release=f"r{n}")
        buf.record(s.id, s.server_id, info)
    assert buf.flush() == 5 and buf.errors == 0
    dbsession.expire_all()
    rows = [dbsession.get(Server, s.id) for s in servers]
    assert [(r.ip, r.hostname, r.release, r.patch_level, r.uptime) for r in rows] == [
        ("10.1.0.0", "renamed-0", "r0", 1, 0), ("10.1.0.1", "renamed-1", "r1", 2, 1000),
        ("10.1.0.2", "c2", "", None, None), ("10.1.0.3", "renamed-3", "r3", 4, 3000),
        ("10.1.0.4", "renamed-4", "r4", 5, 4000)]
    assert [r.checkin == now for r in rows] == [True] * 5
    assert [r.updated == now for r in rows] == [True, True, False, True, True]


def test_a_server_removed_meanwhile_is_reported_by_the_flush(dbsession, dbconnection, engine, make_server):
    """A check-in for a server whose row is gone (removed on another node) writes nothing and names
    the server to on_missing (the in-memory directory forgets it); the others are written."""
    from sqlalchemy import text

    servers = [make_server("km", hostname=f"g{n}") for n in range(3)]
    buf = CheckinBuffer(engine)
    buf.bind, buf.autostart = dbconnection, False
    reported = []
    buf.on_missing = reported.extend
    now = utcnow()
    for s in servers:
        buf.record(s.id, s.server_id, {"checkin": now, "ip": "10.2.0.1"})
    dbconnection.execute(text("DELETE FROM servers WHERE id = :pk"), {"pk": servers[1].id})
    assert buf.flush() == 3 and buf.errors == 0
    assert reported == [servers[1].server_id]
    dbsession.expire_all()
    assert [dbsession.get(Server, s.id) is not None and dbsession.get(Server, s.id).ip for s in (servers[0], servers[2])] \
        == ["10.2.0.1", "10.2.0.1"]
