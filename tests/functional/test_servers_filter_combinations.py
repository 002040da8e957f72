"""Every combination of the server filters (key, feed, tag, hostname, ip, check-in age) finds exactly
the servers a plain reading of the filters finds, through the services, the REST API and the
console, on SQLite and PostgreSQL; and the tag rows carry their server's key on every write path.

At fleet scale the services take other query shapes (services.servers: a feed as its key ids, tag
counts from ``server_tags.key_id``, on SQLite the tag text of ``ix_servers_key_id_checkin_tags`` and
unary ``+`` on check-in ages); the expected answers here are worked out in Python from the fleet's
definition, not with the queries under test."""
from __future__ import annotations

import itertools
import re
from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from eportal_core.models import Key, Server, ServerTag, utcnow
from eportal_core.services import keys as keys_service
from eportal_core.services import server_queries
from eportal_core.services.servers import NO_KEY, ServerFilter, count_servers, find_servers
from eportal_core.services.tags import parse_tags
from eportal_core.testing import csrf_token
from eportal_core.web.ui import plural

from .fleet import add_feed, add_server, hostnames

HOUR, DAYS3, DAYS10, NEVER = timedelta(hours=1), timedelta(days=3), timedelta(days=10), None
#: key -> feed; "gone" is removed after its servers registered (their key_id becomes NULL); gamma has no servers
KEYS = {"k1": "main", "k2": "main", "k3": "beta", "k4": "gamma", "gone": "main"}
#: hostname, ip, key, tags as the agent sends them, last check-in (ago)
FLEET = [
    ("web-01", "10.0.1.1", "k1", "env:prod;ubuntu", HOUR),
    ("web-02", "10.0.1.2", "k1", "env:dev", DAYS3),
    ("web-10", "10.0.2.10", "k1", "env;role:db", DAYS10),
    ("web-11", "10.0.2.11", "k1", None, NEVER),
    ("web-12", "10.0.1.12", "k2", "env:prod;role:web;rack:a:b", HOUR),
    ("db-01", "10.0.1.21", "k2", "ubuntu", DAYS3),
    ("db-02", "192.168.0.2", "k2", "env:prod", DAYS10),
    ("web-13", "10.0.2.13", "k3", "env:prod;ubuntu", HOUR),
    ("db-03", "10.0.1.23", "k3", "env:", DAYS3),   # stored as the name alone
    ("web-14", "192.168.0.14", "k3", "role:db", NEVER),
    ("db-04", "10.0.2.24", "k3", None, HOUR),
    ("web-15", "10.0.1.15", "gone", "env:prod;ubuntu", HOUR),
    ("db-05", "10.0.2.25", "gone", "env:dev", DAYS10),
    ("web-16", "10.0.1.16", "gone", None, DAYS3),
]
FEED_CHOICES = (None, "main", "beta", "gamma")
KEY_CHOICES = (None, "k1", "k3", NO_KEY)
TAG_CHOICES = (None, "env", "env:prod", "env:", "role:db")
HOSTNAME_CHOICES = (None, "web-1%")
IP_CHOICES = (None, "10.0.1.%")
AGE_CHOICES = (None, "2", "-2")


@pytest.fixture
def fleet(dbsession):
    """FLEET registered like agents do (tags in the registration), then key "gone" deleted."""
    add_feed(dbsession, "beta")
    add_feed(dbsession, "gamma")
    for key, feed in KEYS.items():
        keys_service.create_key(dbsession, key, feed=feed, actor="test")
    made = {}
    for hostname, ip, key, tags, ago in FLEET:
        extra = {"tags": tags} if tags is not None else {}
        server = add_server(dbsession, key, hostname, ip, **extra)
        server.checkin = None if ago is None else utcnow() - ago
        made[hostname] = server
    dbsession.flush()
    # the key row goes, not its servers (keys.delete_key removes those): ON DELETE SET NULL, as a
    # server whose key is gone looks on an older install
    dbsession.execute(delete(Key).where(Key.key == "gone"))
    dbsession.commit()
    dbsession.expire_all()
    return made


def expected(params: dict) -> set[str]:
    """The hostnames ``params`` select, read off FLEET."""
    def like(pattern: str, text: str) -> bool:
        return re.fullmatch(re.escape(pattern).replace("%", ".*"), text) is not None

    found = set()
    for hostname, ip, key, tags, ago in FLEET:
        key = None if key == "gone" else key
        if "key" in params and key != (None if params["key"] == NO_KEY else params["key"]):
            continue
        if "feed" in params and (key is None or KEYS[key] != params["feed"]):
            continue
        if "hostname" in params and not like(params["hostname"], hostname):
            continue
        if "ip" in params and not like(params["ip"], ip):
            continue
        if "tag" in params:
            name, sep, value = params["tag"].partition(":")
            if not any(n == name and (not sep or v == value) for n, v in parse_tags(tags)):
                continue
        if "checkin_age" in params:
            recent = ago is not None and ago < timedelta(days=2)
            if recent != params["checkin_age"].startswith("-"):
                continue
        found.add(hostname)
    return found


