"""Settings → Feeds in the console: the list, create, edit, delete (keys move to main, and the
confirmation says how many), validation that re-renders what was typed, ``main`` protected,
read-only users see and change nothing. Through the real app (WebTest), on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from feeds_testing import add_feed, feed
from sqlalchemy import func, select

from eportal_core.api import MAIN_FEED, Feed, Key, deploy
from eportal_core.api import keys as keys_service
from eportal_core.testing import login

LIST = "/admin/feeds/"


@pytest.fixture
def admin(testapp, make_user):
    make_user("alice", "Alice-Secret-1")
    login(testapp, "alice", "Alice-Secret-1")
    return testapp


def rows(page) -> dict[str, dict]:
    out = {}
    for tr in page.html.select("#feeds tbody tr"):
        cells = tr.find_all("td")
        delete = tr.select_one("form[data-confirm]")
        out[tr["data-feed"]] = {
            "auto": cells[1].get_text(strip=True), "deploy_after": cells[2].get_text(strip=True),
            "keys": cells[3].get_text(strip=True), "enabled": " ".join(cells[4].get_text().split()),
            "confirm": delete["data-confirm"] if delete else None,
        }
    return out


def form_with_action(page, suffix: str):
    for form in page.forms.values():
        if (form.action or "").endswith(suffix):
            return form
    raise AssertionError(f"no form posting to ...{suffix}")


def create(client, name: str, auto: bool = False, deploy_after: str = "0", status: int = 303):
    form = client.get("/admin/feeds/add").forms[1]  # [0] is the log-out form
    form["name"] = name
    form["auto"] = auto
    form["deploy_after"] = deploy_after
    return form.submit(status=status)


def text(page) -> str:
    """The page's text as a reader sees it (entities decoded)."""
    return " ".join(page.html.get_text().split())


def count_feeds(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Feed))


def test_settings_feeds_is_in_the_navigation_and_lists_main_first(admin):
    home = admin.get("/admin/")
    nav = {a.get_text(strip=True): a["href"] for a in home.html.select('nav[aria-label="Main"] a')}
    assert nav["Feeds"] == "http://eportal.test" + LIST
    # Settings → Feeds: the entry sits in the Settings menu, before the core's Users and API tokens
    settings = home.html.select_one('nav[aria-label="Main"] > .nav-group:has(#nav-settings)')
    assert settings.select_one("button.nav-group-toggle").get_text(strip=True) == "Settings"
    assert [a.get_text(strip=True) for a in settings.select(".nav-menu a")][:3] == ["Feeds", "Users", "API tokens"]
    assert home.html.select('nav[aria-label="Main"] > a[href$="/admin/feeds/"]') == []  # not in the bar itself
    page = admin.get(LIST)
    assert page.html.select_one("main h1").get_text(strip=True) == "Feeds"
    assert "Settings" in page.html.select_one(".breadcrumb").get_text()
    current = page.html.select_one('nav[aria-label="Main"] a[aria-current="page"]')
    assert current.get_text(strip=True) == "Feeds"
    settings = page.html.select_one('nav[aria-label="Main"] > .nav-group:has(#nav-settings)')
    assert "current" in settings["class"] and settings.select_one(".nav-group-toggle")["aria-current"] == "true"
    listed = rows(page)
    assert list(listed) == [MAIN_FEED]
    assert listed[MAIN_FEED] == {"auto": "off", "deploy_after": "\u2013", "keys": "0", "enabled": "0",
                                 "confirm": None}  # main cannot be deleted: no delete form


def test_create_feed_then_it_is_listed_and_offered_to_keys(admin, dbsession):
    res = create(admin, "beta", auto=True, deploy_after="10")
    assert res.location == "http://eportal.test" + LIST
    page = res.follow()
    assert "Feed 'beta' created." in page.text
    assert rows(page)["beta"] == {"auto": "on", "deploy_after": "after 10 hours", "keys": "0", "enabled": "0",
                                  "confirm": "Delete feed 'beta'? No keys use it."}
    assert list(rows(page)) == [MAIN_FEED, "beta"]
    stored = feed(dbsession, "beta")
    assert (stored.auto, stored.deploy_after) == (True, 10)
    options = [o.get_text() for o in admin.get("/admin/keys/add").html.select("select#feed option")]
    assert options == [MAIN_FEED, "beta"]


