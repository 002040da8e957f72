"""The REST API for feeds and patchsets (protocol.md §6): idempotent create-or-update, delete (never
``main``; absent is fine; keys move to main), patchset status per feed, and manage actions that go
through the deploy rules (enabling P enables all before it; disabling P disables all after it).
Every answer is validated against the OpenAPI document, which marks these operations as the plugin's."""
from __future__ import annotations

import pytest
from feeds_testing import Checker, add_feed, basic, enabled, feed, plugin_operations, states
from sqlalchemy import select

from eportal_core.api import MAIN_FEED, Key, Patchset, deploy
from eportal_core.api import keys as keys_service
from eportal_core.testing import csrf_token, login
from eportal_core.testing.core import create_token

F, M, P = "/admin/api/feeds/", "/admin/api/patchsets/manage", "/admin/api/patchsets/"
ONE = "/admin/api/feeds/{name}"


@pytest.fixture
def doc(testapp):
    return testapp.get("/admin/api/openapi.json").json


@pytest.fixture
def c(doc):
    return Checker(doc)


@pytest.fixture
def tokens(make_user, dbsession):
    alice, _ = make_user("alice", "Alice-Secret-1")
    rita, _ = make_user("rita", "Rita-Secret-1", readonly=True)
    admin = {"X-Api-Key": create_token(dbsession, alice, "a")[0]}
    ro = {"X-Api-Key": create_token(dbsession, rita, "r")[0]}
    dbsession.commit()
    return admin, ro


# --- feeds ------------------------------------------------------------------------------------------

def test_list_feeds(testapp, c, tokens, dbsession):
    admin, ro = tokens
    add_feed(dbsession, "beta", auto=True, deploy_after=10)
    keys_service.create_key(dbsession, "k1", feed="beta", actor="test")
    dbsession.commit()
    res = c.check(testapp.get(F, headers=ro), F, "get")
    assert res.json == {"result": [
        {"name": MAIN_FEED, "auto": False, "deploy_after": 0, "channel": "", "keys": 0},
        {"name": "beta", "auto": True, "deploy_after": 10, "channel": "", "keys": 1}]}
    assert c.check(testapp.get(F, headers=basic("rita", "Rita-Secret-1")), F, "get").json == res.json
    assert c.check(testapp.get(F, status=401), F, "get").json["error"] == "unauthorized"


def test_create_also_updates_and_keeps_what_is_not_given(testapp, c, tokens, dbsession):
    admin, _ = tokens
    res = c.check(testapp.post(F, {"name": "qa", "auto": "true", "deploy_after": "10", "channel": "beta"},
                               headers=admin), F, "post")
    assert res.json == {"result": {"name": "qa", "auto": True, "deploy_after": 10, "channel": "beta", "keys": 0}}
    res = c.check(testapp.post_json(F, {"name": "qa", "deploy_after": 2}, headers=admin), F, "post")
    assert res.json["result"] == {"name": "qa", "auto": True, "deploy_after": 2, "channel": "beta", "keys": 0}
    res = c.check(testapp.post(F + "?name=qa&auto=false", headers=admin), F, "post")
    assert (res.json["result"]["auto"], res.json["result"]["deploy_after"]) == (False, 2)
    # a new feed gets the defaults; main may change its auto update and delay
    assert c.check(testapp.post(F, {"name": "plain"}, headers=admin), F, "post").json["result"] == \
        {"name": "plain", "auto": False, "deploy_after": 0, "channel": "", "keys": 0}
    res = c.check(testapp.post_json(F, {"name": MAIN_FEED, "auto": True, "deploy_after": 24}, headers=admin), F, "post")
    assert res.json["result"]["auto"] is True and res.json["result"]["deploy_after"] == 24
    dbsession.expire_all()
    assert (feed(dbsession, "qa").deploy_after, feed(dbsession, MAIN_FEED).auto) == (2, True)


@pytest.mark.parametrize("params,fragment", [
    ({}, "name is required"),
    ({"name": "bad name"}, "invalid feed name"),
    ({"name": "x" * 65}, "name is too long"),
    ({"name": "qa", "deploy_after": "8761"}, "between 0 (at once) and 8760"),
    ({"name": "qa", "deploy_after": "soon"}, "whole number of hours"),
    ({"name": "qa", "auto": "maybe"}, "auto must be true or false"),
    ({"name": "qa", "channel": "c" * 65}, "channel must be at most 64"),
])
def test_bad_feed_parameters_are_400_and_change_nothing(testapp, c, tokens, dbsession, params, fragment):
    admin, _ = tokens
    res = c.check(testapp.post(F, params, headers=admin, status=400), F, "post")
    assert res.json["error"] in ("bad-param", "missing-param") and fragment in res.json["message"]
    dbsession.expire_all()
    assert feed(dbsession, "qa") is None


