"""The agent lane (agent/lane.py): the check-in answered ahead of Pyramid's router, with the same
headers and the same "never a traceback" rule as every other answer; everything else still
reaches the router. Runs on SQLite and PostgreSQL."""
from __future__ import annotations

import logging
import re

import pytest

from eportal_core.agent import lane as agent_lane
from eportal_core.services import keys

BASE = "/admin/api/kcare"


def register(testapp, dbsession, key="lanekey"):
    keys.create_key(dbsession, key, actor="test")
    dbsession.commit()
    return testapp.post(f"{BASE}/register_server.json", {"key": key}).json["server_id"]


def test_the_app_puts_the_checkin_in_the_lane(app):
    assert isinstance(app, agent_lane.AgentLane)
    assert ("POST", f"{BASE}/checkin") in app.views
    assert app.registry is app.router.registry  # tests and serve.py reach the registry as before


def test_checkin_through_the_lane_skips_the_router(app, testapp, dbsession, monkeypatch):
    sid = register(testapp, dbsession)

    def no_router(environ, start_response):
        raise AssertionError("the check-in reached Pyramid's router")
    monkeypatch.setattr(app, "router", no_router)
    res = testapp.post(f"{BASE}/checkin", {"server_id": sid, "uptime": "5"})
    assert res.json == {"result": "ok"}
    assert testapp.post(f"{BASE}/checkin", {"server_id": "Nnnnnnnnnnnnnnn1"}, status=404).json == {
        "error": "unknown-server"}
    assert testapp.post(f"{BASE}/checkin", {"server_id": "bad"}, status=400).json["error"] == "bad-server-id"


@pytest.mark.parametrize("scheme,hsts", [("http", False), ("https", True)])
def test_lane_answers_carry_the_security_headers(app, testapp, dbsession, scheme, hsts):
    sid = register(testapp, dbsession)
    res = testapp.post(f"{BASE}/checkin", {"server_id": sid}, extra_environ={"wsgi.url_scheme": scheme})
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    assert res.headers["X-Frame-Options"] == "DENY"
    assert res.headers["Referrer-Policy"] == "same-origin"
    assert res.headers["Cache-Control"] == "no-store"
    assert res.content_type == "application/json"
    assert ("Strict-Transport-Security" in res.headers) is hsts
    # each header once: the lane adds only what the view did not set
    names = [name.lower() for name, _ in res.headerlist]
    assert len(names) == len(set(names)), res.headerlist


def test_an_unexpected_error_in_the_lane_is_an_incident_not_a_traceback(app, testapp, dbsession, monkeypatch, caplog):
    sid = register(testapp, dbsession)

    def broken(server_id):
        raise RuntimeError("database on fire")
    monkeypatch.setattr(app.registry["agent_directory"], "lookup", broken)
    with caplog.at_level(logging.ERROR):
        res = testapp.post(f"{BASE}/checkin", {"server_id": sid}, status=500)
    assert res.json["error"] == "internal-error"
    assert re.fullmatch(r"[0-9a-f]{8}", res.json["incident"])
    assert "database on fire" not in res.text and "Traceback" not in res.text
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    logged = [r for r in caplog.records if res.json["incident"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback goes to the log only
    assert "database on fire" in "".join(__import__("traceback").format_exception(*logged[0].exc_info))


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_still_reach_the_router(testapp, method):
    res = testapp.request(f"{BASE}/checkin", method=method, status=404)
    assert res.json == {"error": "not-found"}


def test_paths_near_the_lane_reach_the_router(testapp):
    assert testapp.post(f"{BASE}/checkin/", {"server_id": "x"}, status=404).json == {"error": "not-found"}
    assert testapp.post(f"{BASE}/CHECKIN", {"server_id": "x"}, status=404).json == {"error": "not-found"}


def test_a_plugin_can_put_a_view_in_the_lane(make_testapp):
    from pyramid.response import Response

    from eportal_core.plugins import hookimpl

    class LanePlugin:
        @hookimpl
        def eportal_includeme(self, config):
            agent_lane.add_lane_view(config, "GET", "/fast/hello",
                                     lambda request: Response(b"hi " + request.registry.settings["eportal.data_dir"][:1].encode(),
                                                              content_type="text/plain"))

    client = make_testapp(extra_plugins={"lane_plugin": LanePlugin()})
    res = client.get("/fast/hello")
    assert res.body == b"hi /" and res.headers["X-Frame-Options"] == "DENY"
    client.post("/fast/hello", status=404)  # only the registered method


def test_without_lane_views_the_router_is_the_app(app):
    router = app.router
    saved = router.registry.pop(agent_lane.LANE)
    try:
        assert agent_lane.wrap(router) is router
    finally:
        router.registry[agent_lane.LANE] = saved


def test_lane_keeps_the_client_address_rules(app, testapp, dbsession):
    """identify_agent reads the peer (or a trusted proxy's header) from the lane's request too."""
    sid = register(testapp, dbsession)
    checkins = app.registry["checkins"]
    checkins.flush()
    testapp.post(f"{BASE}/checkin", {"server_id": sid}, extra_environ={"REMOTE_ADDR": "198.51.100.7"},
                 headers={"X-Forwarded-For": "203.0.113.9"})
    pending = dict(checkins._pending)
    assert [v["ip"] for v in pending.values()] == ["198.51.100.7"]  # no trusted proxy configured
    checkins.flush()
