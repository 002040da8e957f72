"""Console user management: add (with validation), delete, role toggle, set password."""
from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from eportal_core.models import AuditEvent, User, WebSession
from eportal_core.services import ServiceError
from eportal_core.services.passwords import verify_password
from eportal_core.services.users import delete_user
from eportal_core.testing import csrf_token, login


def fresh_user(dbsession, username) -> User | None:
    dbsession.expire_all()
    return dbsession.scalar(select(User).where(User.username == username))


def user_count(dbsession) -> int:
    return dbsession.scalar(select(func.count()).select_from(User))


def sessions_of(dbsession, user_id) -> int:
    return dbsession.scalar(select(func.count()).select_from(WebSession).where(WebSession.user_id == user_id))


def is_logged_in(client) -> bool:
    res = client.get("/admin/", status="*")
    assert res.status_int in (200, 302), res.status
    return res.status_int == 200


def post_action(client, username, action, **fields):
    """POST a row action (delete, role, password) like the list page's forms, and follow to the list."""
    res = client.post(f"/admin/users/{quote(username, safe='@')}/{action}", dict(fields, csrf_token=csrf_token(client)), status=303)
    assert res.headers["Location"] == "http://eportal.test/admin/users/"
    return res.follow()


# --- adding -----------------------------------------------------------------------------------

def add_form(client):
    form = client.get("/admin/users/add").forms
    [form] = [f for f in form.values() if f.action.endswith("/admin/users/add")]
    assert {"username", "password", "confirm", "role", "description", "csrf_token"} <= set(form.fields)
    return form


def test_admin_adds_a_user_through_the_form(testapp, as_admin, dbsession):
    form = add_form(testapp)
    form["username"] = "bob"
    form["description"] = "on call"
    form["role"] = "readonly"
    form["password"] = form["confirm"] = "Bob-Secret-123"
    res = form.submit(status=303)
    assert res.headers["Location"] == "http://eportal.test/admin/users/"
    page = res.follow()
    assert "User 'bob' added." in page.text
    assert "on call" in page.text
    # the flash shows once
    assert "User 'bob' added." not in testapp.get("/admin/users/").text
    bob = fresh_user(dbsession, "bob")
    assert bob.readonly and bob.role == "readonly" and bob.source == "local" and bob.description == "on call"
    assert verify_password(bob.password_hash, "Bob-Secret-123")
    assert dbsession.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "user.add", AuditEvent.target == "bob", AuditEvent.actor == "alice")) == 1
    # and bob can log in with it, as readonly
    testapp.reset()
    page = login(testapp, "bob", "Bob-Secret-123").follow()
    assert "bob" in page.text and "readonly" in page.text


def test_added_admin_is_an_admin(testapp, as_admin, dbsession):
    form = add_form(testapp)
    form["username"] = "carol@example.org"
    form["role"] = "admin"
    form["password"] = form["confirm"] = "Carol-Secret-123"
    form.submit(status=303)
    assert fresh_user(dbsession, "carol@example.org").readonly is False


ADD_USER_CASES = [
    ("alice", "Other-Secret-123", "Other-Secret-123", "admin", "user 'alice' already exists"),
    ("bob", "short1A", "short1A", "admin", "password is too short: use at least 10 characters"),
    ("bob", "aaaaaaaaaaaa", "aaaaaaaaaaaa", "admin", "password is too simple"),
    ("bob", "Bob-Secret-123", "Bob-Secret-124", "admin", "the two passwords differ"),
    ("bad name!", "Bob-Secret-123", "Bob-Secret-123", "admin", "invalid user name"),
    ("", "Bob-Secret-123", "Bob-Secret-123", "admin", "invalid user name"),
    ("-dash", "Bob-Secret-123", "Bob-Secret-123", "admin", "invalid user name"),
    ("x" * 129, "Bob-Secret-123", "Bob-Secret-123", "admin", "invalid user name"),
    ("bob", "Bob-Secret-123", "Bob-Secret-123", "superuser", "choose a role: admin or readonly"),
    ("Bob-Secret-123", "Bob-Secret-123", "Bob-Secret-123", "admin", "password must not be the user name"),
]


def test_add_user_validation_errors_are_400_with_the_message(testapp, as_admin, dbsession):
    count = user_count(dbsession)
    token = csrf_token(testapp)
    for username, password, confirm, role, message in ADD_USER_CASES:
        params = {"csrf_token": token, "username": username, "description": "", "role": role,
                  "password": password, "confirm": confirm}
        res = testapp.post("/admin/users/add", params, status="*")
        assert res.status_int == 400, (username, message, res.status)
        assert message in res.text, (username, message)
        # the form comes back filled in (but never with the passwords)
        form = [f for f in res.forms.values() if f.action.endswith("/admin/users/add")][0]
        assert form["username"].value == username
        if role in ("admin", "readonly"):
            assert form["role"].value == role
        assert form["password"].value == "" and form["confirm"].value == ""
        if password != username:
            assert password not in res.text
    assert user_count(dbsession) == count
    # control: the same form with good values is accepted
    testapp.post("/admin/users/add", {"csrf_token": token, "username": "bob", "role": "admin",
                                      "password": "BobbyTables", "confirm": "BobbyTables"}, status=303)
    assert user_count(dbsession) == count + 1


