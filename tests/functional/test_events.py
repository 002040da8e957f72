"""The event hooks, driven through the app: a recording plugin registered in code
(``make_app_client(extra_plugins={"rec": Recorder()})``) sees each event exactly once, with the
right server, patchset and feed, when an agent registers, checks in and unregisters, when the
console or the REST API removes a server, and when a patchset is imported, enabled and disabled.
Requests run in the test's rolled-back transaction on SQLite and on PostgreSQL.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from eportal_core.models import Server
from eportal_core.plugins import hookimpl
from eportal_core.services import ServiceError, deploy, feeds
from eportal_core.services.tokens import create_token
from eportal_core.testing import csrf_token, login
from eportal_core.testing.patches import KERNEL_IDS

AGENT = "/admin/api/kcare"
KERNEL = KERNEL_IDS[0]
HOSTNAME = "db-replica-07.eu-central.prod.example.com"
AGENT_ADDR = "198.51.100.23"


class Recorder:
    """Every event as ``(hook, arguments)`` with rows reduced to what names them (they expire)."""

    def __init__(self):
        self.events: list[tuple[str, dict]] = []

    @hookimpl
    def eportal_server_registered(self, request, server):
        self.events.append(("server_registered", {"path": request.path, "server_id": server.server_id,
                                                  "hostname": server.hostname}))

    @hookimpl
    def eportal_server_checked_in(self, server_id, info):
        self.events.append(("server_checked_in", {"server_id": server_id, "info": dict(info)}))

    @hookimpl
    def eportal_server_unregistered(self, request, server):
        self.events.append(("server_unregistered", {"path": request.path, "server_id": server.server_id}))

    @hookimpl
    def eportal_patchset_downloaded(self, patchset):
        self.events.append(("patchset_downloaded", {"patchset": patchset.name}))

    @hookimpl
    def eportal_patchset_enabled(self, patchset, feed):
        self.events.append(("patchset_enabled", {"patchset": patchset.name, "feed": feed.name}))

    @hookimpl
    def eportal_patchset_disabled(self, patchset, feed):
        self.events.append(("patchset_disabled", {"patchset": patchset.name, "feed": feed.name}))

    def take(self) -> list[tuple[str, dict]]:
        """The events since the last call."""
        events, self.events = self.events, []
        return events


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def client(make_app_client, recorder):
    """The core alone (no installed plugin listens as well) plus the recorder."""
    return make_app_client(extra_plugins={"rec": recorder}, load_entrypoints=False)


def register(client, key: str) -> str:
    res = client.post(f"{AGENT}/register_server.json", {"key": key, "hostname": HOSTNAME},
                      extra_environ={"REMOTE_ADDR": AGENT_ADDR})
    assert res.json["code"] == 0, res.json
    return res.json["server_id"]


# --- the fleet -----------------------------------------------------------------------------------

def test_registration_fires_server_registered_once(client, recorder, make_key, dbsession):
    key = make_key()
    server_id = register(client, key.key)
    assert recorder.take() == [("server_registered", {"path": f"{AGENT}/register_server.json",
                                                      "server_id": server_id, "hostname": HOSTNAME})]
    assert dbsession.scalar(select(Server.key_id).where(Server.server_id == server_id)) == key.id
    # refused registrations (unknown key, disabled key) register nothing and fire nothing
    assert client.post(f"{AGENT}/register_server.json", {"key": "NoSuchKey0000000"}).json == {"code": 2}
    assert client.post(f"{AGENT}/register_server.json", {"key": make_key(enabled=False).key}).json == {"code": 1}
    assert recorder.take() == []


def test_checkin_fires_server_checked_in_once_per_flush(client, recorder, make_server):
    server = make_server(hostname=HOSTNAME)
    for level in ("2", "3"):  # two contacts within one flush interval are one write and one event
        res = client.post(f"{AGENT}/checkin", {"server_id": server.server_id, "kernel_id": KERNEL,
                                               "patch_level": level, "uptime": "86400"},
                          extra_environ={"REMOTE_ADDR": AGENT_ADDR})
        assert res.json == {"result": "ok"}
    assert recorder.take() == []  # nothing is written, so nothing is announced, before the flush
    assert client.app.registry["checkins"].flush() == 1
    [(event, args)] = recorder.take()
    assert (event, args["server_id"]) == ("server_checked_in", server.server_id)
    info = args["info"]
    assert (info["kernel_id"], info["patch_level"], info["uptime"], info["ip"]) == (KERNEL, 3, 86400, AGENT_ADDR)
    assert info["checkin"] is not None
    assert client.app.registry["checkins"].flush() == 0 and recorder.take() == []
    # an unknown server's check-in is refused and never announced
    client.post(f"{AGENT}/checkin", {"server_id": "Unknown123456789"}, status=404)
    assert client.app.registry["checkins"].flush() == 0 and recorder.take() == []


def test_agent_unregistration_fires_server_unregistered_once(client, recorder, make_key, dbsession):
    server_id = register(client, make_key().key)
    recorder.take()
    assert client.post(f"{AGENT}/unregister_server.json", {"server_id": server_id}).json is True
    assert recorder.take() == [("server_unregistered", {"path": f"{AGENT}/unregister_server.json",
                                                        "server_id": server_id})]
    assert dbsession.scalar(select(Server).where(Server.server_id == server_id)) is None
    # a second attempt removes nothing and announces nothing
    assert client.post(f"{AGENT}/unregister_server.json", {"server_id": server_id}).json is False
    assert recorder.take() == []


def test_console_removal_fires_server_unregistered_once(client, recorder, make_user, make_server):
    server, _bystander = make_server(), make_server()
    _, password = make_user("alice")
    login(client, "alice", password)
    path = f"/admin/kcserver/{server.server_id}/delete"
    client.post(path, {"csrf_token": csrf_token(client)}, status=303)
    assert recorder.take() == [("server_unregistered", {"path": path, "server_id": server.server_id})]


def test_api_removal_fires_server_unregistered_once(client, recorder, make_user, make_server, dbsession):
    server, _bystander = make_server(hostname=HOSTNAME), make_server()
    user, _ = make_user("alice")
    token, _ = create_token(dbsession, user, "events")
    dbsession.commit()
    res = client.post("/admin/api/delete_server", {"hostname": HOSTNAME}, headers={"X-Api-Key": token})
    assert res.json == {"result": 1}
    assert recorder.take() == [("server_unregistered", {"path": "/admin/api/delete_server",
                                                        "server_id": server.server_id})]


# --- patchsets -----------------------------------------------------------------------------------

def test_import_fires_patchset_downloaded_once(client, recorder, make_patchset):
    pm = client.app.registry.pm  # the app's plugins; the factory imports into the app's data dir
    patchset = make_patchset("K20240610_01", kernels={KERNEL: 1}, pm=pm)
    assert recorder.take() == [("patchset_downloaded", {"patchset": "K20240610_01"})]
    assert patchset.downloaded is not None
    assert (Path(client.settings["eportal.data_dir"]) / "patches" / "K20240610_01" / "manifest.json").is_file()
    # the same archive again is refused: nothing imported, nothing announced
    with pytest.raises(ServiceError, match="already imported"):
        make_patchset("K20240610_01", kernels={KERNEL: 1}, pm=pm)
    assert recorder.take() == []


def test_deploy_and_unroll_fire_enabled_and_disabled_once_per_patchset(client, recorder, make_patchset,
                                                                       make_feed, dbsession):
    pm = client.app.registry.pm
    older = make_patchset("K20240701_01", kernels={KERNEL: 1})
    newer = make_patchset("K20240801_01", kernels={KERNEL: 2})
    beta = make_feed("beta")
    main = feeds.main_feed(dbsession)

    # "deploy this one and all before it": each newly enabled patchset once, oldest first, on that feed
    assert deploy.enable_upto(dbsession, beta, newer, pm=pm, actor="test") == [older, newer]
    assert recorder.take() == [("patchset_enabled", {"patchset": "K20240701_01", "feed": "beta"}),
                               ("patchset_enabled", {"patchset": "K20240801_01", "feed": "beta"})]
    assert deploy.enable_upto(dbsession, beta, newer, pm=pm, actor="test") == []  # already on: no event
    deploy.enable_upto(dbsession, main, older, pm=pm, actor="test")
    assert recorder.take() == [("patchset_enabled", {"patchset": "K20240701_01", "feed": "main"})]

    # an unroll disables the patchset and everything after it, on that feed only
    assert deploy.rollback_from(dbsession, beta, older, pm=pm, actor="test") == [older, newer]
    assert recorder.take() == [("patchset_disabled", {"patchset": "K20240701_01", "feed": "beta"}),
                               ("patchset_disabled", {"patchset": "K20240801_01", "feed": "beta"})]
    assert deploy.rollback_from(dbsession, beta, older, pm=pm, actor="test") == []
    # blocked upstream: disabled on every feed it was on (main only, now)
    assert deploy.block(dbsession, older, pm=pm, actor="test") == [main]
    assert recorder.take() == [("patchset_disabled", {"patchset": "K20240701_01", "feed": "main"})]
