"""The start page (check-in summary, per-feed table, Key Inventory) and the key form's four buttons,
validation, and removing a key with its servers."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from eportal_core.models import AuditEvent, Key, Server
from eportal_core.services import keys as keys_service
from eportal_core.testing import csrf_token, login

from .fleet import add_feed, add_orphan, add_server
from .test_readonly import (
    EXEMPT_FOR_ANONYMOUS,
    EXEMPT_FOR_READONLY,
    _anonymous_token,
    _refused_anonymous,
    _refused_readonly,
    discover,
    walk,
)

MINE = {("key_add", "GET"), ("key_add", "POST"), ("key_edit", "GET"), ("key_edit", "POST"), ("key_delete", "POST"),
        ("kcserver_delete_selected", "POST"), ("kcserver_tags", "POST"), ("kcserver_delete", "POST")}


def key_count(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Key))


def fresh_key(db, name) -> Key | None:
    db.expire_all()
    return keys_service.get_key(db, name)


def key_form(client, url="/admin/keys/add"):
    page = client.get(url)
    [form] = [f for f in page.forms.values() if f.action.endswith(url)]
    return form


def text_of(page, selector) -> str:
    node = page.html.select_one(selector)
    assert node is not None, selector
    return node.get_text(" ", strip=True)


def inventory_rows(page) -> dict[str, list[str]]:
    out = {}
    for tr in page.html.select("table.key-table tbody tr"):
        cells = [td.get_text(" ", strip=True) for td in tr.find_all("td")]
        out[cells[0]] = cells
    return out


def feed_rows(page) -> dict[str, list[str]]:
    out = {}
    for tr in page.html.select("table.summary-table tbody tr"):
        out[tr.th.get_text(strip=True)] = [td.get_text(strip=True) for td in tr.find_all("td")]
    return out


# --- the start page ----------------------------------------------------------------------------

def test_start_page_counts_servers_and_check_ins_per_feed_and_key(testapp, as_admin, dbsession):
    add_feed(dbsession, "beta")
    keys_service.create_key(dbsession, "kmain", note="web farm", server_limit=10)
    keys_service.create_key(dbsession, "kbeta", feed="beta")
    keys_service.create_key(dbsession, "kempty", feed="beta", server_limit=3)
    for ago in (timedelta(0), timedelta(hours=1), timedelta(hours=47), timedelta(hours=49), timedelta(days=10)):
        add_server(dbsession, "kmain", checkin_ago=ago)
    add_server(dbsession, "kbeta", checkin_ago=timedelta(minutes=5))
    add_server(dbsession, "kbeta", checkin_ago=timedelta(days=3))
    add_orphan(dbsession, checkin_ago=timedelta(hours=2))
    dbsession.commit()

    page = testapp.get("/admin/")
    assert page.html.h1.get_text(strip=True) == "Keys"
    # the summary: 8 servers, 5 of them checked in within 48 h
    assert text_of(page, "#total-servers") == "8"
    assert text_of(page, "#total-checked-in") == "5"
    tiles = {t.select_one(".stat-label").get_text(strip=True): t.select_one(".stat-value").get_text(strip=True)
             for t in page.html.select(".stats .stat")}
    assert tiles["Servers"] == "8" and tiles["Checked in · 48 h"] == "5" and tiles["Silent · 48 h"] == "3"
    assert tiles["Keys"] == "3"
    # per feed: keys, servers, checked in, share
    feeds = feed_rows(page)
    assert feeds["main"] == ["1", "5", "3", "60%"]
    assert feeds["beta"] == ["2", "2", "1", "50%"]
    assert feeds["(no key)"] == ["–", "1", "1", "100%"]
    # the feed numbers link to the matching server lists
    link = page.html.select_one("table.summary-table tbody tr a[href*='feed=beta'][href*='checkin_age=-2']")
    assert link is not None and link.get_text(strip=True) == "1"

    # the Key Inventory: key, description, limit, feed, servers (creation order)
    rows = inventory_rows(page)
    assert list(rows) == ["kmain", "kbeta", "kempty"]
    assert rows["kmain"][:5] == ["kmain", "web farm", "10", "main", "5"]
    assert rows["kbeta"][:5] == ["kbeta", "–", "unlimited", "beta", "2"]
    assert rows["kempty"][:5] == ["kempty", "–", "3", "beta", "0"]
    # a key links to its servers
    key_link = page.html.select_one("table.key-table a.key-link")
    assert key_link["href"] == "http://eportal.test/admin/kcserver/?key=kmain"
    # the dashboard's plugin slot is still there (tests/unit/test_hooks.py fills it)


def test_key_inventory_service_matches_the_page_numbers(dbsession):
    add_feed(dbsession, "beta")
    keys_service.create_key(dbsession, "a1")
    keys_service.create_key(dbsession, "b1", feed="beta")
    add_server(dbsession, "a1", checkin_ago=timedelta(hours=1))
    add_server(dbsession, "a1", checkin_ago=timedelta(hours=60))
    add_server(dbsession, "b1")
    add_orphan(dbsession, checkin_ago=timedelta(days=5))
    inv = keys_service.key_inventory(dbsession)
    assert (inv.total, inv.checked_in, inv.no_key, inv.no_key_checked_in) == (4, 2, 1, 0)
    assert [(r.key.key, r.servers, r.checked_in) for r in inv.keys] == [("a1", 2, 1), ("b1", 1, 1)]
    assert {f.name: (f.keys, f.servers, f.checked_in) for f in inv.feeds} == {"main": (1, 2, 1), "beta": (1, 1, 1)}
    assert [f.name for f in inv.feeds][0] == "main"


def test_empty_start_page_invites_to_create_a_key(testapp, as_admin):
    page = testapp.get("/admin/")
    assert "No keys yet" in page.text
    assert text_of(page, "#total-servers") == "0"
    assert page.html.select_one("a[href='http://eportal.test/admin/keys/add']") is not None


# --- the four buttons --------------------------------------------------------------------------

def fill(form, key="", note="", limit="0", feed="main"):
    form["key"], form["note"], form["server_limit"], form["feed"] = key, note, limit, feed
    return form


def test_save_creates_the_key_and_returns_to_the_list(testapp, as_admin, dbsession):
    add_feed(dbsession, "beta")
    dbsession.commit()
    form = key_form(testapp)
    assert {"key", "note", "server_limit", "feed", "csrf_token"} <= set(form.fields)
    assert form["feed"].value == "main" and form["server_limit"].value == "0" and form["key"].value == ""
    assert [o[0] for o in form["feed"].options] == ["main", "beta"]
    res = fill(form, "alpha", "web farm", "25", "beta").submit("action", value="save", status=303)
    assert res.headers["Location"] == "http://eportal.test/admin/"
    page = res.follow()
    assert "Key 'alpha' created." in page.text
    assert inventory_rows(page)["alpha"][:5] == ["alpha", "web farm", "25", "beta", "0"]
    key = fresh_key(dbsession, "alpha")
    assert (key.note, key.server_limit, key.feed.name) == ("web farm", 25, "beta")
    assert dbsession.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "key.add", AuditEvent.target == "alpha", AuditEvent.actor == "alice")) == 1


def test_save_and_add_another_opens_a_fresh_create_form(testapp, as_admin, dbsession):
    res = fill(key_form(testapp), "first", "one").submit("action", value="add_another", status=303)
    assert res.headers["Location"] == "http://eportal.test/admin/keys/add"
    page = res.follow()
    assert "Key 'first' created." in page.text
    form = [f for f in page.forms.values() if f.action.endswith("/admin/keys/add")][0]
    assert form["key"].value == "" and form["note"].value == "" and form["server_limit"].value == "0"
    # and the next one is saved too
    form["key"] = "second"
    form.submit("action", value="save", status=303)
    assert fresh_key(dbsession, "first") is not None and fresh_key(dbsession, "second") is not None


def test_save_and_continue_editing_opens_the_edit_page(testapp, as_admin, dbsession):
    res = fill(key_form(testapp), "", "generated one", "5").submit("action", value="continue", status=303)
    location = res.headers["Location"]
    found = re.fullmatch(r"http://eportal\.test/admin/keys/([A-Za-z0-9]{16})/edit", location)
    assert found, location  # an empty key field: a generated 16-character key
    name = found.group(1)
    page = res.follow()
    assert f"Key '{name}' created." in page.text
    form = key_form(testapp, f"/admin/keys/{name}/edit")
    assert (form["key"].value, form["note"].value, form["server_limit"].value, form["feed"].value) == \
        (name, "generated one", "5", "main")
    # editing: change everything, rename included, and stay on the edit page
    res = fill(form, "renamed", "changed", "0", "main").submit("action", value="continue", status=303)
    assert res.headers["Location"] == "http://eportal.test/admin/keys/renamed/edit"
    assert f"Key 'renamed' saved (was '{name}')." in res.follow().text
    key = fresh_key(dbsession, "renamed")
    assert (key.note, key.server_limit) == ("changed", 0)
    assert fresh_key(dbsession, name) is None


def test_cancel_goes_back_to_the_list_and_saves_nothing(testapp, as_admin, dbsession):
    page = testapp.get("/admin/keys/add")
    cancel = page.html.select_one("form.key-form .form-actions a")
    assert cancel.get_text(strip=True) == "Cancel" and cancel["href"] == "http://eportal.test/admin/"
    # a link, not a submit button: following it posts nothing
    assert [b["value"] for b in page.html.select("form.key-form button[type=submit]")] == ["save", "add_another", "continue"]
    before = key_count(dbsession)
    assert testapp.get(cancel["href"]).status_int == 200
    assert key_count(dbsession) == before == 0


def test_edit_buttons_save_and_add_another(testapp, as_admin, dbsession):
    keys_service.create_key(dbsession, "ed1", note="old")
    dbsession.commit()
    form = key_form(testapp, "/admin/keys/ed1/edit")
    form["note"] = "new"
    res = form.submit("action", value="add_another", status=303)
    assert res.headers["Location"] == "http://eportal.test/admin/keys/add"
    form = key_form(testapp, "/admin/keys/ed1/edit")
    form["server_limit"] = "7"
    assert form.submit("action", value="save", status=303).headers["Location"] == "http://eportal.test/admin/"
    key = fresh_key(dbsession, "ed1")
    assert (key.note, key.server_limit) == ("new", 7)


# --- validation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, message", [
    ({"key": "taken"}, "Key 'taken' already exists."),
    ({"key": "fresh", "server_limit": "-1"}, "Server limit must be between 0 (unlimited) and"),
    ({"key": "fresh", "server_limit": "ten"}, "Server limit must be a whole number (0 = unlimited), not 'ten'."),
    ({"key": "bad key!"}, "Invalid key 'bad key!'"),
    ({"key": ".."}, "Invalid key '..'"),
    ({"key": "fresh", "feed": "nope"}, "Feed 'nope' does not exist."),
])
def test_create_refusals_rerender_the_form_with_the_message_and_typed_values(testapp, as_admin, dbsession, fields, message):
    keys_service.create_key(dbsession, "taken")
    dbsession.commit()
    posted = {"key": "", "note": "typed note", "server_limit": "3", "feed": "main", "action": "save", **fields}
    res = testapp.post("/admin/keys/add", dict(posted, csrf_token=csrf_token(testapp)), status=400)
    assert message in res.html.select_one("form.key-form .flash-error").get_text()
    form = [f for f in res.forms.values() if f.action.endswith("/admin/keys/add")][0]
    assert form["key"].value == posted["key"] and form["note"].value == "typed note"
    assert form["server_limit"].value == posted["server_limit"]
    assert res.html.select_one(".field-error") is not None  # the field in question is marked
    assert key_count(dbsession) == 1  # only "taken"


def test_a_refused_edit_changes_nothing_not_even_the_rename(testapp, as_admin, dbsession):
    keys_service.create_key(dbsession, "keep", note="as is", server_limit=4)
    keys_service.create_key(dbsession, "other")
    dbsession.commit()
    token = csrf_token(testapp)
    res = testapp.post("/admin/keys/keep/edit", {"key": "moved", "note": "x", "server_limit": "-5", "feed": "main",
                                                  "action": "save", "csrf_token": token}, status=400)
    assert "Server limit must be between 0" in res.text
    assert res.html.h1.get_text(" ", strip=True) == "Edit key keep"
    res = testapp.post("/admin/keys/keep/edit", {"key": "other", "note": "x", "server_limit": "1", "feed": "main",
                                                  "action": "save", "csrf_token": token}, status=400)
    assert "Key 'other' already exists." in res.text
    res = testapp.post("/admin/keys/keep/edit", {"key": "", "note": "x", "server_limit": "1", "feed": "main",
                                                  "action": "save", "csrf_token": token}, status=400)
    assert "cannot be empty" in res.text
    key = fresh_key(dbsession, "keep")
    assert (key.note, key.server_limit) == ("as is", 4)
    assert fresh_key(dbsession, "moved") is None


def test_unknown_key_edit_is_404(testapp, as_admin):
    res = testapp.get("/admin/keys/nosuch/edit", status=404)
    assert "Page not found" in res.text


# --- removing a key ------------------------------------------------------------------------------

def test_remove_key_states_the_count_and_removes_its_servers(testapp, as_admin, dbsession):
    keys_service.create_key(dbsession, "doomed")
    keys_service.create_key(dbsession, "stays")
    keys_service.create_key(dbsession, "solo")
    doomed = [add_server(dbsession, "doomed", f"d{i}").server_id for i in range(2)]
    kept = add_server(dbsession, "stays", "s1").server_id
    add_server(dbsession, "solo", "only")
    dbsession.commit()

    page = testapp.get("/admin/")
    forms = {f.action: f for f in page.forms.values()}
    form = forms["http://eportal.test/admin/keys/doomed/delete"]
    node = page.html.select_one("form[action='http://eportal.test/admin/keys/doomed/delete']")
    assert node["data-confirm"] == "Remove key doomed and its 2 servers?"
    assert node["data-confirm-button"] == "Remove key"
    solo = page.html.select_one("form[action='http://eportal.test/admin/keys/solo/delete']")
    assert solo["data-confirm"] == "Remove key solo and its 1 server?"
    # the edit page offers the same, with the same count
    edit = testapp.get("/admin/keys/doomed/edit")
    assert edit.html.select_one("form[data-confirm]")["data-confirm"] == "Remove key doomed and its 2 servers?"

    res = form.submit(status=303)
    assert res.headers["Location"] == "http://eportal.test/admin/"
    page = res.follow()
    assert "Key 'doomed' removed, with its 2 servers." in page.text
    assert "doomed" not in inventory_rows(page)
    dbsession.expire_all()
    assert fresh_key(dbsession, "doomed") is None
    assert dbsession.scalar(select(func.count()).select_from(Server).where(Server.server_id.in_(doomed))) == 0
    assert dbsession.scalar(select(func.count()).select_from(Server).where(Server.server_id == kept)) == 1


def test_removing_an_unknown_key_says_so(testapp, as_admin):
    res = testapp.post("/admin/keys/ghost/delete", {"csrf_token": csrf_token(testapp)}, status=303)
    assert "Key 'ghost' does not exist." in res.follow().text


# --- read-only users ---------------------------------------------------------------------------

def test_readonly_sees_the_inventory_without_controls(testapp, as_readonly, dbsession):
    keys_service.create_key(dbsession, "visible")
    add_server(dbsession, "visible", "h1")
    dbsession.commit()
    page = testapp.get("/admin/")
    assert "visible" in inventory_rows(page)
    assert {f.action for f in page.forms.values()} == {"http://eportal.test/admin/logout"}
    assert "/admin/keys/add" not in page.text and "/edit" not in page.text
    assert page.html.select_one("table.key-table th.actions") is None
    res = testapp.get("/admin/keys/add", status=403)
    assert "read-only" in res.text


def test_the_readonly_walk_covers_the_key_and_server_routes(app, testapp, make_user, snapshot, dbsession):
    """test_readonly.py walks every route; here the walk is restricted to this issue's routes, on a site
    with a real key and server, so a refusal is proven against objects that exist."""
    mutating, _, problems = discover(app)
    assert problems == []
    mine = [t for t in mutating if (t.route, t.method) in MINE]
    assert {(t.route, t.method) for t in mine} == MINE
    keys_service.create_key(dbsession, "1")
    add_server(dbsession, "1", "victim-host")
    make_user("root", "Root-Secret-1")
    make_user("rita", "Rita-Secret-1", readonly=True)
    dbsession.commit()
    before = snapshot()
    assert walk(testapp, mine, _anonymous_token(testapp), _refused_anonymous, EXEMPT_FOR_ANONYMOUS) == []
    assert snapshot() == before
    login(testapp, "rita", "Rita-Secret-1")
    token = csrf_token(testapp)
    before = snapshot()
    assert walk(testapp, mine, token, _refused_readonly, EXEMPT_FOR_READONLY) == []
    assert snapshot() == before
