"""The agent protocol over real HTTP against ``eportal serve`` (waitress), on SQLite and PostgreSQL:
the key's server limit under a burst of concurrent registrations, check-ins reaching the database
through the coalescing buffer, SIGTERM writing what is still pending, and a trusted proxy's headers."""
from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from eportal_core.cli.env import CliEnv
from eportal_core.models import Key, Server
from eportal_core.services.keys import create_key
from eportal_core.testing.live import http_request, wait_until

pytestmark = pytest.mark.e2e

BASE = "/admin/api/kcare"
KERNEL_ID = "89abcdef0123456789abcdef0123456789abcdef"
BACKENDS = ["sqlite", "postgresql"]


def http(method: str, url: str, data: dict | None = None, headers: dict | None = None, timeout: float = 30):
    """``(status, body bytes)``; HTTP errors are answers too."""
    return http_request(url, headers=headers, data=data, method=method, timeout=timeout)


class Db:
    """The server's database, read and written the way the CLI does (same ini, same engine setup)."""

    def __init__(self, server):
        self.env = CliEnv(str(server.ini))

    def add_key(self, name: str, limit: int) -> None:
        with self.env.dbsession() as db:
            create_key(db, name, server_limit=limit, actor="test")

    def servers(self, key: str) -> list[Server]:
        with self.env.dbsession() as db:
            key_id = select(Key.id).where(Key.key == key).scalar_subquery()
            return list(db.scalars(select(Server).where(Server.key_id == key_id)))

    def count(self, key: str) -> int:
        with self.env.dbsession() as db:
            key_id = select(Key.id).where(Key.key == key).scalar_subquery()
            return db.scalar(select(func.count()).select_from(Server).where(Server.key_id == key_id))

    def close(self) -> None:
        self.env.engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def live(request, start_live_server):
    """One server per backend for the module; 127.0.0.1 counts as a trusted proxy."""
    server = start_live_server(request.param, **{"eportal.trusted_proxies": "127.0.0.1"})
    db = Db(server)
    yield server, db
    db.close()


def register(server, key: str, hostname: str = "") -> dict:
    status, body = http("POST", server.url + f"{BASE}/register_server.json", {"key": key, "hostname": hostname})
    assert status == 200, body
    return json.loads(body)


def test_server_limit_holds_under_50_concurrent_registrations(live):
    server, db = live
    db.add_key("racekey", 10)
    barrier = threading.Barrier(50)

    def one(i):
        barrier.wait(timeout=30)   # all 50 requests leave together
        return register(server, "racekey", f"race-{i}")

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(one, range(50)))
    codes = Counter(a["code"] for a in answers)
    assert codes == {0: 10, 3: 40}, (codes, server.log_tail())
    ids = {a["server_id"] for a in answers if a["code"] == 0}
    assert len(ids) == 10
    assert all("server_id" not in a for a in answers if a["code"] == 3)
    rows = db.servers("racekey")
    assert len(rows) == 10 and {r.server_id for r in rows} == ids
    assert all(r.ip == "127.0.0.1" for r in rows)


def test_checkins_reach_the_database_within_seconds(live):
    server, db = live
    db.add_key("checkinkey", 0)
    sid = register(server, "checkinkey", "before")["server_id"]
    status, body = http("POST", server.url + f"{BASE}/checkin",
                        {"server_id": sid, "kernel_id": KERNEL_ID, "patch_level": "7", "tags": "env:e2e;rack:4",
                         "hostname": "after"},
                        headers={"X-Forwarded-For": "203.0.113.9"})   # 127.0.0.1 is a trusted proxy here
    assert (status, json.loads(body)) == (200, {"result": "ok"})
    # written by the next flush (every second); a loaded machine may take longer
    row = wait_until(lambda: next((r for r in db.servers("checkinkey") if r.patch_level == 7), None),
                     "the check-in written to the database")
    assert (row.kernel_id, row.hostname, row.tags, row.ip) == (KERNEL_ID, "after", "env:e2e;rack:4", "203.0.113.9")
    assert row.updated is not None
    status, body = http("GET", server.url + "/admin/health")
    info = json.loads(body)["checkins"]
    assert info["flushed"] >= 1 and info["last_error"] is None
    # unknown server, bad input: answered, nothing written
    status, body = http("POST", server.url + f"{BASE}/checkin", {"server_id": "Qqqqqqqqqqqqqqq1"})
    assert (status, json.loads(body)) == (404, {"error": "unknown-server"})
    status, body = http("POST", server.url + f"{BASE}/checkin", {"server_id": sid, "kernel_id": "x" * 41})
    assert status == 400 and json.loads(body)["error"] == "bad-param"


def test_unregister_and_scripts_over_http(live):
    server, db = live
    db.add_key("misckey", 0)
    sid = register(server, "misckey")["server_id"]
    status, body = http("POST", server.url + f"{BASE}/unregister_server.plain", {"server_id": sid})
    assert (status, body) == (200, b"1")
    status, body = http("GET", server.url + f"{BASE}/unregister_server.json?server_id={sid}")
    assert (status, body) == (200, b"false")
    # the script's URL: as the request came in, or as the trusted proxy says it came in
    status, body = http("GET", server.url + "/install-kernelcare")
    assert status == 200 and f"PATCH_SERVER={server.url}/\n".encode() in body
    status, body = http("GET", server.url + "/set-patch-server",
                        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "patches.example.org"})
    assert status == 200 and b"REGISTRATION_URL=https://patches.example.org/admin/api/kcare\n" in body


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_writes_pending_checkins(backend, start_live_server):
    # a long flush interval: whatever is in the database after the stop was written by the stop
    server = start_live_server(backend, **{"eportal.checkins.flush_seconds": "300"})
    db = Db(server)
    try:
        db.add_key("stopkey", 0)
        ids = [register(server, "stopkey", f"s{i}")["server_id"] for i in range(5)]
        for level, sid in enumerate(ids, start=1):
            status, _ = http("POST", server.url + f"{BASE}/checkin", {"server_id": sid, "patch_level": str(level)})
            assert status == 200
        assert all(r.patch_level is None for r in db.servers("stopkey"))   # still in memory
        health = json.loads(http("GET", server.url + "/admin/health")[1])
        assert health["checkins"]["pending"] == 5
        assert server.stop() == 0, server.log_tail()
        levels = {r.server_id: r.patch_level for r in db.servers("stopkey")}
        assert levels == {sid: level for level, sid in enumerate(ids, start=1)}
        assert "wrote 5 pending check-ins on shutdown" in (server.data_dir / "logs" / "eportal.log").read_text()
    finally:
        db.close()