@pytest.mark.parametrize("name,deploy_after,message,field", [
    ("bad name!", "0", "Invalid feed name 'bad name!'", "name"),
    ("", "0", "Invalid feed name ''", "name"),
    ("x" * 65, "0", "Invalid feed name", "name"),
    ("..", "0", "Invalid feed name '..'", "name"),
    ("ok", "abc", "Deploy after must be a whole number of hours, not 'abc'.", "deploy_after"),
    ("ok", "8761", "Deploy after must be between 0 (at once) and 8760 hours.", "deploy_after"),
    ("ok", "-1", "Deploy after must be between 0 (at once) and 8760 hours.", "deploy_after"),
    (MAIN_FEED, "0", "Feed 'main' already exists.", "name"),
])
def test_validation_errors_re_render_with_the_message_and_typed_values(admin, dbsession, name, deploy_after, message, field):
    before = count_feeds(dbsession)
    form = admin.get("/admin/feeds/add").forms[1]
    form["name"] = name
    form["auto"] = True
    form["deploy_after"] = deploy_after
    res = form.submit(status=400)
    alert = res.html.select_one('.flash-error[role="alert"]').get_text(strip=True)
    assert alert.startswith(message)
    assert res.html.select_one(f"#{field}")["aria-invalid"] == "true"
    assert res.html.select_one("#name")["value"] == name  # what was typed is still there
    assert res.html.select_one("#deploy_after")["value"] == deploy_after
    assert res.html.select_one("#auto").has_attr("checked")
    assert count_feeds(dbsession) == before


def test_edit_changes_auto_and_delay_and_renames_keeping_keys(admin, dbsession):
    add_feed(dbsession, "qa", auto=False, deploy_after=0)
    keys_service.create_key(dbsession, "qa-key", feed="qa", actor="test")
    dbsession.commit()
    page = admin.get("/admin/feeds/qa/edit")
    assert "1 key use this feed" in " ".join(page.html.select_one(".page-sub").get_text().split())
    form = form_with_action(page, "/admin/feeds/qa/edit")
    assert form["name"].value == "qa" and form["deploy_after"].value == "0"
    form["name"] = "qa2"
    form["auto"] = True
    form["deploy_after"] = "48"
    page = form.submit(status=303).follow()
    assert "Feed 'qa2' saved (was 'qa')." in page.text
    assert rows(page)["qa2"]["deploy_after"] == "after 48 hours" and rows(page)["qa2"]["keys"] == "1"
    dbsession.expire_all()
    assert keys_service.get_key(dbsession, "qa-key").feed.name == "qa2"
    admin.get("/admin/feeds/qa/edit", status=404)


def test_an_edit_refused_changes_nothing_and_keeps_what_was_typed(admin, dbsession):
    add_feed(dbsession, "qa", deploy_after=3)
    add_feed(dbsession, "taken")
    dbsession.commit()
    form = form_with_action(admin.get("/admin/feeds/qa/edit"), "/admin/feeds/qa/edit")
    form["name"] = "qa-renamed"
    form["deploy_after"] = "9999"  # the rename comes first in the service, then this fails
    res = form.submit(status=400)
    assert "Deploy after must be between 0" in res.text
    assert res.html.select_one("#name")["value"] == "qa-renamed"
    form = form_with_action(res, "/admin/feeds/qa/edit")
    form["name"] = "taken"
    form["deploy_after"] = "1"
    assert text(form.submit(status=400)).count("Feed 'taken' already exists.") == 1
    dbsession.expire_all()
    assert feed(dbsession, "qa").deploy_after == 3 and feed(dbsession, "qa-renamed") is None


