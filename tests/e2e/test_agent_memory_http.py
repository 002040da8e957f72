"""Server ids kept in memory for check-ins (agent/memory.py) over real HTTP against a running
``eportal serve``: on PostgreSQL by default (``auto``), on SQLite when asked. A server removed
through the portal is unknown at its next check-in; one removed behind the portal's back (another
node, the CLI: here straight in the database) is answered from memory until the next check-in
flush finds its row gone, then unknown; servers already registered when the portal starts are
loaded in the background."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import delete

from eportal_core.cli.env import CliEnv
from eportal_core.models import Server
from eportal_core.testing.live import health, http_request, register_agent, wait_until

pytestmark = pytest.mark.e2e

BASE = "/admin/api/kcare"


def checkin(server, server_id: str) -> tuple[int, dict]:
    status, body = http_request(server.url + f"{BASE}/checkin", data={"server_id": server_id}, method="POST")
    return status, json.loads(body)


def in_memory(server) -> dict | None:
    return health(server)["checkins"]["in_memory"]


@pytest.mark.parametrize("backend, setting", [("postgresql", "auto"), ("sqlite", "true")])
def test_check_ins_from_memory_follow_removals(start_live_server, backend, setting):
    server = start_live_server(backend, **{"eportal.agent_directory.in_memory": setting,
                                           "eportal.checkins.flush_seconds": "1"})
    server.run_cli("kc.eportal", "key", "-a", "memkey")
    before = [register_agent(server, "memkey", f"early-{n}") for n in range(3)]
    # restarted: the three are loaded in the background at the first check-in
    server.restart()
    assert checkin(server, before[0]) == (200, {"result": "ok"})
    wait_until(lambda: (in_memory(server) or {}).get("loaded"), "servers loaded into memory")
    assert in_memory(server)["servers"] == 3
    # registered after loading: looked up once, then remembered
    late = register_agent(server, "memkey", "late")
    assert checkin(server, late) == (200, {"result": "ok"})
    assert in_memory(server)["servers"] == 4
    # removed through the portal: unknown at once
    status, body = http_request(server.url + f"{BASE}/unregister_server.json?server_id={late}")
    assert (status, body) == (200, b"true")
    assert checkin(server, late) == (404, {"error": "unknown-server"})
    # removed behind the portal's back: answered from memory until a flush finds the row gone
    env = CliEnv(str(server.ini))
    with env.dbsession() as db:
        db.execute(delete(Server).where(Server.server_id == before[1]))
    env.engine.dispose()
    assert checkin(server, before[1]) == (200, {"result": "ok"})
    wait_until(lambda: checkin(server, before[1])[0] == 404, "the removed server forgotten after a flush")
    assert checkin(server, before[1]) == (404, {"error": "unknown-server"})
    assert checkin(server, before[2]) == (200, {"result": "ok"})   # the others are still known
    assert in_memory(server)["servers"] == 1 + 1   # before[0] and before[2]
    assert health(server)["checkins"]["last_error"] is None
