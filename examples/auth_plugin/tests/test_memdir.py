"""The example auth plugin through the real app: local users first, directory users provisioned by
the core, roles kept in line, wrong passwords refused, the ini setting validated."""
from __future__ import annotations

import hashlib

import eportal_memdir
import pytest
from sqlalchemy import select

from eportal_core.api import AuditEvent, SettingsError, User
from eportal_core.testing import login


def entry(name: str, role: str, password: str) -> str:
    return f"{name}:{role}:{hashlib.sha256(password.encode()).hexdigest()}"


@pytest.fixture
def directory_app(make_app_client):
    def build(*entries: str):
        return make_app_client(extra_plugins={"memdir": eportal_memdir}, load_entrypoints=False,
                               **{"memdir.users": "\n".join(entries)})
    return build


def test_a_directory_user_logs_in_and_is_provisioned_once(directory_app, dbsession):
    app = directory_app(entry("carol", "readonly", "Carol-Dir-Pass"))
    page = login(app, "carol", "Carol-Dir-Pass").follow()
    assert page.html.select_one(".who .username").get_text(strip=True) == "carol"
    user = dbsession.scalar(select(User).where(User.username == "carol"))
    assert (user.source, user.role, user.password_hash) == ("memdir", "readonly", None)
    events = dbsession.scalars(select(AuditEvent).where(AuditEvent.target == "carol", AuditEvent.action == "user.add"))
    assert [(e.actor, e.detail) for e in events] == [("memdir", "readonly, from memdir")]
    app.reset()
    login(app, "carol", "Carol-Dir-Pass")  # the second login finds the row: no second one, no new event
    assert len(dbsession.scalars(select(User).where(User.username == "carol")).all()) == 1


def test_the_directory_decides_the_role_at_each_login(directory_app, dbsession):
    login(directory_app(entry("carol", "readonly", "Carol-Dir-Pass")), "carol", "Carol-Dir-Pass")
    login(directory_app(entry("carol", "admin", "Carol-Dir-Pass")), "carol", "Carol-Dir-Pass")
    user = dbsession.scalar(select(User).where(User.username == "carol"))
    assert user.role == "admin"
    role_events = dbsession.scalars(select(AuditEvent.detail).where(AuditEvent.action == "user.role")).all()
    assert role_events == ["admin, from memdir"]


def test_a_wrong_password_and_an_unknown_name_are_refused(directory_app):
    app = directory_app(entry("carol", "admin", "Carol-Dir-Pass"))
    assert "Wrong user name or password." in login(app, "carol", "not-her-password", status=401).text
    assert "Wrong user name or password." in login(app, "nobody", "Carol-Dir-Pass", status=401).text


def test_local_users_come_first(directory_app, make_user, dbsession):
    """A directory entry with the name of a local user neither shadows nor takes over the account:
    local_auth (tryfirst) answers for 'alice', the directory (trylast) is never asked."""
    make_user("alice", "Alice-Local-1")
    app = directory_app(entry("alice", "admin", "Alice-Dir-Pass"))
    login(app, "alice", "Alice-Local-1")
    app.reset()
    login(app, "alice", "Alice-Dir-Pass", status=401)
    assert dbsession.scalar(select(User).where(User.username == "alice")).source == "local"


def test_its_health_check(directory_app):
    body = directory_app(entry("carol", "admin", "x")).get("/admin/health").json
    assert {"name": "memdir", "ok": True, "detail": "1 directory user(s)"} in body["checks"]


@pytest.mark.parametrize("bad", ["carol", "carol:root:" + "0" * 64, "carol:admin:short"])
def test_a_bad_directory_line_stops_start_up(make_app_client, bad):
    with pytest.raises(SettingsError, match="setting memdir.users = \\(hidden\\) is not valid: expected one 'name:"):
        make_app_client(extra_plugins={"memdir": eportal_memdir}, load_entrypoints=False, **{"memdir.users": bad})