def test_add_user_requires_csrf(testapp, as_admin, dbsession):
    count = user_count(dbsession)
    params = {"username": "bob", "role": "admin", "password": "Bob-Secret-123", "confirm": "Bob-Secret-123"}
    assert "Form expired" in testapp.post("/admin/users/add", params, status=400).text
    testapp.post("/admin/users/add", dict(params, csrf_token="forged"), status=400)
    assert user_count(dbsession) == count


def test_list_shows_users_and_sorts(testapp, as_admin, make_user):
    make_user("zed", "Zed-Secret-123", readonly=True)
    make_user("bob", "Bob-Secret-123")
    def order(**params):
        table = testapp.get("/admin/users/", params).html.find("table").get_text()
        return sorted(["alice", "bob", "zed"], key=table.index)
    assert order() == ["alice", "zed", "bob"]
    assert order(sort="username") == ["alice", "bob", "zed"]
    assert order(sort="username", dir="desc") == ["zed", "bob", "alice"]
    assert order(sort="role") == ["alice", "bob", "zed"]  # admin before readonly, then by number
    assert order(sort="last_login") == ["alice", "zed", "bob"]  # alice logged in; never-logged-in users last
    assert order(sort="last_login", dir="desc")[0] in ("zed", "bob")
    assert testapp.get("/admin/users/", {"sort": "nonsense"}).status_int == 200


# --- deleting ---------------------------------------------------------------------------------

def test_delete_user_with_flash(testapp, as_admin, make_user, dbsession):
    make_user("bob", "Bob-Secret-123")
    page = post_action(testapp, "bob", "delete")
    assert "User 'bob' deleted." in page.text
    assert fresh_user(dbsession, "bob") is None
    assert dbsession.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "user.delete", AuditEvent.target == "bob")) == 1


def test_deleting_a_logged_in_user_ends_their_sessions(testapp, as_admin, make_user, other_client, dbsession):
    bob, _ = make_user("bob", "Bob-Secret-123")
    bob_id = bob.id
    elsewhere = other_client(remote_addr="198.51.100.7")
    login(elsewhere, "bob", "Bob-Secret-123")
    assert sessions_of(dbsession, bob_id) == 1
    page = post_action(testapp, "bob", "delete")
    assert "User 'bob' deleted." in page.text
    assert sessions_of(dbsession, bob_id) == 0
    assert not is_logged_in(elsewhere)


def test_delete_unknown_user_flashes_an_error(testapp, as_admin, dbsession):
    count = user_count(dbsession)
    page = post_action(testapp, "ghost", "delete")
    assert "User 'ghost' does not exist." in page.text
    assert user_count(dbsession) == count


def test_cannot_delete_yourself(testapp, as_admin, make_user, dbsession):
    make_user("bob", "Bob-Secret-123")  # another admin exists: it is the self-check that refuses
    page = post_action(testapp, "alice", "delete")
    assert "You cannot delete the account you are logged in with." in page.text
    assert fresh_user(dbsession, "alice") is not None
    assert is_logged_in(testapp)


def test_cannot_make_the_last_admin_readonly(testapp, as_admin, make_user, dbsession):
    make_user("rita", "Rita-Secret-1", readonly=True)
    page = post_action(testapp, "alice", "role", role="readonly")
    assert "it is the last admin user" in page.text
    assert fresh_user(dbsession, "alice").readonly is False


def test_admin_may_step_down_when_another_admin_exists(testapp, as_admin, make_user, dbsession):
    make_user("bob", "Bob-Secret-123")
    page = post_action(testapp, "alice", "role", role="readonly")
    assert "User 'alice' is now readonly." in page.text
    assert fresh_user(dbsession, "alice").readonly is True
    # the change applies at once: her next change is refused
    res = testapp.post("/admin/users/bob/delete", {"csrf_token": csrf_token(testapp)}, status=403)
    assert "read-only" in res.text
    assert fresh_user(dbsession, "bob") is not None


def test_last_admin_cannot_be_deleted(testapp, as_admin, make_user, dbsession):
    """The console can only reach this rule through the self-check above; the rule itself lives in
    the service the console calls, so check it there, against the same database."""
    make_user("bob", "Bob-Secret-123")
    assert "User 'bob' is now readonly." in post_action(testapp, "bob", "role", role="readonly").text
    dbsession.expire_all()
    with pytest.raises(ServiceError, match="it is the last admin user"):
        delete_user(dbsession, "alice", actor="test")
    assert fresh_user(dbsession, "alice") is not None


