"""The console's API tokens page: a new token is shown once, works on the REST API, can be revoked;
read-only users create and revoke nothing."""
from __future__ import annotations

from datetime import timedelta

import webtest
from sqlalchemy import select

from eportal_core.models import ApiToken, WebSession, utcnow
from eportal_core.services.tokens import create_token
from eportal_core.testing import csrf_token, login

from .conftest import cookie_digest

ONCE = "it will not be shown again"


def create(client, name: str, expires_days: str = "", status: int = 303):
    form = client.get("/admin/tokens/").forms["create-token"]
    form["name"] = name
    form["expires_days"] = expires_days
    return form.submit(status=status)


def shown_token(page) -> str | None:
    value = page.html.find(id="new-token-value")
    return value.text.strip() if value is not None else None


def test_the_page_is_in_the_navigation(testapp, as_admin):
    page = testapp.get("/admin/")
    link = page.html.find("a", string="API tokens")
    assert link is not None and link["href"] == "http://eportal.test/admin/tokens/"
    assert testapp.get("/admin/tokens/").html.find("a", string="API tokens").get("aria-current") == "page"


def test_a_new_token_is_shown_once_and_works(testapp, as_admin, dbsession, session_record):
    res = create(testapp, "ci pipeline")
    assert res.headers["Location"] == "http://eportal.test/admin/tokens/"
    assert "ept_" not in res.headers["Location"]  # never in the address
    page = res.follow()
    token = shown_token(page)
    assert token and token.startswith("ept_") and len(token) > 40
    assert ONCE in page.text and "ci pipeline" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    # the session carried it to this one page view and no further
    assert token not in session_record(testapp).data
    again = testapp.get("/admin/tokens/")
    assert token not in again.text and shown_token(again) is None and ONCE not in again.text
    # listed by its prefix, never stored in clear
    assert token[:12] in again.text
    row = dbsession.scalar(select(ApiToken).where(ApiToken.name == "ci pipeline"))
    assert row.prefix == token[:12] and token not in (row.digest, row.prefix)
    # it works against the API, as its owner (an admin)
    assert testapp.get("/admin/api/users/", headers={"X-Api-Key": token}).json["result"][0]["username"] == "alice"
    # another client: no session cookie, only the token
    other = webtest.TestApp(testapp.app, extra_environ={"HTTP_HOST": "eportal.test", "REMOTE_ADDR": "192.0.2.20"})
    assert other.post("/admin/api/keys/", {"key": "from-token"}, headers={"X-Api-Key": token}).json["result"]["key"] \
        == "from-token"
    cells = testapp.get("/admin/tokens/").html.find("tbody").find("tr").find_all("td")
    headings = [th.text.strip() for th in testapp.get("/admin/tokens/").html.find("thead").find_all("th")]
    assert cells[headings.index("Expires")].text.strip() == "never"
    assert cells[headings.index("Last used")].text.strip() == utcnow().strftime("%Y-%m-%d %H:%M") or \
        cells[headings.index("Last used")].text.strip().startswith(utcnow().strftime("%Y-%m-%d"))


def test_expiry_and_bad_input(testapp, as_admin, dbsession):
    page = create(testapp, "monthly", "30").follow()
    row = dbsession.scalar(select(ApiToken).where(ApiToken.name == "monthly"))
    assert row.expires is not None and timedelta(days=29) < row.expires - utcnow() <= timedelta(days=30)
    assert row.expires.strftime("%Y-%m-%d") in page.text
    for name, days, message in [("", "", "give the token a name"), ("x", "abc", "whole number of days"),
                                ("x", "0", "between 1 and 3650"), ("x", "4000", "between 1 and 3650"),
                                ("n" * 129, "", "give the token a name")]:
        res = create(testapp, name, days, status=400)
        assert message in res.text.lower() or message in res.text
        assert shown_token(res) is None
    assert len(list(dbsession.scalars(select(ApiToken)))) == 1