def combinations(**fixed):
    names = ("feed", "key", "tag", "hostname", "ip", "checkin_age")
    choices = (FEED_CHOICES, KEY_CHOICES, TAG_CHOICES, HOSTNAME_CHOICES, IP_CHOICES, AGE_CHOICES)
    for values in itertools.product(*(([fixed[n]] if n in fixed else c) for n, c in zip(names, choices))):
        yield {n: v for n, v in zip(names, values) if v is not None}


# --- the services, every combination -----------------------------------------------------------

@pytest.mark.parametrize("common_rows", [server_queries.COMMON_ROWS, 1], ids=["default", "all-common"])
@pytest.mark.parametrize("feed", FEED_CHOICES)
def test_every_combination_counts_and_lists_what_it_should(dbsession, fleet, monkeypatch, feed, common_rows):
    # 1: every tag and feed counts as common, so SQLite takes its EXISTS and likely() forms too
    # (PostgreSQL's shapes do not depend on it: the same answers are checked twice there)
    monkeypatch.setattr(server_queries, "COMMON_ROWS", common_rows)
    for params in combinations(feed=feed):
        want = expected(params)
        # the count (count_servers) and a page of the list (ServerFilter.conditions), both shapes
        page = find_servers(dbsession, ServerFilter.from_params(params), sort="checkin", limit=100)
        assert (page.count, {r["hostname"] for r in page.rows}) == (len(want), want), params


def test_the_fleet_covers_what_the_combinations_are_about(fleet):
    """Guards the fixture: orphans with tags, a feed with no servers, name-only and name:value tags."""
    assert expected({"key": NO_KEY, "tag": "env:prod"}) == {"web-15"}
    assert expected({"feed": "gamma"}) == set()
    assert expected({"tag": "env:"}) == {"web-10", "db-03"}
    assert expected({"tag": "env"}) == {"web-01", "web-02", "web-10", "web-12", "db-02", "web-13", "db-03",
                                        "web-15", "db-05"}
    assert expected({"feed": "main", "tag": "env:prod", "checkin_age": "-2"}) == {"web-01", "web-12"}
    assert expected({"feed": "main", "checkin_age": "2"}) == {"web-02", "web-10", "web-11", "db-01", "db-02"}


# --- the REST API and the console ---------------------------------------------------------------

API_CASES = [
    {"feed": "main"}, {"feed": "beta"}, {"feed": "gamma"}, {"key": NO_KEY},
    {"feed": "main", "hostname": "web-1%"}, {"feed": "main", "hostname": "db-01"},
    {"feed": "main", "checkin_age": "2"}, {"feed": "main", "checkin_age": "-2"}, {"feed": "beta", "checkin_age": "2"},
    {"feed": "main", "tag": "env:prod"}, {"feed": "main", "tag": "env"}, {"feed": "beta", "tag": "env:"},
    {"feed": "main", "tag": "env:prod", "checkin_age": "-2"}, {"feed": "main", "tag": "env", "checkin_age": "2"},
    {"feed": "beta", "tag": "role:db", "checkin_age": "2"}, {"feed": "main", "tag": "rack:a:b"},
    {"key": "k1", "tag": "env"}, {"key": "k1", "tag": "env:prod", "checkin_age": "-2"}, {"key": "k3", "tag": "ubuntu"},
    {"key": NO_KEY, "tag": "env:prod"}, {"key": NO_KEY, "tag": "env", "checkin_age": "2"},
    {"key": NO_KEY, "checkin_age": "2"}, {"key": "k1", "feed": "beta", "tag": "env"},
    {"feed": "main", "tag": "ubuntu", "ip": "10.0.1.%"}, {"feed": "main", "ip": "10.0.2.%", "checkin_age": "2"},
    {"tag": "env", "hostname": "web-1%"}, {"tag": "env:prod", "checkin_age": "-2"}, {"tag": "nothing"},
    # the separator inside a filter matches no tag, although "env:prod;ubuntu" is a tag text as stored
    {"feed": "main", "tag": "env:prod;ubuntu", "checkin_age": "-2"}, {"key": "k1", "tag": "env:prod;ubuntu"},
    {"key": "k1", "hostname": "web-0%"}, {"key": "k3", "feed": "main"}, {"key": NO_KEY, "feed": "main"},
]


@pytest.fixture
def admin(make_user, dbsession):
    from eportal_core.services.tokens import create_token
    user, _ = make_user("tom", "Tom-Secret-123")
    token, _ = create_token(dbsession, user, "tests")
    dbsession.commit()
    return {"X-Api-Key": token}


@pytest.mark.parametrize("params", API_CASES, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()))
def test_api_counts_and_lists_what_it_should(testapp, admin, fleet, params):
    want = expected(params)
    counted = testapp.get("/admin/api/servers", {**params, "only_count": "1", "limit": "50"}, headers=admin).json
    assert counted["count"] == len(want) and counted["result"] == []
    listed = testapp.get("/admin/api/servers", {**params, "limit": "50"}, headers=admin).json
    assert listed["count"] == len(want)
    # oldest registration first, as FLEET registered
    assert [r["hostname"] for r in listed["result"]] == [row[0] for row in FLEET if row[0] in want]


