"""No traceback ever reaches a page or an API answer: 500 with an incident id, 404, JSON under /admin/api/."""
from __future__ import annotations

import logging
import re

import pytest
from pyramid.security import NO_PERMISSION_REQUIRED
from sqlalchemy import func, select, text

from eportal_core.models import AuditEvent, User
from eportal_core.plugins import hookimpl
from eportal_core.testing import login

SECRET = "s3cret-internal-detail"
INCIDENT_RE = re.compile(r"incident ([0-9a-f]{8})")


class Explosives:
    """A plugin whose views fail in the ways a real view can."""

    @hookimpl
    def eportal_includeme(self, config):
        def boom(request):
            # a change that must not survive the failure
            request.dbsession.add(AuditEvent(actor="boom", action="boom.partial"))
            request.dbsession.flush()
            raise RuntimeError(SECRET)

        def bad_sql(request):
            request.dbsession.execute(text("SELECT no_such_column FROM no_such_table"))
            return {}

        def bad_commit(request):
            # a duplicate user name: only the commit, after the view returned, finds out
            request.dbsession.add(User(username=request.matchdict["username"], password_hash=SECRET))
            return {"ok": True}

        def api_thing(request):
            return {"thing": 1}

        public = NO_PERMISSION_REQUIRED
        for name, path, view, permission in [
            ("boom", "/admin/boom", boom, public),
            ("boom_logged_in", "/admin/boom-logged-in", boom, "view"),
            ("api_boom", "/admin/api/boom", boom, public),
            ("bad_sql", "/admin/bad-sql", bad_sql, public),
            ("api_bad_sql", "/admin/api/bad-sql", bad_sql, public),
            ("bad_commit", "/admin/bad-commit/{username}", bad_commit, public),
            ("api_thing", "/admin/api/thing", api_thing, "view"),
        ]:
            config.add_route(name, path)
            methods = ("GET", "POST") if name == "api_thing" else "GET"
            config.add_view(view, route_name=name, permission=permission, request_method=methods, renderer="json")


@pytest.fixture
def client(make_testapp):
    return make_testapp(extra_plugins={"explosives": Explosives()})


def audit_count(dbsession, action) -> int:
    dbsession.expire_all()
    return dbsession.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


def assert_error_page(res, status):
    assert res.status_int == status
    assert res.content_type == "text/html"
    assert "Traceback" not in res.text
    assert SECRET not in res.text
    assert "RuntimeError" not in res.text and "ProgrammingError" not in res.text and "OperationalError" not in res.text
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in res.headers["Content-Security-Policy"]


def test_unexpected_error_page_has_an_incident_id(client, dbsession, caplog):
    with caplog.at_level(logging.ERROR):
        res = client.get("/admin/boom", status=500)
    assert_error_page(res, 500)
    assert "Something went wrong" in res.text
    [incident] = INCIDENT_RE.findall(res.text)
    # the operator finds the same id, with the traceback, in the log
    logged = [r for r in caplog.records if incident in r.getMessage()]
    assert logged and logged[0].exc_info is not None and SECRET in str(logged[0].exc_info[1])
    # "Nothing was changed": the partial write was rolled back
    assert audit_count(dbsession, "boom.partial") == 0
    # each failure gets its own id
    again = INCIDENT_RE.findall(client.get("/admin/boom", status=500).text)
    assert again and again != [incident]


def test_unexpected_error_for_a_logged_in_user_keeps_the_console(client, make_user):
    make_user("alice", "Alice-Secret-1")
    login(client, "alice", "Alice-Secret-1")
    res = client.get("/admin/boom-logged-in", status=500)
    assert_error_page(res, 500)
    assert INCIDENT_RE.search(res.text)
    assert "alice" in res.text  # the layout still shows who is logged in
    assert client.get("/admin/", status=200)  # and the session survived the failure


