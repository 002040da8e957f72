"""eportal-sim against a real portal process: register 200 servers, drive 400 check-ins, and find
them in the database (the simulator is the agent of the end-to-end tests and of bench/)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from eportal_core.cli.env import CliEnv
from eportal_core.models import Server, utcnow
from eportal_core.services.keys import create_key
from eportal_core.services.tags import format_tags, parse_tags
from eportal_core.testing.live import wait_until
from eportal_sim.fleet import SimServer, generate_fleet, load_state, save_state

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


def servers_of(live_server) -> list[Server]:
    with CliEnv(str(live_server.ini)).dbsession() as db:
        rows = db.scalars(select(Server)).all()
        db.expunge_all()
        return rows


@pytest.fixture
def portal(live_server, monkeypatch):
    """The harness's real ``eportal serve`` (SQLite); this process reads its database through its ini."""
    monkeypatch.delenv("EPORTAL_DATA_DIR", raising=False)  # it would override the ini's data dir
    return live_server


def sim(*args: str) -> tuple[int, dict, str]:
    done = subprocess.run([str(BIN / "eportal-sim"), *args, "--json"], capture_output=True, text=True, timeout=300)
    summary = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, summary, done.stderr


def test_register_and_check_in_a_fleet_of_200(portal, tmp_path):
    with CliEnv(str(portal.ini)).dbsession() as db:
        key = create_key(db, "simE2Ekey0000001", note="eportal-sim e2e").key
    state = tmp_path / "fleet.json"

    code, summary, err = sim("register", "--url", portal.url, "--key", key, "-n", "200", "--concurrency", "16",
                             "--state", str(state), "--seed", "21")
    assert code == 0, (summary, err, portal.log_tail())
    assert summary["registered"] == 200 and summary["codes"] == {"0": 200} and summary["errors"] == 0
    fleet, _meta = load_state(state)
    assert len(fleet) == 200

    servers = {s.server_id: s for s in servers_of(portal)}
    assert len(servers) == 200 and set(servers) == {f.server_id for f in fleet}
    assert len({s.hostname for s in servers.values()}) == 200
    for f in fleet:
        row = servers[f.server_id]
        assert (row.hostname, row.kernel_id, row.release, row.distro, row.machine) == (
            f.info.hostname, f.info.kernel_id, f.info.release, f.info.distro, f.info.machine)
        assert row.tags == (format_tags(parse_tags(f.info.tags)) if f.info.tags else None)
        assert row.patch_level == (None if f.info.patch_level == -1 else f.info.patch_level)

    mark = utcnow()
    time.sleep(0.05)
    code, summary, err = sim("checkin", "--url", portal.url, "--state", str(state), "--requests", "400",
                             "--concurrency", "16")
    assert code == 0, (summary, err)
    assert summary["status"] == {"200": 400} and summary["errors"] == 0 and summary["requests"] == 400

    # check-ins are coalesced and written about once a second: wait for them to land
    def all_fresh():
        rows = servers_of(portal)
        return rows if sum(s.checkin is not None and s.checkin >= mark for s in rows) == 200 else None

    rows = wait_until(all_fresh, "all 200 check-ins written", interval=0.3)
    # what the check-ins sent landed: uptime grows (or starts over after a simulated reboot), and
    # the patch level only rises (now and then a newer one is loaded)
    by_id = {f.server_id: f.info for f in fleet}
    for s in rows:
        assert s.uptime >= by_id[s.server_id].uptime or s.uptime < 600, s.hostname
        assert (s.patch_level or -1) >= by_id[s.server_id].patch_level, s.hostname
    assert any((s.patch_level or -1) > by_id[s.server_id].patch_level for s in rows)

    # the patch-request check-in: 404 is the answer while the portal has no patches
    code, summary, err = sim("checkin", "--url", portal.url, "--state", str(state), "--mode", "latest",
                             "--requests", "200")
    assert summary["errors"] == 0 and set(summary["status"]) <= {"200", "404"}, (summary, err)
    assert code == 0


def test_unknown_key_and_unknown_servers_are_reported(portal, tmp_path):
    code, summary, err = sim("register", "--url", portal.url, "--key", "no-such-key", "-n", "3",
                             "--state", str(tmp_path / "f.json"))
    assert code == 1 and summary["codes"] == {"2": 3} and summary["registered"] == 0
    assert "no server was registered" in err and not (tmp_path / "f.json").exists()

    state = tmp_path / "ghosts.json"
    save_state(state, [SimServer("Zghost" + "0" * 9 + str(i), info) for i, info in enumerate(generate_fleet(3, 1))],
               url=portal.url)
    code, summary, err = sim("checkin", "--state", str(state), "--requests", "6")
    assert code == 1 and summary["status"] == {"404": 6} and summary["failures"] == 6
    assert "does not know these servers" in err