@pytest.mark.parametrize("params", API_CASES[:12] + [{"key": "k1", "tag": "env:prod", "sort": "checkin", "dir": "desc"}],
                         ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()))
def test_console_counts_and_lists_what_it_should(testapp, as_admin, fleet, params):
    page = testapp.get("/admin/kcserver/", params)
    want = expected({k: v for k, v in params.items() if k not in ("sort", "dir")})
    assert set(hostnames(page)) == want
    assert page.html.select_one("p.page-sub").get_text(" ", strip=True).startswith(f"{plural(len(want), 'server')} ")


# --- the tag rows carry their server's key ------------------------------------------------------

def tag_keys(dbsession) -> list[tuple]:
    """(server's key_id, tag row's key_id) of every tag row: both are always the same."""
    dbsession.expire_all()
    return dbsession.execute(select(Server.key_id, ServerTag.key_id).join(Server, Server.id == ServerTag.server_pk)).all()


def test_tag_rows_carry_the_key_on_every_write_path(testapp, admin, as_admin, dbsession, fleet):
    assert tag_keys(dbsession) and all(a == b for a, b in tag_keys(dbsession))
    assert any(a is None for a, _ in tag_keys(dbsession))  # the orphans' rows
    # registration through the agent endpoint, tags included
    assert testapp.post("/admin/api/kcare/register_server.json", {"key": "k2", "tags": "team:a;x"}).json["code"] == 0
    # a check-in with new tags (coalesced, then flushed)
    testapp.post("/admin/api/kcare/checkin", {"server_id": fleet["web-13"].server_id, "tags": "env:stage;y"})
    testapp.app.registry["checkins"].flush()
    # the REST API and the console
    testapp.post("/admin/api/set_tags", {"server_id": fleet["db-04"].server_id, "tags": "z:1"}, headers=admin)
    testapp.post(f"/admin/kcserver/{fleet['web-11'].server_id}/tags", {"tags": "w", "csrf_token": csrf_token(testapp)})
    # the service, for a server whose key is gone
    from eportal_core.services.servers import set_server_tags
    set_server_tags(dbsession, dbsession.get(Server, fleet["web-16"].id), "orphan:yes", actor="test")
    dbsession.commit()
    assert all(a == b for a, b in tag_keys(dbsession))
    counted = {t: count_servers(dbsession, ServerFilter.from_params({"feed": "main", "tag": t}))
               for t in ("team:a", "env:stage", "w", "orphan", "z:1")}
    assert counted == {"team:a": 1, "env:stage": 0, "w": 1, "orphan": 0, "z:1": 0}
    assert count_servers(dbsession, ServerFilter.from_params({"key": NO_KEY, "tag": "orphan:yes"})) == 1
    assert count_servers(dbsession, ServerFilter.from_params({"feed": "beta", "tag": "env:stage"})) == 1
    assert count_servers(dbsession, ServerFilter.from_params({"key": "k3", "tag": "z:1"})) == 1
    # a key removed with its row only: the tag rows' key goes NULL with the servers' (ON DELETE SET NULL)
    dbsession.execute(delete(Key).where(Key.key == "k2"))
    dbsession.commit()
    rows = tag_keys(dbsession)
    assert all(a == b for a, b in rows) and sum(a is None for a, _ in rows) > 3
    assert count_servers(dbsession, ServerFilter.from_params({"key": NO_KEY, "tag": "team:a"})) == 1
    # keys.delete_key removes the servers, and their tag rows go with them
    keys_service.delete_key(dbsession, "k1", actor="test")
    dbsession.commit()
    assert all(a == b for a, b in tag_keys(dbsession))
    assert count_servers(dbsession, ServerFilter.from_params({"tag": "env:dev"})) == 1  # db-05, an orphan


@pytest.mark.parametrize("field", ["checkin_age", "registered_age", "updated_age"])
def test_an_age_alone_counts_older_and_never(dbsession, fleet, field):
    """An age on its own ("older than 2 days, or never") is counted as all servers minus those within
    2 days (count_servers); the answer is the plain filter's, servers with no such time included."""
    now = utcnow()
    servers = dbsession.scalars(select(Server).order_by(Server.id)).all()
    attr = {"checkin_age": "checkin", "registered_age": "registered", "updated_age": "updated"}[field]
    # spread the times: some recent, some old, some never (registered is never empty)
    for n, server in enumerate(servers):
        when = [now - HOUR, now - DAYS3, now - DAYS10, None][n % 4]
        setattr(server, attr, when if (when is not None or attr != "registered") else now - DAYS10)
    dbsession.flush()
    for text in ("2", "-2", "48h"):
        flt = ServerFilter.from_params({field: text})
        plain = dbsession.scalars(select(Server.id).where(*flt.conditions(dbsession))).all()
        want = [s.id for s in servers if (getattr(s, attr) is not None and getattr(s, attr) >= now - timedelta(days=2))
                == text.startswith("-")]
        assert sorted(plain) == sorted(want)
        assert count_servers(dbsession, flt) == len(want), (field, text)
