"""The admin REST API (protocol.md §6) through the real app, on SQLite and PostgreSQL: every
endpoint, every server filter, pages, bad parameters, the auth matrix and idempotency."""
from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from eportal_core.models import ApiToken, Feed, FeedPatchset, Key, LoginFailure, PatchLevel, Patchset, Server, utcnow
from eportal_core.services import agents
from eportal_core.services import keys as keys_service
from eportal_core.services.tokens import create_token
from eportal_core.testing import csrf_token, login

KERNEL = "a" * 40
OTHER_KERNEL = "b" * 40
RECORD_FIELDS = {"id", "ip", "hostname", "key", "feed", "registered", "checkin", "updated", "euname", "release",
                 "kernel_id", "patch_level", "patch_type", "tags", "uptime", "version", "virt", "kcare_version",
                 "distro", "distro_version", "machine", "processor", "status", "latest_level"}


def basic(username: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def assert_error(res, status: int, slug: str):
    assert res.status_int == status, res.text
    assert res.content_type == "application/json"
    assert res.json["error"] == slug, res.json
    return res.json


@pytest.fixture
def admin(make_user, dbsession):
    """Headers of an admin API token (cheap per request, unlike Basic auth's password hash)."""
    user, _ = make_user("alice", "Alice-Secret-1")
    token, _ = create_token(dbsession, user, "tests")
    dbsession.commit()
    return {"X-Api-Key": token}


@pytest.fixture
def readonly(make_user, dbsession):
    user, _ = make_user("rita", "Rita-Secret-1", readonly=True)
    token, _ = create_token(dbsession, user, "tests")
    dbsession.commit()
    return {"X-Api-Key": token}


@pytest.fixture
def add_server(make_server):
    """``add_server("k1", hostname=..., checkin_days=..., tags=..., **info)`` -> Server, committed: the
    harness's ``make_server`` with ages in days (``checkin_days=None``: never checked in)."""
    def factory(key: str = "k1", *, hostname: str = "host", ip: str = "10.0.0.1", registered_days: float = 0,
                checkin_days: float | None = 0, updated_days: float | None = None, **info) -> Server:
        return make_server(key, hostname=hostname, ip=ip, registered_ago=timedelta(days=registered_days),
                           checkin_ago=None if checkin_days is None else timedelta(days=checkin_days),
                           updated_ago=None if updated_days is None else timedelta(days=updated_days), **info)
    return factory


def enable_levels(dbsession, feed_name: str, kernel_id: str, level: int) -> None:
    """A patchset with ``level`` for ``kernel_id``, enabled on ``feed_name``."""
    feed = dbsession.scalar(select(Feed).where(Feed.name == feed_name))
    patchset = Patchset(name=f"K20240101_{level:02d}", released=utcnow() - timedelta(days=1))
    dbsession.add(patchset)
    dbsession.flush()
    dbsession.add(PatchLevel(patchset_id=patchset.id, kernel_id=kernel_id, level=level))
    dbsession.add(FeedPatchset(feed_id=feed.id, patchset_id=patchset.id, enabled=True))
    dbsession.commit()


@pytest.fixture
def fleet(dbsession, add_server, make_feed, make_key):
    """Three servers that each filter tells apart."""
    make_key("k2", feed=make_feed("beta"))
    enable_levels(dbsession, "main", KERNEL, 3)
    web1 = add_server("k1", hostname="web1.example.com", ip="10.0.0.1", tags="env:prod;ubuntu", registered_days=10,
                      checkin_days=1 / 24, updated_days=5, kernel_id=KERNEL, patch_level=3)
    web2 = add_server("k1", hostname="web2.example.com", ip="10.0.0.2", tags="env:dev", registered_days=3,
                      checkin_days=3, kernel_id=KERNEL, patch_level=1)
    db1 = add_server("k2", hostname="db1.example.org", ip="192.168.1.5", registered_days=40, checkin_days=40,
                     updated_days=30, kernel_id=OTHER_KERNEL, patch_level=2)
    return {"web1": web1.server_id, "web2": web2.server_id, "db1": db1.server_id}


def hostnames(res) -> set[str]:
    return {r["hostname"] for r in res.json["result"]}


# --- GET /admin/api/servers ---------------------------------------------------------------------

def test_servers_answer_the_section_4_record(testapp, admin, fleet):
    res = testapp.get("/admin/api/servers", headers=admin)
    assert res.content_type == "application/json"
    body = res.json
    assert set(body) == {"count", "limit", "offset", "result"}
    assert (body["count"], body["limit"], body["offset"]) == (3, 10, 0)
    by_host = {r["hostname"]: r for r in body["result"]}
    web1 = by_host["web1.example.com"]
    assert set(web1) == RECORD_FIELDS
    assert web1["id"] == fleet["web1"] and web1["ip"] == "10.0.0.1"
    assert web1["key"] == "k1" and web1["feed"] == "main"
    assert web1["tags"] == "env:prod;ubuntu"
    assert web1["kernel_id"] == KERNEL and web1["patch_level"] == 3 and web1["latest_level"] == 3
    assert web1["status"] == "uptodate"
    assert by_host["web2.example.com"]["status"] == "outofdate"
    assert by_host["db1.example.org"]["status"] == "unsupported" and by_host["db1.example.org"]["feed"] == "beta"
    assert by_host["web2.example.com"]["updated"] is None and by_host["db1.example.org"]["tags"] is None
    for stamp in (web1["registered"], web1["checkin"], web1["updated"]):
        date, time = stamp.split(" ")
        assert len(date) == 10 and len(time) == 15 and time[8] == "."  # YYYY-MM-DD HH:MM:SS.ffffff
    # oldest registration first (ascending server number), so pages stay put while servers register
    assert [r["id"] for r in body["result"]] == [fleet["web1"], fleet["web2"], fleet["db1"]]


@pytest.mark.parametrize("params,expected", [
    ({"hostname": "web1.example.com"}, {"web1"}),
    ({"hostname": "web%"}, {"web1", "web2"}),
    ({"hostname": "%.org"}, {"db1"}),
    ({"hostname": "web"}, set()),
    ({"ip": "10.0.0.%"}, {"web1", "web2"}),
    ({"ip": "192.168.1.5"}, {"db1"}),
    ({"feed": "main"}, {"web1", "web2"}),
    ({"feed": "beta"}, {"db1"}),
    ({"key": "k2"}, {"db1"}),
    ({"key": "k1"}, {"web1", "web2"}),
    ({"tag": "env"}, {"web1", "web2"}),
    ({"tag": "env:prod"}, {"web1"}),
    ({"tag": "ubuntu"}, {"web1"}),
    ({"tag": "env:staging"}, set()),
    ({"registered_age": "5"}, {"web1", "db1"}),
    ({"registered_age": "-5"}, {"web2"}),
    ({"registered_age": "100h"}, {"web1", "db1"}),
    ({"checkin_age": "2"}, {"web2", "db1"}),
    ({"checkin_age": "-2"}, {"web1"}),
    ({"checkin_age": "2h"}, {"web2", "db1"}),
    ({"checkin_age": "-2h"}, {"web1"}),
    ({"updated_age": "10"}, {"web2", "db1"}),  # never updated counts as old
    ({"updated_age": "-10"}, {"web1"}),
    ({"is_updated": "true"}, {"web1"}),
    ({"is_updated": "false"}, {"web2", "db1"}),
    ({"is_updated": "1"}, {"web1"}),
    ({"key": "k1", "tag": "env:dev"}, {"web2"}),
    ({"feed": "main", "checkin_age": "-2", "is_updated": "true"}, {"web1"}),
])
def test_every_filter(testapp, admin, fleet, params, expected):
    res = testapp.get("/admin/api/servers", params, headers=admin)
    names = {h.split(".")[0] for h in hostnames(res)}
    assert names == expected
    assert res.json["count"] == len(expected)


def test_servers_filter_without_key(testapp, admin, fleet, dbsession):
    dbsession.get(Server, dbsession.scalar(select(Server.id).where(Server.server_id == fleet["db1"]))).key_id = None
    dbsession.commit()
    res = testapp.get("/admin/api/servers", {"key": "(none)"}, headers=admin)
    assert hostnames(res) == {"db1.example.org"}
    assert res.json["result"][0]["key"] is None and res.json["result"][0]["feed"] is None


def test_pages_limit_offset_and_only_count(testapp, admin, add_server):
    ids = [add_server("k1", hostname=f"h{i:02d}").server_id for i in range(25)]
    res = testapp.get("/admin/api/servers", headers=admin).json
    assert (res["count"], res["limit"], res["offset"], len(res["result"])) == (25, 10, 0, 10)
    assert [r["id"] for r in res["result"]] == ids[:10]
    res = testapp.get("/admin/api/servers", {"limit": 5, "offset": 20}, headers=admin).json
    assert [r["id"] for r in res["result"]] == ids[20:25] and res["count"] == 25
    assert (res["limit"], res["offset"]) == (5, 20)
    res = testapp.get("/admin/api/servers", {"limit": 10, "offset": 30}, headers=admin).json
    assert res["result"] == [] and res["count"] == 25
    res = testapp.get("/admin/api/servers", {"limit": 10000}, headers=admin).json
    assert len(res["result"]) == 25
    res = testapp.get("/admin/api/servers", {"only_count": "true"}, headers=admin).json
    assert res == {"count": 25, "limit": 10, "offset": 0, "result": []}
    res = testapp.get("/admin/api/servers", {"only_count": "1", "hostname": "h0%"}, headers=admin).json
    assert res["count"] == 10 and res["result"] == []
    res = testapp.get("/admin/api/servers", {"only_count": "false", "limit": 2}, headers=admin).json
    assert len(res["result"]) == 2


@pytest.mark.parametrize("params,slug", [
    ({"limit": "0"}, "bad-param"),
    ({"limit": "abc"}, "bad-param"),
    ({"limit": "10001"}, "bad-param"),
    ({"limit": "-1"}, "bad-param"),
    ({"offset": "-1"}, "bad-param"),
    ({"offset": "x"}, "bad-param"),
    ({"checkin_age": "x"}, "bad-param"),
    ({"registered_age": "1d"}, "bad-param"),
    ({"updated_age": "--1"}, "bad-param"),
    ({"is_updated": "maybe"}, "bad-param"),
    ({"only_count": "maybe"}, "bad-param"),
    ({"key": "no-such-key"}, "unknown-key"),
    ({"feed": "no-such-feed"}, "unknown-feed"),
    ({"hostname": "x" * 300}, "bad-param"),
    ({"server_id": "x" * 17}, "bad-param"),
])
def test_bad_server_filters_are_400_json(testapp, admin, fleet, params, slug):
    body = assert_error(testapp.get("/admin/api/servers", params, headers=admin, status=400), 400, slug)
    assert body["message"]


# --- parameters: query, form, JSON alike -----------------------------------------------------------

def test_params_come_as_query_form_or_json(testapp, admin, add_server, dbsession):
    server = add_server("k1")
    sid = server.server_id
    testapp.post(f"/admin/api/set_tags?server_id={sid}&tags=from:query", headers=admin)
    assert testapp.get("/admin/api/servers", {"server_id": sid}, headers=admin).json["result"][0]["tags"] == "from:query"
    testapp.post("/admin/api/set_tags", {"server_id": sid, "tags": "from:form"}, headers=admin)
    assert testapp.get("/admin/api/servers", {"tag": "from:form"}, headers=admin).json["count"] == 1
    testapp.post_json("/admin/api/set_tags", {"server_id": sid, "tags": "from:json"}, headers=admin)
    assert testapp.get("/admin/api/servers", {"tag": "from:json"}, headers=admin).json["count"] == 1
    # the body wins over the query string
    testapp.post_json("/admin/api/set_tags?tags=query", {"server_id": sid, "tags": "body"}, headers=admin)
    assert testapp.get("/admin/api/servers", {"tag": "body"}, headers=admin).json["count"] == 1
    # JSON numbers and booleans are read as their text
    key = testapp.post_json("/admin/api/keys/", {"key": "numeric", "server_limit": 5}, headers=admin).json["result"]
    assert key["server_limit"] == 5
    res = testapp.delete("/admin/api/servers", json.dumps({"checkin_age": 3}), headers=admin,
                         content_type="application/json")
    assert res.json == {"result": 0}


@pytest.mark.parametrize("body,ctype,status,slug", [
    (b"[1, 2]", "application/json", 400, "bad-json"),
    (b'"text"', "application/json", 400, "bad-json"),
    (b"{not json", "application/json", 400, "bad-json"),
    (b'{"server_id": "\xff"}', "application/json", 400, "bad-encoding"),
    (b"server_id=%ff", "application/x-www-form-urlencoded", 400, "bad-encoding"),
    (b'{"server_id": ["a", "b"]}', "application/json", 400, "bad-param"),
    (b'{"server_id": {"a": 1}}', "application/json", 400, "bad-param"),
    (b"<xml/>", "application/xml", 415, "unsupported-media-type"),
])
def test_bad_bodies_are_refused(testapp, admin, body, ctype, status, slug):
    res = testapp.post("/admin/api/set_tags", body, headers={**admin, "Content-Type": ctype}, status=status)
    assert_error(res, status, slug)


def test_bad_encodings_elsewhere_are_400_json(testapp, admin):
    assert_error(testapp.get("/admin/api/servers?hostname=%ff", headers=admin, status=400), 400, "bad-encoding")
    assert_error(testapp.delete("/admin/api/keys/%ff", headers=admin, status=400), 400, "bad-encoding")


def test_a_huge_body_is_413(testapp, admin):
    res = testapp.post("/admin/api/set_tags", b"tags=" + b"x" * (1024 * 1024 + 10), headers=admin,
                       content_type="application/x-www-form-urlencoded", status=413)
    assert_error(res, 413, "too-large")


def test_other_methods_are_405_with_allow(testapp, admin):
    res = testapp.put("/admin/api/servers", headers=admin, status=405)
    assert_error(res, 405, "method-not-allowed")
    assert res.headers["Allow"] == "GET, DELETE"
    assert testapp.get("/admin/api/register", headers=admin, status=405).headers["Allow"] == "POST"
    assert testapp.post("/admin/api/users/", headers=admin, status=405).headers["Allow"] == "GET"


# --- register ------------------------------------------------------------------------------------

def test_register(testapp, admin, dbsession):
    keys_service.create_key(dbsession, "k1", actor="test")
    dbsession.commit()
    res = testapp.post("/admin/api/register", {"key": "k1", "hostname": "new.example.com"}, headers=admin)
    assert set(res.json) == {"server_id"} and agents.valid_server_id(res.json["server_id"])
    server = dbsession.scalar(select(Server).where(Server.server_id == res.json["server_id"]))
    assert server.hostname == "new.example.com"
    assert dbsession.get(Key, server.key_id).key == "k1"
    # by JSON, without a hostname
    res = testapp.post_json("/admin/api/register", {"key": "k1"}, headers=admin)
    assert agents.valid_server_id(res.json["server_id"])


def test_register_refusals(testapp, admin, dbsession):
    keys_service.create_key(dbsession, "one", server_limit=1, actor="test")
    keys_service.create_key(dbsession, "off", actor="test").enabled = False
    dbsession.commit()
    assert_error(testapp.post("/admin/api/register", {"key": "nope"}, headers=admin, status=400), 400, "invalid-key")
    assert_error(testapp.post("/admin/api/register", {"hostname": "x"}, headers=admin, status=400), 400, "invalid-key")
    assert_error(testapp.post("/admin/api/register", {"key": "off"}, headers=admin, status=400), 400, "invalid-key")
    testapp.post("/admin/api/register", {"key": "one"}, headers=admin, status=200)
    body = assert_error(testapp.post("/admin/api/register", {"key": "one"}, headers=admin, status=400), 400,
                        "key-limit-reached")
    assert "limit" in body["message"]
    assert_error(testapp.post("/admin/api/register", {"key": "one", "hostname": "a\x01b"}, headers=admin, status=400),
                 400, "bad-param")
    assert dbsession.scalar(select(func.count()).select_from(Server)) == 1


# --- delete_server, DELETE /servers ----------------------------------------------------------------

def test_delete_server_by_hostname_ip_or_id(testapp, admin, add_server, dbsession):
    a = add_server(hostname="twin", ip="10.1.1.1")
    add_server(hostname="twin", ip="10.1.1.2")
    c = add_server(hostname="solo", ip="10.1.1.3")
    add_server(hostname="keep", ip="10.1.1.4")
    assert testapp.post("/admin/api/delete_server", {"hostname": "twin"}, headers=admin).json == {"result": 2}
    assert testapp.post("/admin/api/delete_server", {"ip": "10.1.1.3"}, headers=admin).json == {"result": 1}
    assert testapp.post_json("/admin/api/delete_server", {"server_id": a.server_id}, headers=admin).json == {"result": 0}
    assert c.server_id not in {r["id"] for r in testapp.get("/admin/api/servers", headers=admin).json["result"]}
    # absent is not an error; wildcards are taken literally here
    assert testapp.post("/admin/api/delete_server", {"hostname": "%"}, headers=admin).json == {"result": 0}
    assert testapp.post("/admin/api/delete_server", {"server_id": "Nonexistent12345"}, headers=admin).json == {"result": 0}
    keep = testapp.get("/admin/api/servers", headers=admin).json["result"]
    assert [r["hostname"] for r in keep] == ["keep"]
    assert testapp.post("/admin/api/delete_server", {"server_id": keep[0]["id"]}, headers=admin).json == {"result": 1}


@pytest.mark.parametrize("params", [{}, {"hostname": "a", "ip": "10.0.0.1"}, {"hostname": ""},
                                    {"hostname": "a", "server_id": "b", "ip": "c"}])
def test_delete_server_wants_exactly_one(testapp, admin, add_server, params):
    add_server(hostname="a")
    assert_error(testapp.post("/admin/api/delete_server", params, headers=admin, status=400), 400, "bad-param")
    assert testapp.get("/admin/api/servers", headers=admin).json["count"] == 1


def test_delete_servers_by_checkin_age(testapp, admin, add_server):
    add_server(hostname="fresh", checkin_days=0.5)
    add_server(hostname="old", checkin_days=8)
    add_server(hostname="older", checkin_days=30)
    add_server(hostname="never", checkin_days=None)
    assert testapp.delete("/admin/api/servers?checkin_age=40", headers=admin).json == {"result": 1}  # never checked in
    assert testapp.delete("/admin/api/servers?checkin_age=7", headers=admin).json == {"result": 2}
    assert testapp.delete("/admin/api/servers?checkin_age=7", headers=admin).json == {"result": 0}
    assert hostnames(testapp.get("/admin/api/servers", headers=admin)) == {"fresh"}


@pytest.mark.parametrize("query", ["", "?checkin_age=", "?checkin_age=0", "?checkin_age=-1", "?checkin_age=x",
                                   "?checkin_age=1h", "?checkin_age=1.5", "?checkin_age=99999999999"])
def test_delete_servers_needs_a_positive_whole_age(testapp, admin, add_server, query):
    add_server(hostname="old", checkin_days=30)
    res = testapp.delete("/admin/api/servers" + query, headers=admin, status=400)
    assert_error(res, 400, "missing-param" if query in ("", "?checkin_age=") else "bad-param")
    assert testapp.get("/admin/api/servers", headers=admin).json["count"] == 1


# --- keys ----------------------------------------------------------------------------------------

def test_keys_list_create_update_delete(testapp, admin, add_server, dbsession):
    dbsession.add(Feed(name="beta"))
    dbsession.commit()
    add_server("k1", hostname="a")
    add_server("k1", hostname="b")
    assert testapp.get("/admin/api/keys/", headers=admin).json == {
        "result": [{"key": "k1", "note": "", "server_limit": 0, "feed": "main", "servers": 2}]}
    created = testapp.post("/admin/api/keys/", {"key": "web", "note": "web farm", "server_limit": "10", "feed": "beta"},
                           headers=admin).json
    assert created == {"result": {"key": "web", "note": "web farm", "server_limit": 10, "feed": "beta", "servers": 0}}
    # posting it again updates it (idempotent); left-out parameters keep their values
    again = testapp.post("/admin/api/keys/", {"key": "web", "note": "web farm 2"}, headers=admin).json
    assert again == {"result": {"key": "web", "note": "web farm 2", "server_limit": 10, "feed": "beta", "servers": 0}}
    same = testapp.post_json("/admin/api/keys/", {"key": "web", "note": "web farm 2", "server_limit": 10, "feed": "beta"},
                             headers=admin).json
    assert same == again
    updated = testapp.post("/admin/api/keys/", {"key": "k1", "feed": "beta", "server_limit": "0"}, headers=admin).json
    assert updated["result"] == {"key": "k1", "note": "", "server_limit": 0, "feed": "beta", "servers": 2}
    listed = testapp.get("/admin/api/keys/", headers=admin).json["result"]
    assert [k["key"] for k in listed] == ["k1", "web"]
    # a random key when none is named
    random = testapp.post("/admin/api/keys/", {"note": "generated"}, headers=admin).json["result"]
    assert len(random["key"]) == 16 and random["key"].isalnum() and random["feed"] == "main"
    # deleting removes the key and its servers; deleting it again is not an error
    assert testapp.delete("/admin/api/keys/k1", headers=admin).json == {"result": "ok"}
    assert testapp.delete("/admin/api/keys/k1", headers=admin).json == {"result": "ok"}
    assert testapp.delete("/admin/api/keys/never-was", headers=admin).json == {"result": "ok"}
    assert [k["key"] for k in testapp.get("/admin/api/keys/", headers=admin).json["result"]] == ["web", random["key"]]
    assert testapp.get("/admin/api/servers", headers=admin).json["count"] == 0


@pytest.mark.parametrize("params,slug", [
    ({"key": "bad key!"}, "bad-param"),
    ({"key": "x" * 65}, "bad-param"),
    ({"key": "ok", "server_limit": "-1"}, "bad-param"),
    ({"key": "ok", "server_limit": "lots"}, "bad-param"),
    ({"key": "ok", "feed": "nope"}, "unknown-feed"),
    ({"key": "ok", "note": "n" * 1001}, "bad-param"),
])
def test_bad_keys_are_refused(testapp, admin, dbsession, params, slug):
    assert_error(testapp.post("/admin/api/keys/", params, headers=admin, status=400), 400, slug)
    assert dbsession.scalar(select(func.count()).select_from(Key)) == 0


# --- users, tags ----------------------------------------------------------------------------------

def test_users(testapp, admin, readonly):
    result = testapp.get("/admin/api/users/", headers=admin).json["result"]
    assert [(u["username"], u["readonly"]) for u in result] == [("alice", False), ("rita", True)]
    assert set(result[0]) == {"id", "username", "description", "readonly"}
    assert all(isinstance(u["id"], int) for u in result)


def test_set_tags(testapp, admin, add_server):
    sid = add_server(tags="old").server_id
    assert testapp.post("/admin/api/set_tags", {"server_id": sid, "tags": "env:prod; ubuntu ;"}, headers=admin).json \
        == {"result": "ok"}
    record = testapp.get("/admin/api/servers", {"server_id": sid}, headers=admin).json["result"][0]
    assert record["tags"] == "env:prod;ubuntu"
    assert testapp.get("/admin/api/servers", {"tag": "old"}, headers=admin).json["count"] == 0
    assert testapp.get("/admin/api/servers", {"tag": "env:prod"}, headers=admin).json["count"] == 1
    # "" removes them all
    testapp.post("/admin/api/set_tags", {"server_id": sid, "tags": ""}, headers=admin)
    assert testapp.get("/admin/api/servers", {"server_id": sid}, headers=admin).json["result"][0]["tags"] is None
    assert testapp.get("/admin/api/servers", {"tag": "env"}, headers=admin).json["count"] == 0


def test_set_tags_refusals(testapp, admin, add_server):
    sid = add_server(tags="keep").server_id
    assert_error(testapp.post("/admin/api/set_tags", {"server_id": "Nonexistent12345", "tags": "a"}, headers=admin,
                              status=404), 404, "unknown-server")
    assert_error(testapp.post("/admin/api/set_tags", {"server_id": "bad", "tags": "a"}, headers=admin, status=404),
                 404, "unknown-server")
    assert_error(testapp.post("/admin/api/set_tags", {"tags": "a"}, headers=admin, status=400), 400, "missing-param")
    assert_error(testapp.post("/admin/api/set_tags", {"server_id": sid}, headers=admin, status=400), 400, "missing-param")
    assert_error(testapp.post("/admin/api/set_tags", {"server_id": sid, "tags": ":novalue"}, headers=admin, status=400),
                 400, "bad-param")
    assert testapp.get("/admin/api/servers", {"server_id": sid}, headers=admin).json["result"][0]["tags"] == "keep"


# --- who may call ---------------------------------------------------------------------------------

READS = [("get", "/admin/api/servers"), ("get", "/admin/api/keys/"), ("get", "/admin/api/users/")]
WRITES = [("post", "/admin/api/register", {"key": "k1"}), ("post", "/admin/api/delete_server", {"hostname": "x"}),
          ("post", "/admin/api/set_tags", {"server_id": "Nonexistent12345", "tags": ""}),
          ("post", "/admin/api/keys/", {"key": "made"}), ("delete", "/admin/api/keys/k1", None),
          ("delete", "/admin/api/servers?checkin_age=1", None)]


def _call(client, method, path, params=None, headers=None, status="*"):
    if method == "get":
        return client.get(path, headers=headers or {}, status=status)
    return getattr(client, method)(path, params or "", headers=headers or {}, status=status)


def test_anonymous_is_401_everywhere(testapp, add_server):
    add_server("k1")
    for method, path in READS:
        res = _call(testapp, method, path)
        assert_error(res, 401, "unauthorized")
        assert res.headers["WWW-Authenticate"] == 'Basic realm="eportal"'
    for method, path, params in WRITES:
        assert_error(_call(testapp, method, path, params), 401, "unauthorized")
    assert testapp.get("/admin/api/keys/", headers={"X-Api-Key": "ept_not-a-token"}, status=401)


def test_basic_auth_admin_reads_and_writes(testapp, make_user, add_server):
    _, password = make_user("alice", "Alice-Secret-1")
    add_server("k1", hostname="x")
    headers = basic("alice", password)
    for method, path in READS:
        assert _call(testapp, method, path, headers=headers).status_int == 200
    for method, path, params in WRITES:
        res = _call(testapp, method, path, params, headers=headers)
        assert res.status_int in (200, 404), (path, res.text)  # set_tags on an unknown server: 404
    assert _call(testapp, "post", "/admin/api/keys/", {"key": "made"}, headers=headers).json["result"]["key"] == "made"


def test_basic_auth_readonly_reads_but_cannot_write(testapp, make_user, add_server, snapshot):
    _, password = make_user("rita", "Rita-Secret-1", readonly=True)
    add_server("k1")
    headers = basic("rita", password)
    for method, path in READS:
        assert _call(testapp, method, path, headers=headers).status_int == 200
    before = snapshot()
    for method, path, params in WRITES:
        assert_error(_call(testapp, method, path, params, headers=headers), 403, "forbidden")
    assert snapshot() == before


def test_wrong_basic_password_is_401_and_counts_toward_the_throttle(testapp, make_user, dbsession, app_settings):
    _, password = make_user("alice", "Alice-Secret-1")
    limit = app_settings[0]["eportal.login.max_failures_per_user"]
    for attempt in range(limit):
        assert_error(testapp.get("/admin/api/servers", headers=basic("alice", "wrong-password"), status=401),
                     401, "unauthorized")
        dbsession.expire_all()
        assert dbsession.scalar(select(func.count()).select_from(LoginFailure).where(
            LoginFailure.username == "alice")) == attempt + 1
    # throttled now: even the right password is refused over the API (and on the login page)
    assert_error(testapp.get("/admin/api/servers", headers=basic("alice", password), status=401), 401, "unauthorized")
    assert "Too many failed logins" in login(testapp, "alice", password, status=401).text


def test_right_basic_password_clears_earlier_failures(testapp, make_user, dbsession):
    _, password = make_user("alice", "Alice-Secret-1")
    testapp.get("/admin/api/servers", headers=basic("alice", "wrong-password"), status=401)
    testapp.get("/admin/api/servers", headers=basic("alice", password), status=200)
    dbsession.expire_all()
    assert dbsession.scalar(select(func.count()).select_from(LoginFailure)) == 0


def test_tokens(testapp, make_user, dbsession, add_server):
    admin_user, _ = make_user("alice", "Alice-Secret-1")
    ro_user, _ = make_user("rita", "Rita-Secret-1", readonly=True)
    admin_token, admin_row = create_token(dbsession, admin_user, "admin script")
    ro_token, _ = create_token(dbsession, ro_user, "ro script")
    dbsession.commit()
    add_server("k1")
    assert admin_row.last_used is None
    # admin token: reads and writes
    assert testapp.get("/admin/api/servers", headers={"X-Api-Key": admin_token}).json["count"] == 1
    assert testapp.post("/admin/api/keys/", {"key": "t1"}, headers={"X-Api-Key": admin_token}).status_int == 200
    dbsession.expire_all()
    assert dbsession.get(ApiToken, admin_row.id).last_used is not None
    # readonly token: reads, no writes
    assert testapp.get("/admin/api/keys/", headers={"X-Api-Key": ro_token}).status_int == 200
    for method, path, params in WRITES:
        assert_error(_call(testapp, method, path, params, headers={"X-Api-Key": ro_token}), 403, "forbidden")
    # a token does not open the console
    res = testapp.get("/admin/", headers={"X-Api-Key": admin_token}, status=302)
    assert "/admin/login" in res.headers["Location"]
    # a wrong token is not helped by good Basic credentials in the same request
    _, password = "alice", "Alice-Secret-1"
    assert_error(testapp.get("/admin/api/servers", headers={"X-Api-Key": "ept_wrong", **basic("alice", password)},
                             status=401), 401, "unauthorized")


def test_expired_and_revoked_tokens_are_401(testapp, make_user, dbsession):
    user, _ = make_user("alice", "Alice-Secret-1")
    expired, row = create_token(dbsession, user, "old", expires_days=1)
    revoked, gone = create_token(dbsession, user, "gone")
    dbsession.commit()
    assert testapp.get("/admin/api/users/", headers={"X-Api-Key": expired}).status_int == 200
    row.expires = utcnow() - timedelta(seconds=1)
    dbsession.delete(gone)
    dbsession.commit()
    assert_error(testapp.get("/admin/api/users/", headers={"X-Api-Key": expired}, status=401), 401, "unauthorized")
    assert_error(testapp.get("/admin/api/users/", headers={"X-Api-Key": revoked}, status=401), 401, "unauthorized")


def test_a_token_has_the_role_of_its_owner_now(testapp, make_user, dbsession):
    make_user("root", "Root-Secret-1")
    user, _ = make_user("bob", "Bob-Secret-123")
    token, _ = create_token(dbsession, user, "script")
    dbsession.commit()
    assert testapp.post("/admin/api/keys/", {"key": "a1"}, headers={"X-Api-Key": token}).status_int == 200
    user.readonly = True
    dbsession.commit()
    assert_error(testapp.post("/admin/api/keys/", {"key": "a2"}, headers={"X-Api-Key": token}, status=403), 403,
                 "forbidden")


def test_console_session_callers_need_the_csrf_token_to_write(testapp, make_user):
    make_user("alice", "Alice-Secret-1")
    login(testapp, "alice", "Alice-Secret-1")
    assert testapp.get("/admin/api/keys/").json == {"result": []}
    assert_error(testapp.post("/admin/api/keys/", {"key": "x1"}, status=400), 400, "csrf-check-failed")
    assert_error(testapp.post_json("/admin/api/keys/", {"key": "x1"}, headers={"X-CSRF-Token": "forged"}, status=400),
                 400, "csrf-check-failed")
    token = csrf_token(testapp)
    assert testapp.post_json("/admin/api/keys/", {"key": "x1"}, headers={"X-CSRF-Token": token}).json["result"]["key"] == "x1"
    assert testapp.delete("/admin/api/keys/x1", headers={"X-CSRF-Token": token}).json == {"result": "ok"}


def test_the_token_header_name_is_a_setting(make_testapp, make_user, dbsession):
    user, _ = make_user("alice", "Alice-Secret-1")
    token, _ = create_token(dbsession, user, "script")
    dbsession.commit()
    client = make_testapp(**{"eportal.api_key_header": "X-Eportal-Token"})
    assert client.get("/admin/api/users/", headers={"X-Eportal-Token": token}).json["result"][0]["username"] == "alice"
    assert_error(client.get("/admin/api/users/", headers={"X-Api-Key": token}, status=401), 401, "unauthorized")
    doc = client.get("/admin/api/openapi.json").json
    assert doc["components"]["securitySchemes"]["apiKey"]["name"] == "X-Eportal-Token"


def test_writes_are_audited(testapp, admin, add_server, dbsession):
    from eportal_core.models import AuditEvent
    sid = add_server("k1", hostname="gone").server_id
    testapp.post("/admin/api/set_tags", {"server_id": sid, "tags": "a"}, headers=admin)
    testapp.post("/admin/api/delete_server", {"server_id": sid}, headers=admin)
    dbsession.expire_all()
    events = {(e.actor, e.action) for e in dbsession.scalars(select(AuditEvent))}
    assert {("alice (api)", "server.tags"), ("alice (api)", "server.delete")} <= events
    details = " ".join(e.target for e in dbsession.scalars(select(AuditEvent)))
    assert sid not in details  # server_ids are never written out in full
