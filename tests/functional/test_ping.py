"""GET /admin/ping: a public text/plain "ok" that touches neither the database nor a session."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event


@contextmanager
def statements(engine):
    """Collect the SQL statements run on ``engine`` (and its connections) meanwhile."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_ping_is_public_plain_ok_without_database_or_session(testapp):
    engine = testapp.app.registry["dbengine"]
    with statements(engine) as seen:
        res = testapp.get("/admin/ping", status=200)
    assert res.body == b"ok"
    assert res.content_type == "text/plain"
    assert "no-store" in res.headers["Cache-Control"]
    assert "Set-Cookie" not in res.headers
    assert seen == []


def test_ping_answers_head(testapp):
    assert testapp.head("/admin/ping", status=200).body == b""


def test_ping_refuses_post(testapp):
    testapp.post("/admin/ping", status=404)