def test_api_errors_are_json(client, dbsession):
    res = client.get("/admin/api/boom", status=500)
    assert res.content_type == "application/json"
    body = res.json
    assert body["error"] == "internal-error"
    assert re.fullmatch(r"[0-9a-f]{8}", body["incident"])
    assert SECRET not in res.text and "Traceback" not in res.text
    assert audit_count(dbsession, "boom.partial") == 0


def test_database_error_in_a_view(client, make_user):
    # with a session cookie, and logged in: the error page must not need the failed transaction
    assert_error_page(client.get("/admin/bad-sql", status=500), 500)
    client.get("/admin/login")
    assert_error_page(client.get("/admin/bad-sql", status=500), 500)
    make_user("alice", "Alice-Secret-1")
    login(client, "alice", "Alice-Secret-1")
    res = client.get("/admin/bad-sql", status=500)
    assert_error_page(res, 500)
    assert INCIDENT_RE.search(res.text)
    res = client.get("/admin/api/bad-sql", status=500)
    assert res.json["error"] == "internal-error"
    assert client.get("/admin/", status=200)


def test_failure_at_commit_is_an_error_page_too(client, make_user, dbsession):
    make_user("alice", "Alice-Secret-1")
    res = client.get("/admin/bad-commit/alice", status=500)
    assert_error_page(res, 500)
    assert INCIDENT_RE.search(res.text)
    assert dbsession.scalar(select(func.count()).select_from(User).where(User.username == "alice")) == 1


def test_not_found_page(testapp):
    res = testapp.get("/admin/no/such/page", status=404)
    assert res.content_type == "text/html"
    assert "Page not found" in res.text
    assert "Traceback" not in res.text
    res = testapp.get("/elsewhere", status=404)
    assert "Page not found" in res.text


def test_not_found_page_when_logged_in(testapp, as_admin):
    res = testapp.get("/admin/no/such/page", status=404)
    assert "Page not found" in res.text
    assert "alice" in res.text


def test_api_not_found_is_json(testapp):
    res = testapp.get("/admin/api/no/such/thing", status=404)
    assert res.content_type == "application/json"
    assert res.json == {"error": "not-found"}


def test_api_without_credentials_is_json_401(client, make_user):
    res = client.get("/admin/api/thing", status=401)
    assert res.json == {"error": "unauthorized"}
    assert res.headers["WWW-Authenticate"].startswith("Basic")
    make_user("alice", "Alice-Secret-1")
    client.authorization = ("Basic", ("alice", "wrong-password"))
    assert client.get("/admin/api/thing", status=401).json == {"error": "unauthorized"}
    client.authorization = ("Basic", ("alice", "Alice-Secret-1"))
    assert client.get("/admin/api/thing", status=200).json == {"thing": 1}


def test_bad_csrf_on_the_api_is_json(client, make_user):
    # a console session (cookie) posting to the API without a token
    make_user("alice", "Alice-Secret-1")
    login(client, "alice", "Alice-Secret-1")
    res = client.post("/admin/api/thing", status=400)
    assert res.json == {"error": "csrf-check-failed"}
    res = client.post("/admin/api/thing", {"csrf_token": "forged"}, status=400)
    assert res.json == {"error": "csrf-check-failed"}


def test_basic_auth_failures_on_the_api_are_throttled(client, make_user, dbsession):
    """A refused Basic login ends in a 401 raised as HTTPForbidden; its failure row must survive that."""
    from eportal_core.models import LoginFailure
    make_user("alice", "Alice-Secret-1")
    client.authorization = ("Basic", ("alice", "wrong-password"))
    for _ in range(5):
        client.get("/admin/api/thing", status=401)
    dbsession.expire_all()
    assert dbsession.scalar(select(func.count()).select_from(LoginFailure).where(LoginFailure.username == "alice")) == 5
    assert audit_count(dbsession, "login.failed") == 5
    # the sixth try is refused although the password is right: per user, as on the login page
    client.authorization = ("Basic", ("alice", "Alice-Secret-1"))
    assert client.get("/admin/api/thing", status=401).json == {"error": "unauthorized"}