def test_main_can_be_edited_but_neither_renamed_nor_deleted(admin, dbsession):
    page = admin.get("/admin/feeds/main/edit")
    assert page.html.select_one("#name").has_attr("readonly")
    assert "cannot be renamed or deleted" in page.text
    assert page.html.select_one("form[data-confirm]") is None  # no delete button
    form = form_with_action(page, "/admin/feeds/main/edit")
    form["auto"] = True
    form["deploy_after"] = "12"
    assert "Feed 'main' saved." in form.submit(status=303).follow().text
    dbsession.expire_all()
    assert (feed(dbsession, MAIN_FEED).auto, feed(dbsession, MAIN_FEED).deploy_after) == (True, 12)
    # a forged rename is refused
    form = form_with_action(admin.get("/admin/feeds/main/edit"), "/admin/feeds/main/edit")
    form["name"].force_value("primary")
    assert "The main feed cannot be renamed." in form.submit(status=400).text
    # and a forged delete too
    token = page.html.find("input", {"name": "csrf_token"})["value"]
    res = admin.post("/admin/feeds/main/delete", {"csrf_token": token}, status=303).follow()
    assert "The main feed cannot be deleted." in res.text
    dbsession.expire_all()
    assert feed(dbsession, MAIN_FEED) is not None and feed(dbsession, "primary") is None


def test_delete_says_how_many_keys_move_to_main_and_moves_them(admin, dbsession):
    add_feed(dbsession, "beta")
    for name in ("k1", "k2", "k3"):
        keys_service.create_key(dbsession, name, feed="beta", actor="test")
    keys_service.create_key(dbsession, "stays", feed=MAIN_FEED, actor="test")
    dbsession.commit()
    page = admin.get(LIST)
    confirm = "Delete feed 'beta'? Its 3 keys will move to the main feed."
    assert rows(page)["beta"]["confirm"] == confirm
    assert rows(page)["beta"]["keys"] == "3" and rows(page)[MAIN_FEED]["keys"] == "1"
    edit = admin.get("/admin/feeds/beta/edit")
    assert edit.html.select_one("form[data-confirm]")["data-confirm"] == confirm
    page = form_with_action(page, "/admin/feeds/beta/delete").submit(status=303).follow()
    assert "Feed 'beta' deleted; its 3 keys moved to main." in page.text
    assert list(rows(page)) == [MAIN_FEED] and rows(page)[MAIN_FEED]["keys"] == "4"
    dbsession.expire_all()
    assert feed(dbsession, "beta") is None
    assert {k.feed.name for k in dbsession.scalars(select(Key))} == {MAIN_FEED}
    # deleting it again: one message, nothing else happens
    token = page.html.find("input", {"name": "csrf_token"})["value"]
    assert "Feed 'beta' does not exist." in text(admin.post("/admin/feeds/beta/delete", {"csrf_token": token}).follow())


def test_one_key_is_one_key(admin, dbsession):
    add_feed(dbsession, "solo")
    keys_service.create_key(dbsession, "only", feed="solo", actor="test")
    dbsession.commit()
    assert rows(admin.get(LIST))["solo"]["confirm"] == "Delete feed 'solo'? Its 1 key will move to the main feed."


def test_the_list_shows_enabled_patchsets_and_the_latest(admin, dbsession, imported):
    deploy.enable_upto(dbsession, feed(dbsession, MAIN_FEED), imported[2], actor="test")
    add_feed(dbsession, "none-yet")
    dbsession.commit()
    listed = rows(admin.get(LIST))
    assert listed[MAIN_FEED]["enabled"] == f"3 · latest {imported[2].name}"
    assert listed["none-yet"]["enabled"] == "0"


def test_readonly_users_see_the_list_without_controls_and_change_nothing(testapp, make_user, dbsession):
    make_user("root", "Root-Secret-1")
    make_user("rita", "Rita-Secret-1", readonly=True)
    add_feed(dbsession, "beta")
    dbsession.commit()
    login(testapp, "rita", "Rita-Secret-1")
    page = testapp.get(LIST)
    assert list(rows(page)) == [MAIN_FEED, "beta"]
    assert {f.action for f in page.forms.values()} == {"http://eportal.test/admin/logout"}
    assert "Create feed" not in page.text and "/admin/feeds/beta/edit" not in page.text
    assert "read-only" in testapp.get("/admin/feeds/add", status=403).text
    token = page.html.find("input", {"name": "csrf_token"})["value"]
    testapp.post("/admin/feeds/beta/delete", {"csrf_token": token}, status=403)
    testapp.post("/admin/feeds/add", {"csrf_token": token, "name": "evil"}, status=403)
    dbsession.expire_all()
    assert feed(dbsession, "beta") is not None and feed(dbsession, "evil") is None


def test_anonymous_users_are_sent_to_the_login(testapp):
    assert "/admin/login" in testapp.get(LIST, status=302).location