def test_writes_need_an_admin(testapp, c, tokens, dbsession):
    _, ro = tokens
    assert c.check(testapp.post(F, {"name": "qa"}, headers=ro, status=403), F, "post").json["error"] == "forbidden"
    c.check(testapp.post(F, {"name": "qa"}, status=401), F, "post")
    c.check(testapp.delete("/admin/api/feeds/main", headers=ro, status=403), ONE, "delete")
    c.check(testapp.post(M, {"patchset": "x", "action": "enable"}, headers=ro, status=403), M, "post")
    dbsession.expire_all()
    assert feed(dbsession, "qa") is None


def test_delete_moves_keys_to_main_never_deletes_main_and_absent_is_ok(testapp, c, tokens, dbsession):
    admin, _ = tokens
    add_feed(dbsession, "beta")
    keys_service.create_key(dbsession, "k1", feed="beta", actor="test")
    keys_service.create_key(dbsession, "k2", feed="beta", actor="test")
    dbsession.commit()
    assert c.check(testapp.delete("/admin/api/feeds/beta", headers=admin), ONE, "delete").json == {"result": "ok"}
    dbsession.expire_all()
    assert feed(dbsession, "beta") is None
    assert {k.key: k.feed.name for k in dbsession.scalars(select(Key))} == {"k1": MAIN_FEED, "k2": MAIN_FEED}
    assert c.check(testapp.delete("/admin/api/feeds/beta", headers=admin), ONE, "delete").json == {"result": "ok"}
    res = c.check(testapp.delete("/admin/api/feeds/main", headers=admin, status=400), ONE, "delete")
    assert res.json["error"] == "cannot-delete-main"
    assert feed(dbsession, MAIN_FEED) is not None


def test_other_methods_are_405_with_allow(testapp, tokens):
    admin, _ = tokens
    res = testapp.put(F, headers=admin, status=405)
    assert res.json["error"] == "method-not-allowed" and res.headers["Allow"] == "GET, POST"
    assert testapp.get(M, headers=admin, status=405).headers["Allow"] == "POST"
    assert testapp.post("/admin/api/feeds/x", headers=admin, status=405).headers["Allow"] == "DELETE"


# --- patchsets -------------------------------------------------------------------------------------

def test_patchset_status_oldest_first_with_every_status(testapp, c, tokens, dbsession, imported):
    _, ro = tokens
    main = feed(dbsession, MAIN_FEED)
    deploy.enable_upto(dbsession, main, imported[3], actor="test")
    deploy.rollback_from(dbsession, main, imported[2], actor="test")  # 2 and 3 disabled
    deploy.block(dbsession, imported[1], actor="test")
    announced = Patchset(name="K20240601_01", product="kernel", released=imported[4].released.replace(month=6),
                         status="available")
    dbsession.add(announced)
    dbsession.commit()
    res = c.check(testapp.get(P, headers=ro), P, "get")
    assert res.json == {"result": [
        {"patchset": imported[0].name, "status": "enabled"},
        {"patchset": imported[1].name, "status": "blocked"},
        {"patchset": imported[2].name, "status": "disabled"},
        {"patchset": imported[3].name, "status": "disabled"},
        {"patchset": imported[4].name, "status": "undeployed"},
        {"patchset": "K20240601_01", "status": "not-downloaded"}]}
    assert c.check(testapp.get(P, {"feed": MAIN_FEED}, headers=ro), P, "get").json == res.json
    add_feed(dbsession, "beta")
    dbsession.commit()
    beta = c.check(testapp.get(P, {"feed": "beta", "product": "kernel"}, headers=ro), P, "get").json["result"]
    assert [r["status"] for r in beta] == ["undeployed", "blocked", "undeployed", "undeployed", "undeployed", "not-downloaded"]
    assert c.check(testapp.get(P, {"product": "none"}, headers=ro), P, "get").json == {"result": []}
    res = c.check(testapp.get(P, {"feed": "nope"}, headers=ro, status=400), P, "get")
    assert res.json["error"] == "unknown-feed"
    c.check(testapp.get(P, status=401), P, "get")


def test_enable_enables_everything_before_it_on_every_feed_given(testapp, c, tokens, dbsession, imported):
    admin, _ = tokens
    add_feed(dbsession, "a")
    add_feed(dbsession, "b")
    dbsession.commit()
    res = c.check(testapp.post(M + "?feed=a&feed=b", {"patchset": imported[2].name, "action": "enable"},
                               headers=admin), M, "post")
    assert res.json == {"result": "ok"}
    expected = [p.name for p in imported[:3]]
    assert enabled(dbsession, "a") == expected and enabled(dbsession, "b") == expected
    assert enabled(dbsession, MAIN_FEED) == []
    # a JSON list of feeds, and enable-upto (the same rule)
    c.check(testapp.post_json(M, {"patchset": imported[3].name, "feed": ["a"], "action": "enable-upto"},
                              headers=admin), M, "post")
    assert enabled(dbsession, "a") == [p.name for p in imported[:4]] and enabled(dbsession, "b") == expected
    # no feed: main
    c.check(testapp.post(M, {"patchset": imported[0].name, "action": "enable"}, headers=admin), M, "post")
    assert enabled(dbsession, MAIN_FEED) == [imported[0].name]


