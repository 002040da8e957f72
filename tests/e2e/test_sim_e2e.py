"""eportal-sim against a real portal process: register 200 servers, drive 400 check-ins, and find
them in the database (the simulator is the agent of the end-to-end tests and of bench/)."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from eportal_core.cli_env import CliEnv
from eportal_core.models import Server, utcnow
from eportal_core.services.keys import create_key
from eportal_core.services.tags import format_tags, parse_tags
from eportal_core.testing import free_port
from eportal_sim.fleet import load_state

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


class Portal:
    def __init__(self, ini: Path, url: str, log: Path):
        self.ini, self.url, self.log = ini, url, log

    def servers(self) -> list[Server]:
        with CliEnv(str(self.ini)).dbsession() as db:
            rows = db.scalars(select(Server)).all()
            db.expunge_all()
            return rows


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    """``eportal init`` then ``eportal serve`` on a free port, with its data in a temp folder."""
    tmp = tmp_path_factory.mktemp("portal")
    ini = tmp / "eportal.ini"
    text = (REPO / "development.ini").read_text()
    text = re.sub(r"(?m)^eportal\.data_dir\s*=.*$", f"eportal.data_dir = {tmp / 'var'}", text)
    text = re.sub(r"(?m)^level = DEBUG$", "level = INFO", text)
    ini.write_text(text)
    subprocess.run([str(BIN / "eportal"), "--ini", str(ini), "init"], check=True, capture_output=True, timeout=120)
    port = free_port()
    log = tmp / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(BIN / "eportal"), "--ini", str(ini), "serve", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"eportal serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/admin/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"eportal serve did not answer /admin/health in 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Portal(ini, url, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
    assert code == 0, (summary, err, portal.log.read_text()[-3000:])
    assert summary["registered"] == 200 and summary["codes"] == {"0": 200} and summary["errors"] == 0
    fleet, _meta = load_state(state)
    assert len(fleet) == 200

    servers = {s.server_id: s for s in portal.servers()}
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
    deadline = time.monotonic() + 20
    while True:
        rows = portal.servers()
        fresh = [s for s in rows if s.checkin is not None and s.checkin >= mark]
        if len(fresh) == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert len(fresh) == 200, f"only {len(fresh)} of 200 servers checked in"
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