def test_revoke(testapp, as_admin, dbsession):
    token = shown_token(create(testapp, "to revoke").follow())
    assert testapp.get("/admin/api/users/", headers={"X-Api-Key": token}).status_int == 200
    page = testapp.get("/admin/tokens/")
    forms = [f for f in page.forms.values() if f.action.endswith("/revoke")]
    confirm = page.html.find("form", action=forms[0].action)["data-confirm"] if len(forms) == 1 else ""
    assert "Revoke the token 'to revoke'" in confirm
    page = forms[0].submit(status=303).follow()
    assert "revoked" in page.text
    assert dbsession.scalar(select(ApiToken).where(ApiToken.name == "to revoke")) is None
    assert testapp.get("/admin/api/users/", headers={"X-Api-Key": token}, status=401).json["error"] == "unauthorized"
    # revoking what is gone (or never was) is a message, not an error page
    for token_id in ("999999", "99999999999999999999", "abc"):
        res = testapp.post(f"/admin/tokens/{token_id}/revoke", {"csrf_token": csrf_token(testapp)}, status=303)
        assert "No such token" in res.follow().text


def test_admins_see_and_revoke_everyones_tokens(testapp, make_user, dbsession, other_client):
    alice, _ = make_user("alice", "Alice-Secret-1")
    rita, _ = make_user("rita", "Rita-Secret-1", readonly=True)
    create_token(dbsession, alice, "alice script")
    _, ritas = create_token(dbsession, rita, "rita script")
    dbsession.commit()
    # rita (read-only) sees only her own, and no controls
    ro = other_client()
    login(ro, "rita", "Rita-Secret-1")
    page = ro.get("/admin/tokens/")
    assert "rita script" in page.text and "alice script" not in page.text
    assert {f.action for f in page.forms.values()} == {"http://eportal.test/admin/logout"}
    # alice (admin) sees both, with their owners, and may revoke rita's
    login(testapp, "alice", "Alice-Secret-1")
    page = testapp.get("/admin/tokens/")
    assert "rita script" in page.text and "alice script" in page.text and "Owner" in page.text
    res = testapp.post(f"/admin/tokens/{ritas.id}/revoke", {"csrf_token": csrf_token(testapp)}, status=303)
    assert "revoked" in res.follow().text
    assert "rita script" not in ro.get("/admin/tokens/").text


def test_readonly_users_cannot_create_or_revoke(testapp, as_readonly, dbsession, snapshot):
    user, _ = as_readonly
    _, row = create_token(dbsession, user, "made by an admin for rita")
    dbsession.commit()
    page = testapp.get("/admin/tokens/")
    assert "Read-only users cannot create or revoke API tokens" in page.text
    assert page.html.find(id="token-name") is None
    token = csrf_token(testapp)
    before = snapshot()
    res = testapp.post("/admin/tokens/add", {"name": "sneaky", "csrf_token": token}, status=403)
    assert "read-only" in res.text
    testapp.post(f"/admin/tokens/{row.id}/revoke", {"csrf_token": token}, status=403)
    assert snapshot() == before


def test_create_and_revoke_need_the_csrf_token(testapp, as_admin, dbsession):
    testapp.post("/admin/tokens/add", {"name": "forged"}, status=400)
    testapp.post("/admin/tokens/add", {"name": "forged", "csrf_token": "forged"}, status=400)
    assert dbsession.scalar(select(ApiToken)) is None


def test_a_token_made_on_the_console_works_under_another_header_name(make_testapp, make_user):
    make_user("alice", "Alice-Secret-1")
    client = make_testapp(**{"eportal.api_key_header": "X-Eportal-Token"})
    login(client, "alice", "Alice-Secret-1")
    page = create(client, "custom header").follow()
    token = shown_token(page)
    assert "X-Eportal-Token" in page.text  # the usage hint names the configured header
    sessionless = webtest.TestApp(client.app, extra_environ={"HTTP_HOST": "eportal.test", "REMOTE_ADDR": "192.0.2.30"})
    assert sessionless.get("/admin/api/users/", headers={"X-Eportal-Token": token}).status_int == 200
    assert sessionless.get("/admin/api/users/", headers={"X-Api-Key": token}, status=401).json["error"] == "unauthorized"


def test_the_session_row_does_not_keep_the_token(testapp, as_admin, dbsession):
    create(testapp, "secret").follow()
    dbsession.expire_all()
    rows = dbsession.scalars(select(WebSession).where(WebSession.digest == cookie_digest(testapp))).all()
    assert rows and all("ept_" not in r.data for r in rows)