def test_deleting_a_readonly_user_is_fine_with_one_admin(testapp, as_admin, make_user, dbsession):
    make_user("rita", "Rita-Secret-1", readonly=True)
    assert "User 'rita' deleted." in post_action(testapp, "rita", "delete").text
    assert fresh_user(dbsession, "rita") is None


# --- role toggle ------------------------------------------------------------------------------

def test_role_toggle(testapp, as_admin, make_user, dbsession):
    make_user("bob", "Bob-Secret-123")
    assert "User 'bob' is now readonly." in post_action(testapp, "bob", "role", role="readonly").text
    assert fresh_user(dbsession, "bob").readonly is True
    assert "User 'bob' is now admin." in post_action(testapp, "bob", "role", role="admin").text
    assert fresh_user(dbsession, "bob").readonly is False
    assert dbsession.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "user.role", AuditEvent.target == "bob")) == 2


def test_role_toggle_refuses_an_unknown_role(testapp, as_admin, make_user, dbsession):
    make_user("bob", "Bob-Secret-123")
    page = post_action(testapp, "bob", "role", role="root")
    assert "Choose a role: admin or readonly." in page.text
    page = post_action(testapp, "bob", "role")
    assert "Choose a role: admin or readonly." in page.text
    assert fresh_user(dbsession, "bob").readonly is False


def test_role_change_applies_to_open_sessions(testapp, as_admin, make_user, other_client, dbsession):
    make_user("bob", "Bob-Secret-123")
    elsewhere = other_client(remote_addr="198.51.100.7")
    login(elsewhere, "bob", "Bob-Secret-123")
    assert elsewhere.get("/admin/users/add").status_int == 200
    post_action(testapp, "bob", "role", role="readonly")
    assert elsewhere.get("/admin/users/add", status=403)
    assert "readonly" in elsewhere.get("/admin/").text


# --- set password -----------------------------------------------------------------------------

def test_set_password_ends_that_users_sessions(testapp, as_admin, make_user, other_client, dbsession):
    bob, _ = make_user("bob", "Bob-Secret-123")
    bob_id = bob.id
    elsewhere = other_client(remote_addr="198.51.100.7")
    login(elsewhere, "bob", "Bob-Secret-123")
    assert is_logged_in(elsewhere)
    page = post_action(testapp, "bob", "password", password="Bob-New-Secret-9", confirm="Bob-New-Secret-9")
    assert "Password of 'bob' changed; their open sessions were ended." in page.text
    assert sessions_of(dbsession, bob_id) == 0
    assert not is_logged_in(elsewhere)
    assert is_logged_in(testapp)  # the admin making the change stays logged in
    login(elsewhere, "bob", "Bob-Secret-123", status=401)
    login(elsewhere, "bob", "Bob-New-Secret-9")
    assert is_logged_in(elsewhere)


def test_changing_your_own_password_keeps_this_session_only(testapp, as_admin, other_client, dbsession):
    alice, _ = as_admin
    elsewhere = other_client(remote_addr="198.51.100.7")
    login(elsewhere, "alice", "Alice-Secret-1")
    assert sessions_of(dbsession, alice.id) == 2
    page = post_action(testapp, "alice", "password", password="Alice-New-Secret-2", confirm="Alice-New-Secret-2")
    assert "Password of 'alice' changed" in page.text
    assert is_logged_in(testapp)
    assert not is_logged_in(elsewhere)
    assert sessions_of(dbsession, alice.id) == 1
    assert verify_password(fresh_user(dbsession, "alice").password_hash, "Alice-New-Secret-2")


def test_set_password_validation(testapp, as_admin, make_user, other_client, dbsession):
    make_user("bob", "Bob-Secret-123")
    elsewhere = other_client(remote_addr="198.51.100.7")
    login(elsewhere, "bob", "Bob-Secret-123")
    for password, confirm, message in [
        ("Bob-New-Secret-9", "Bob-New-Secret-8", "The two passwords differ."),
        ("short-1", "short-1", "Password is too short: use at least 10 characters."),
        ("", "", "Password is too short"),
        ("bob", "bob", "Password is too short"),
        ("zzzzzzzzzzzz", "zzzzzzzzzzzz", "Password is too simple"),
    ]:
        page = post_action(testapp, "bob", "password", password=password, confirm=confirm)
        assert message in page.text, message
    assert verify_password(fresh_user(dbsession, "bob").password_hash, "Bob-Secret-123")
    assert is_logged_in(elsewhere)  # a refused change ends nothing


def test_set_password_of_unknown_user(testapp, as_admin):
    page = post_action(testapp, "ghost", "password", password="Ghost-Secret-1", confirm="Ghost-Secret-1")
    assert "User 'ghost' does not exist." in page.text


def test_names_from_the_address_are_escaped_in_messages(testapp, as_admin):
    payload = "<img src=x onerror=alert(1)>"
    page = post_action(testapp, payload, "delete")
    assert "User '&lt;img src=x onerror=alert(1)&gt;' does not exist." in page.text
    assert payload not in page.text