def test_disable_disables_everything_after_it(testapp, c, tokens, dbsession, imported):
    admin, _ = tokens
    add_feed(dbsession, "a")
    add_feed(dbsession, "b")
    dbsession.commit()
    c.check(testapp.post_json(M, {"patchset": imported[4].name, "feed": ["a", "b"], "action": "enable"},
                              headers=admin), M, "post")
    # feeds repeated in a form body
    c.check(testapp.post(M, [("patchset", imported[2].name), ("feed", "a"), ("feed", "b"), ("action", "disable")],
                         headers=admin), M, "post")
    assert enabled(dbsession, "a") == [p.name for p in imported[:2]] == enabled(dbsession, "b")
    assert states(dbsession, "a")[imported[4].name] == "disabled"
    c.check(testapp.post(M, {"patchset": imported[1].name, "feed": "a", "action": "undeploy-downto"},
                         headers=admin), M, "post")
    assert enabled(dbsession, "a") == [imported[0].name]


def test_a_blocked_patchset_cannot_be_enabled(testapp, c, tokens, dbsession, imported):
    admin, _ = tokens
    deploy.block(dbsession, imported[4], actor="test")
    dbsession.commit()
    res = c.check(testapp.post(M, {"patchset": imported[4].name, "action": "enable"}, headers=admin, status=400), M, "post")
    assert res.json["error"] == "patchset-blocked"
    assert enabled(dbsession, MAIN_FEED) == []
    # the one before it can be enabled, with everything before it
    c.check(testapp.post(M, {"patchset": imported[3].name, "action": "enable"}, headers=admin), M, "post")
    assert enabled(dbsession, MAIN_FEED) == [p.name for p in imported[:4]]


@pytest.mark.parametrize("params,status,slug", [
    ({"patchset": "K20991231_01", "action": "enable"}, 404, "unknown-patchset"),
    ({"patchset": "{first}", "action": "enable", "feed": ["a", "nope"]}, 400, "unknown-feed"),
    ({"patchset": "{first}", "action": "promote"}, 400, "bad-param"),
    ({"action": "enable"}, 400, "missing-param"),
    ({"patchset": "{first}"}, 400, "missing-param"),
    ({"patchset": "K20240601_01", "action": "enable"}, 400, "not-downloaded"),
])
def test_manage_refusals_change_nothing(testapp, c, tokens, dbsession, imported, params, status, slug):
    admin, _ = tokens
    add_feed(dbsession, "a")
    dbsession.add(Patchset(name="K20240601_01", product="kernel", released=imported[4].released.replace(month=6)))
    dbsession.commit()
    params = {k: (v.replace("{first}", imported[0].name) if isinstance(v, str) else v) for k, v in params.items()}
    res = c.check(testapp.post_json(M, params, headers=admin, status=status), M, "post")
    assert res.json["error"] == slug
    assert enabled(dbsession, "a") == [] and enabled(dbsession, MAIN_FEED) == []


def test_a_console_session_needs_the_csrf_token(testapp, make_user, dbsession, imported):
    make_user("alice", "Alice-Secret-1")
    login(testapp, "alice", "Alice-Secret-1")
    params = {"patchset": imported[0].name, "action": "enable"}
    assert testapp.post(M, params, status=400).json["error"] == "csrf-check-failed"
    assert testapp.post(M, params, headers={"X-CSRF-Token": csrf_token(testapp)}).json == {"result": "ok"}
    assert enabled(dbsession, MAIN_FEED) == [imported[0].name]


# --- the document -----------------------------------------------------------------------------------

def test_the_document_lists_the_plugins_operations_and_real_answers_cover_them(testapp, doc, tokens, dbsession,
                                                                               imported):
    """Every operation the plugin documents answers 200 and matches its schema (the core's own
    test_openapi.py leaves the plugin's operations to this test)."""
    assert plugin_operations(doc) == {(F, "get"), (F, "post"), (ONE, "delete"), (P, "get"), (M, "post")}
    assert {"feeds", "patchsets"} <= {t["name"] for t in doc["tags"]}
    assert doc["components"]["schemas"]["Feed"]["required"] == ["name", "auto", "deploy_after", "channel", "keys"]
    manage = doc["paths"][M]["post"]["description"]
    assert '"deploy this patch, and all before it"' in manage and '"roll back this patch, and all after it"' in manage
    admin, ro = tokens
    c = Checker(doc)
    c.check(testapp.get(F, headers=ro), F, "get")
    c.check(testapp.post(F, {"name": "x"}, headers=admin), F, "post")
    c.check(testapp.delete("/admin/api/feeds/x", headers=admin), ONE, "delete")
    c.check(testapp.get(P, headers=ro), P, "get")
    c.check(testapp.post(M, {"patchset": imported[0].name, "action": "enable"}, headers=admin), M, "post")
    assert {(path, method) for path, method, status in c.seen if status == "200"} == plugin_operations(doc)
