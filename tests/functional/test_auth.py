"""Console login, logout and sessions, through the real app (WebTest) on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from eportal_core.models import AuditEvent, LoginFailure, User, WebSession, utcnow
from eportal_core.testing import csrf_token, login

from .conftest import COOKIE

WRONG = "Wrong user name or password."
TOO_MANY = "Too many failed logins"
EXPIRED = "Your session expired"


def failures(dbsession, **where) -> int:
    query = select(func.count()).select_from(LoginFailure)
    for column, value in where.items():
        query = query.where(getattr(LoginFailure, column) == value)
    return dbsession.scalar(query)


def is_logged_in(client) -> bool:
    """True when the console start page opens; False when it sends the client to the login page."""
    res = client.get("/admin/", status="*")
    if res.status_int == 200:
        return True
    assert res.status_int in (302, 303), res.status
    assert "/admin/login" in res.headers["Location"]
    return False


def set_cookie_headers(res) -> list[str]:
    return [v for k, v in res.headerlist if k.lower() == "set-cookie" and v.startswith(COOKIE + "=")]


# --- logging in -------------------------------------------------------------------------------

def test_login_page_is_public_and_has_the_form(testapp):
    page = testapp.get("/admin/login")
    form = page.forms[0]
    assert {"login", "password", "csrf_token", "next"} <= set(form.fields)
    assert form["csrf_token"].value


def test_admin_root_sends_anonymous_users_to_the_login_page(testapp):
    res = testapp.get("/admin", status=302)
    assert res.headers["Location"] == "http://eportal.test/admin/login?next=%2Fadmin"
    assert "csrf_token" in res.follow().forms[0].fields
    res = testapp.get("/admin/", status=302)
    assert res.headers["Location"] == "http://eportal.test/admin/login?next=%2Fadmin%2F"


def test_login_ok_shows_the_console_with_name_and_role(testapp, make_user, dbsession):
    user, password = make_user("alice", "Alice-Secret-1")
    res = login(testapp, "alice", password)
    assert res.headers["Location"] == "http://eportal.test/admin/"
    page = res.follow()
    assert "Key Inventory" in page.text
    assert "alice" in page.text and "admin" in page.text
    # logout is a POST form carrying the CSRF token
    logout = [f for f in page.forms.values() if f.action.endswith("/admin/logout")]
    assert logout and logout[0].method.upper() == "POST" and logout[0]["csrf_token"].value
    # navigation from the core's plugin: links to the start page and the user list
    links = {a.get("href") for a in page.html.find_all("a")}
    assert {"http://eportal.test/admin/", "http://eportal.test/admin/users/"} <= links
    assert "Users" in page.text
    dbsession.expire_all()
    assert dbsession.get(User, user.id).last_login is not None
    assert dbsession.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "login", AuditEvent.actor == "alice")) == 1


def test_readonly_user_sees_its_role(testapp, make_user):
    make_user("rita", "Rita-Secret-1", readonly=True)
    page = login(testapp, "rita", "Rita-Secret-1").follow()
    assert "rita" in page.text and "readonly" in page.text


def test_wrong_password_is_401_with_a_message(testapp, make_user, dbsession):
    make_user("alice", "Alice-Secret-1")
    res = login(testapp, "alice", "not-the-password", status=401)
    assert WRONG in res.text
    assert res.forms[0]["login"].value == "alice"  # the user name is kept, the password is not
    assert res.forms[0]["password"].value == ""
    assert not is_logged_in(testapp)
    assert failures(dbsession, username="alice", ip="192.0.2.10") == 1


def test_unknown_user_gets_the_same_message(testapp, make_user, dbsession):
    make_user("alice", "Alice-Secret-1")
    known = login(testapp, "alice", "not-the-password", status=401)
    unknown = login(testapp, "nobody", "not-the-password", status=401)
    assert WRONG in unknown.text
    # nothing on the page tells an existing user from a missing one (but the echoed name)
    assert known.text.replace("alice", "X") == unknown.text.replace("nobody", "X")
    assert failures(dbsession, username="nobody") == 1


def test_empty_fields_are_refused_with_a_message(testapp, make_user, dbsession):
    make_user("alice", "Alice-Secret-1")
    for login_value, password in [("", "whatever-password"), ("alice", ""), ("", ""), ("   ", "x")]:
        res = login(testapp, login_value, password, status=401)
        assert "Enter your user name and password." in res.text, (login_value, password)
    assert failures(dbsession) == 0  # not a guess: nothing counts against the throttle
    assert not is_logged_in(testapp)


def test_login_requires_the_csrf_token(testapp, make_user, dbsession):
    make_user("alice", "Alice-Secret-1")
    testapp.get("/admin/login")  # a session exists, so only the token is missing
    res = testapp.post("/admin/login", {"login": "alice", "password": "Alice-Secret-1"}, status=400)
    assert "Form expired" in res.text
    res = testapp.post("/admin/login", {"login": "alice", "password": "Alice-Secret-1", "csrf_token": "forged"},
                       status=400)
    assert "Traceback" not in res.text
    assert not is_logged_in(testapp)
    assert failures(dbsession) == 0


def test_anonymous_page_request_comes_back_after_login(testapp, make_user):
    make_user("alice", "Alice-Secret-1")
    res = testapp.get("/admin/users/", status=302)
    assert res.headers["Location"] == "http://eportal.test/admin/login?next=%2Fadmin%2Fusers%2F"
    form = res.follow().forms[0]
    assert form["next"].value == "/admin/users/"
    form["login"], form["password"] = "alice", "Alice-Secret-1"
    res = form.submit(status=303)
    assert res.headers["Location"] == "http://eportal.test/admin/users/"
    assert "alice" in res.follow().text


OFFSITE_TARGETS = [
    "//evil.example",
    "//evil.example/admin",
    "https://evil.example",
    "https://evil.example/admin/",
    "http:/\\evil.example",
    "/\\evil.example",
    "/admin\\..\\\\evil.example",
    "javascript:alert(1)",
    "evil.example/admin",
    "/other/app",
    # control or non-ASCII characters: no header injection, and no 500 after the right password either
    "/admin/\r\nSet-Cookie: planted=1",
    "/admin/\nX-Evil: 1",
    "/admin/\x00",
    "/admin/\u00fc\u4e2d",
    "/admin/ spaced",
]


def test_next_never_leaves_the_console(testapp, make_user):
    make_user("alice", "Alice-Secret-1")
    for target in OFFSITE_TARGETS:
        testapp.reset()
        token = testapp.get("/admin/login").forms[0]["csrf_token"].value
        res = testapp.post("/admin/login", {"login": "alice", "password": "Alice-Secret-1", "csrf_token": token,
                                            "next": target}, status="*")
        assert (res.status_int, res.headers.get("Location")) == (303, "http://eportal.test/admin/"), repr(target)
        assert "planted" not in testapp.cookies
    # the login page of a logged-in user follows ``next`` by the same rule
    for target in OFFSITE_TARGETS:
        res = testapp.get("/admin/login", {"next": target}, status="*")
        assert (res.status_int, res.headers.get("Location")) == (303, "http://eportal.test/admin/"), repr(target)


def test_next_round_trips_through_the_login_form(testapp, make_user):
    make_user("alice", "Alice-Secret-1")
    form = testapp.get("/admin/login", {"next": "https://evil.example/"}).forms[0]
    form["login"], form["password"] = "alice", "Alice-Secret-1"
    assert form.submit(status=303).headers["Location"] == "http://eportal.test/admin/"


def test_next_with_a_console_path_is_followed(testapp, make_user):
    make_user("alice", "Alice-Secret-1")
    form = testapp.get("/admin/login", {"next": "/admin/users/?sort=role"}).forms[0]
    form["login"], form["password"] = "alice", "Alice-Secret-1"
    res = form.submit(status=303)
    assert res.headers["Location"] == "http://eportal.test/admin/users/?sort=role"


def test_logged_in_user_opening_the_login_page_goes_home_or_to_next(testapp, make_user):
    make_user("alice", "Alice-Secret-1")
    login(testapp, "alice", "Alice-Secret-1")
    assert testapp.get("/admin/login", status=303).headers["Location"] == "http://eportal.test/admin/"
    res = testapp.get("/admin/login", {"next": "//evil.example"}, status=303)
    assert res.headers["Location"] == "http://eportal.test/admin/"
    res = testapp.get("/admin/login", {"next": "/admin/users/"}, status=303)
    assert res.headers["Location"] == "http://eportal.test/admin/users/"


# --- logging out ------------------------------------------------------------------------------

def test_logout_ends_the_session_and_the_old_cookie_is_worthless(testapp, make_user, session_record):
    make_user("alice", "Alice-Secret-1")
    login(testapp, "alice", "Alice-Secret-1")
    old_cookie = testapp.cookies[COOKIE]
    assert session_record(testapp) is not None
    res = testapp.post("/admin/logout", {"csrf_token": csrf_token(testapp)}, status=303)
    assert res.headers["Location"] == "http://eportal.test/admin/login?logged_out=1"
    assert any("Max-Age=0" in h or "expires=" in h.lower() for h in set_cookie_headers(res))
    assert "You have logged out." in res.follow().text
    assert not is_logged_in(testapp)
    # the id from before the logout no longer opens anything
    testapp.set_cookie(COOKIE, old_cookie)
    assert session_record(testapp) is None
    assert not is_logged_in(testapp)


def test_logout_by_get_does_nothing(testapp, make_user):
    make_user("alice", "Alice-Secret-1")
    login(testapp, "alice", "Alice-Secret-1")
    res = testapp.get("/admin/logout", status="*")
    assert res.status_int in (404, 405)
    assert is_logged_in(testapp)


def test_logout_requires_the_csrf_token(testapp, make_user):
    make_user("alice", "Alice-Secret-1")
    login(testapp, "alice", "Alice-Secret-1")
    res = testapp.post("/admin/logout", status=400)
    assert "Form expired" in res.text
    testapp.post("/admin/logout", {"csrf_token": "forged"}, status=400)
    assert is_logged_in(testapp)


def test_anonymous_logout_is_sent_to_login(testapp):
    token = testapp.get("/admin/login").forms[0]["csrf_token"].value
    res = testapp.post("/admin/logout", {"csrf_token": token}, status=302)
    assert "/admin/login" in res.headers["Location"]


# --- the session cookie -----------------------------------------------------------------------

def test_session_id_rotates_on_login(testapp, make_user, session_record):
    make_user("alice", "Alice-Secret-1")
    form = testapp.get("/admin/login").forms[0]
    before = testapp.cookies[COOKIE]
    anonymous = session_record(testapp)
    assert anonymous is not None and anonymous.user_id is None
    form["login"], form["password"] = "alice", "Alice-Secret-1"
    form.submit(status=303)
    after = testapp.cookies[COOKIE]
    assert after != before
    assert session_record(testapp).user_id is not None
    # session fixation: the id someone may have planted before the login opens nothing
    testapp.set_cookie(COOKIE, before)
    assert session_record(testapp) is None
    assert not is_logged_in(testapp)


def test_session_data_is_stored_by_digest_not_by_cookie_value(testapp, make_user, dbsession):
    make_user("alice", "Alice-Secret-1")
    login(testapp, "alice", "Alice-Secret-1")
    cookie = testapp.cookies[COOKIE]
    assert len(cookie) >= 32
    dbsession.expire_all()
    digests = dbsession.scalars(select(WebSession.digest)).all()
    assert cookie not in digests
    assert all(cookie not in row.data for row in dbsession.scalars(select(WebSession)))


def test_forged_or_oversized_cookie_is_just_logged_out(testapp):
    for value in ("x" * 40, "y" * 500):
        testapp.set_cookie(COOKIE, value)
        assert not is_logged_in(testapp)


def test_cookie_flags_over_http(testapp, make_user):
    make_user("alice", "Alice-Secret-1")
    res = login(testapp, "alice", "Alice-Secret-1")
    [header] = set_cookie_headers(res)
    lowered = header.lower()
    assert "httponly" in lowered
    assert "samesite=lax" in lowered
    assert "path=/" in lowered
    assert "secure" not in lowered


def test_cookie_is_secure_over_https(testapp, make_user):
    make_user("alice", "Alice-Secret-1")
    https = {"wsgi.url_scheme": "https"}
    page = testapp.get("/admin/login", extra_environ=https)
    [header] = set_cookie_headers(page)
    assert "secure" in header.lower()
    assert "httponly" in header.lower() and "samesite=lax" in header.lower()
    token = page.forms[0]["csrf_token"].value
    res = testapp.post("/admin/login", {"login": "alice", "password": "Alice-Secret-1", "csrf_token": token},
                       extra_environ=https, headers={"Referer": "https://eportal.test/admin/login"}, status=303)
    [header] = set_cookie_headers(res)
    assert "secure" in header.lower() and "httponly" in header.lower() and "samesite=lax" in header.lower()
    assert res.headers["Location"] == "https://eportal.test/admin/"
    assert res.headers["Strict-Transport-Security"].startswith("max-age=")


# --- expiry -----------------------------------------------------------------------------------

def _age(dbsession, record, **delta):
    record.last_seen = record.last_seen - timedelta(**delta.get("idle", {}))
    record.created = record.created - timedelta(**delta.get("life", {}))
    dbsession.commit()


def test_idle_session_expires(testapp, make_user, dbsession, session_record):
    make_user("alice", "Alice-Secret-1")
    login(testapp, "alice", "Alice-Secret-1")
    record = session_record(testapp)
    digest = record.digest
    _age(dbsession, record, idle={"minutes": 31})  # the default idle timeout is 30 minutes
    res = testapp.get("/admin/users/", status=302)
    assert "/admin/login" in res.headers["Location"]
    page = res.follow()
    assert EXPIRED in page.text
    assert session_record(testapp) is None or session_record(testapp).user_id is None
    dbsession.expire_all()
    assert dbsession.get(WebSession, digest) is None


def test_recently_used_session_lives_on_and_is_touched(testapp, make_user, dbsession, session_record):
    make_user("alice", "Alice-Secret-1")
    login(testapp, "alice", "Alice-Secret-1")
    _age(dbsession, session_record(testapp), idle={"minutes": 29}, life={"hours": 11})
    assert is_logged_in(testapp)
    record = session_record(testapp)
    assert utcnow() - record.last_seen < timedelta(minutes=1)  # touched, so idle counts from now


def test_session_expires_after_its_absolute_lifetime_even_when_busy(testapp, make_user, dbsession, session_record):
    make_user("alice", "Alice-Secret-1")
    login(testapp, "alice", "Alice-Secret-1")
    record = session_record(testapp)
    digest = record.digest
    _age(dbsession, record, life={"hours": 12, "minutes": 1})  # the default lifetime is 12 hours
    record.last_seen = utcnow()  # used a second ago
    dbsession.commit()
    res = testapp.get("/admin/", status=302)
    page = res.follow()
    assert EXPIRED in page.text
    assert not is_logged_in(testapp)
    dbsession.expire_all()
    assert dbsession.get(WebSession, digest) is None


def test_expired_session_can_log_in_again(testapp, make_user, dbsession, session_record):
    make_user("alice", "Alice-Secret-1")
    login(testapp, "alice", "Alice-Secret-1")
    _age(dbsession, session_record(testapp), idle={"hours": 2})
    page = testapp.get("/admin/login")
    assert EXPIRED in page.text
    form = page.forms[0]
    form["login"], form["password"] = "alice", "Alice-Secret-1"
    form.submit(status=303)
    assert is_logged_in(testapp)


# --- throttling -------------------------------------------------------------------------------

def test_per_user_throttle_refuses_even_the_right_password(testapp, other_client, make_user, dbsession):
    make_user("alice", "Alice-Secret-1")
    for _ in range(5):
        assert WRONG in login(testapp, "alice", "bad-password-1", status=401).text
    res = login(testapp, "alice", "Alice-Secret-1", status=401)
    assert TOO_MANY in res.text
    assert "Try again in 15 minutes." in res.text
    assert "Traceback" not in res.text
    assert not is_logged_in(testapp)
    # per user name: another address is refused too, and another user is not affected
    other = other_client(remote_addr="198.51.100.7")
    assert TOO_MANY in login(other, "alice", "Alice-Secret-1", status=401).text
    make_user("bob", "Bob-Secret-12")
    login(other, "bob", "Bob-Secret-12")
    assert is_logged_in(other)
    # refused attempts are not counted again (the lockout does not grow while someone hammers)
    assert failures(dbsession, username="alice") == 5


def test_per_user_throttle_forgets_failures_outside_the_window(testapp, make_user, dbsession):
    make_user("alice", "Alice-Secret-1")
    for _ in range(5):
        login(testapp, "alice", "bad-password-1", status=401)
    dbsession.expire_all()
    for failure in dbsession.scalars(select(LoginFailure)):
        failure.at = failure.at - timedelta(minutes=16)  # the window is 15 minutes
    dbsession.commit()
    login(testapp, "alice", "Alice-Secret-1")
    assert is_logged_in(testapp)


def test_per_ip_throttle(testapp, other_client, make_user, dbsession):
    make_user("alice", "Alice-Secret-1")
    for i in range(20):  # the default per-IP limit; every name fails once, far below the per-user limit
        # a forged X-Forwarded-For does not make a new client: no proxy is trusted here
        testapp.extra_environ["HTTP_X_FORWARDED_FOR"] = f"203.0.113.{i}"
        assert WRONG in login(testapp, f"guess{i}", "bad-password-1", status=401).text
    del testapp.extra_environ["HTTP_X_FORWARDED_FOR"]
    assert failures(dbsession, ip="192.0.2.10") == 20
    res = login(testapp, "alice", "Alice-Secret-1", status=401)
    assert TOO_MANY in res.text
    assert not is_logged_in(testapp)
    # the same user from another address is fine: it was the address that was throttled
    other = other_client(remote_addr="198.51.100.7")
    login(other, "alice", "Alice-Secret-1")
    assert is_logged_in(other)


def test_successful_login_clears_the_users_failures(testapp, make_user, dbsession):
    make_user("alice", "Alice-Secret-1")
    for _ in range(4):
        login(testapp, "alice", "bad-password-1", status=401)
    assert failures(dbsession, username="alice") == 4
    login(testapp, "alice", "Alice-Secret-1")
    assert failures(dbsession, username="alice") == 0
    testapp.post("/admin/logout", {"csrf_token": csrf_token(testapp)}, status=303)
    for _ in range(4):  # 8 failures in the window in all, but only 4 since the last success
        login(testapp, "alice", "bad-password-1", status=401)
    login(testapp, "alice", "Alice-Secret-1")
    assert is_logged_in(testapp)


def test_echoed_values_are_escaped(testapp, make_user):
    make_user("alice", "Alice-Secret-1")
    payload = '"><script>alert(1)</script>'
    page = testapp.get("/admin/login", {"next": "/admin/" + payload})
    assert "<script>alert(1)</script>" not in page.text
    assert page.forms[0]["next"].value == "/admin/" + payload  # kept, but as data
    res = login(testapp, payload, "whatever-password", status=401)
    assert "<script>alert(1)</script>" not in res.text
    assert res.forms[0]["login"].value == payload


def test_per_ip_throttle_behind_a_trusted_proxy_counts_the_real_client(make_testapp, make_user, dbsession):
    client = make_testapp(**{"eportal.trusted_proxies": "192.0.2.10", "eportal.login.max_failures_per_ip": "3"})
    make_user("alice", "Alice-Secret-1")
    client.extra_environ["HTTP_X_FORWARDED_FOR"] = "203.0.113.5"
    for i in range(3):
        login(client, f"guess{i}", "bad-password-1", status=401)
    assert failures(dbsession, ip="203.0.113.5") == 3
    assert failures(dbsession, ip="192.0.2.10") == 0  # not the proxy: it would lock out everybody behind it
    assert TOO_MANY in login(client, "alice", "Alice-Secret-1", status=401).text
    client.reset()
    client.extra_environ["HTTP_X_FORWARDED_FOR"] = "203.0.113.6"
    login(client, "alice", "Alice-Secret-1")
    assert is_logged_in(client)


def test_secure_cookies_setting_overrides_the_scheme(make_testapp):
    always = make_testapp(**{"eportal.secure_cookies": "true"})
    [header] = set_cookie_headers(always.get("/admin/login"))
    assert "secure" in header.lower()
    never = make_testapp(**{"eportal.secure_cookies": "false"})
    [header] = set_cookie_headers(never.get("/admin/login", extra_environ={"wsgi.url_scheme": "https"}))
    assert "secure" not in header.lower()
