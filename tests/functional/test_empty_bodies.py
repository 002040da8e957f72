"""A POST whose body is empty or the JSON literal ``null`` (axios: ``post(url, null, {params})``) has
no body: its parameters are read from the query string, by the REST API and the agent endpoints alike
(web/params.read_params)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from eportal_core.models import Key, Server
from eportal_core.services import agents
from eportal_core.services import keys as keys_service
from eportal_core.services.tokens import create_token

JSON = {"Content-Type": "application/json"}
NO_BODIES = [pytest.param(b"null", id="null"), pytest.param(b"", id="empty"), pytest.param(b" null\n", id="spaced-null")]


@pytest.fixture
def admin(make_user, dbsession):
    user, _ = make_user("nullbody", "Null-Body-Secret-1")
    token, _row = create_token(dbsession, user, "axios")
    return {"X-Api-Key": token}


@pytest.fixture
def key(dbsession):
    key = keys_service.create_key(dbsession, "axioskey", actor="test")
    dbsession.commit()
    return key


def _server(dbsession, server_id: str) -> Server:
    dbsession.expire_all()
    return dbsession.scalar(select(Server).where(Server.server_id == server_id))


@pytest.mark.parametrize("body", NO_BODIES)
def test_rest_register_reads_the_query_under_a_json_content_type(testapp, admin, key, dbsession, body):
    res = testapp.post("/admin/api/register?key=axioskey&hostname=axios.example.com", body,
                       headers={**admin, **JSON})
    server = _server(dbsession, res.json["server_id"])
    assert server.hostname == "axios.example.com"
    assert dbsession.get(Key, server.key_id).key == "axioskey"


@pytest.mark.parametrize("body", NO_BODIES)
def test_rest_set_tags_reads_the_query_under_a_json_content_type(testapp, admin, key, dbsession, body):
    sid = agents.register(dbsession, "axioskey", hostname="tagged", ip="192.0.2.5").server.server_id
    dbsession.commit()
    testapp.post(f"/admin/api/set_tags?server_id={sid}&tags=env:prod", body, headers={**admin, **JSON})
    assert _server(dbsession, sid).tags == "env:prod"


@pytest.mark.parametrize("body", NO_BODIES)
def test_agent_register_reads_the_query_under_a_json_content_type(testapp, key, dbsession, body):
    res = testapp.post("/admin/api/kcare/register_server.json?key=axioskey&hostname=agent.example.com", body,
                       headers=JSON)
    assert res.json["code"] == 0, res.json
    assert _server(dbsession, res.json["server_id"]).hostname == "agent.example.com"


@pytest.mark.parametrize("body", [b"[]", b"1", b'"text"', b"true"])
def test_json_that_is_neither_an_object_nor_null_is_still_refused(testapp, admin, body):
    agent = testapp.post("/admin/api/kcare/register_server.json?key=axioskey", body, headers=JSON, status=400)
    api = testapp.post("/admin/api/register?key=axioskey", body, headers={**admin, **JSON}, status=400)
    assert agent.json["error"] == api.json["error"] == "bad-json"
