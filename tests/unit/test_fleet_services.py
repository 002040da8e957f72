"""Keys, registration, the server inventory and coalesced check-ins, on both databases."""
from datetime import timedelta

import pytest

from eportal_core.agent.checkins import CheckinBuffer
from eportal_core.models import Server, ServerTag, utcnow
from eportal_core.services import ServiceError, agents, keys
from eportal_core.services.servers import Age, ServerFilter, find_servers


def test_key_rules(dbsession):
    k = keys.create_key(dbsession, note="web farm", server_limit="2")
    assert len(k.key) == 16 and k.key.isalnum() and k.feed.name == "main"
    with pytest.raises(ServiceError, match="already exists"):
        keys.create_key(dbsession, k.key)
    with pytest.raises(ServiceError, match="between 0"):
        keys.create_key(dbsession, "neg", server_limit=-1)
    with pytest.raises(ServiceError, match="invalid key"):
        keys.create_key(dbsession, "bad key!")
    with pytest.raises(ServiceError, match="feed 'nope' does not exist"):
        keys.create_key(dbsession, "x1", feed="nope")


def test_register_respects_limit_and_codes(dbsession):
    k = keys.create_key(dbsession, "lim", server_limit=1)
    first = agents.register(dbsession, "lim", hostname="a", ip="10.0.0.1")
    assert first.code == agents.REGISTERED and agents.valid_server_id(first.server.server_id)
    assert agents.register(dbsession, "lim", hostname="b").code == agents.LIMIT_REACHED
    assert agents.register(dbsession, "nokey").code == agents.UNKNOWN_KEY
    k.enabled = False
    assert agents.register(dbsession, "lim").code == agents.KEY_DISABLED


def test_filters_and_records(dbsession):
    keys.create_key(dbsession, "kA")
    keys.create_key(dbsession, "kB")
    a = agents.register(dbsession, "kA", hostname="web1", ip="10.0.0.1",
                        info=agents.parse_info({"tags": "env:prod;ubuntu", "euname": "5.4.0-1"})).server
    b = agents.register(dbsession, "kB", hostname="db1", ip="10.0.0.2").server
    b.checkin = utcnow() - timedelta(days=5)
    dbsession.flush()
    def ids(**params):
        return {r["id"] for r in find_servers(dbsession, ServerFilter.from_params(params), limit=100).rows}
    assert ids(tag="env:prod") == {a.server_id}
    assert ids(tag="ubuntu") == {a.server_id}
    assert ids(tag="env") == {a.server_id}
    assert ids(tag="env:dev") == set()
    assert ids(hostname="web%") == {a.server_id}
    assert ids(key="kB") == {b.server_id}
    assert ids(checkin_age="2") == {b.server_id}
    assert ids(checkin_age="-2") == {a.server_id}
    assert ids(kernel="5.4.0-1") == {a.server_id}
    assert ids(is_updated="false") >= {a.server_id, b.server_id}
    rec = find_servers(dbsession, ServerFilter(server_id=a.server_id)).rows[0]
    assert rec["tags"] == "env:prod;ubuntu" and rec["key"] == "kA" and rec["feed"] == "main"
    assert rec["status"] == "unsupported"
    with pytest.raises(ServiceError):
        Age.parse("checkin_age", "abc")
    removed = keys.delete_key(dbsession, "kA")
    assert removed == 1
    assert dbsession.query(ServerTag).count() == 0


def test_checkin_buffer_coalesces(dbsession, dbconnection, engine):
    keys.create_key(dbsession, "kc")
    s = agents.register(dbsession, "kc", hostname="h").server
    dbsession.commit()
    buf = CheckinBuffer(engine)
    buf.bind, buf.autostart = dbconnection, False
    t1 = utcnow()
    buf.record(s.id, s.server_id, {"checkin": t1, "ip": "10.1.1.1", "patch_level": 3})
    buf.record(s.id, s.server_id, {"checkin": t1, "ip": "10.1.1.2", "patch_level": 3, "tags": "a:b"})
    assert buf.pending() == 1
    assert buf.flush() == 1
    dbsession.expire_all()
    row = dbsession.get(Server, s.id)
    assert row.ip == "10.1.1.2" and row.patch_level == 3 and row.updated is not None and row.tags == "a:b"
