"""Issue 3 end to end, every part real: a waitress portal, the REST API over HTTP with a console
user, 200 simulated agents registering, checking in and tagging themselves, and the console in
Chromium showing exactly what the API reports."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from eportal_core.testing.browser import console_errors

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
RECORD_FIELDS = {"id", "ip", "hostname", "key", "feed", "registered", "checkin", "updated", "euname", "release",
                 "kernel_id", "patch_level", "patch_type", "tags", "uptime", "version", "virt", "kcare_version",
                 "distro", "distro_version", "machine", "processor"}


def api(server, method: str, path: str, params: dict | None = None):
    data = None
    url = server.url + path
    if params and method == "GET":
        url += "?" + urllib.parse.urlencode(params)
    elif params:
        data = urllib.parse.urlencode(params).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", "Basic " + base64.b64encode(f"admin:{server.admin_password}".encode()).decode())
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, json.loads(resp.read())


def sim(*args: str) -> dict:
    done = subprocess.run([str(BIN / "eportal-sim"), *args, "--json", "--no-progress"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_simulated_fleet_through_api_and_console(live_server, page, tmp_path):
    # a key made through the REST API, as an integration script would
    status, body = api(live_server, "POST", "/admin/api/keys/", {"key": "fleetE2E", "note": "e2e fleet", "server_limit": "0"})
    assert status == 200 and body["result"]["key"] == "fleetE2E"

    state = tmp_path / "fleet.json"
    reg = sim("register", "--url", live_server.url, "--key", "fleetE2E", "-n", "200", "--state", str(state),
              "--seed", "7", "--tags-ratio", "0.5")
    assert reg["registered"] == 200 and reg["errors"] == 0
    checkins = sim("checkin", "--state", str(state), "--requests", "400", "--concurrency", "8")
    assert checkins["status"] == {"200": 400}

    fleet = json.loads(state.read_text())["servers"]
    tagged = [s for s in fleet if s["info"].get("tags")]
    assert 50 < len(tagged) < 150  # the simulator tags about half of them

    # every server, with every documented field, through the REST API
    status, body = api(live_server, "GET", "/admin/api/servers", {"key": "fleetE2E", "limit": "500"})
    assert status == 200 and body["count"] == 200 and len(body["result"]) == 200
    for record in body["result"]:
        assert RECORD_FIELDS <= set(record), RECORD_FIELDS - set(record)
        assert record["key"] == "fleetE2E" and record["feed"] == "main" and record["ip"] == "127.0.0.1"
        assert len(record["kernel_id"]) == 40 and record["checkin"] >= record["registered"]
    by_id = {r["id"]: r for r in body["result"]}
    assert set(by_id) == {s["server_id"] for s in fleet}
    tag = "env:prod"
    status, prod = api(live_server, "GET", "/admin/api/servers", {"tag": tag, "only_count": "1"})
    expected_prod = sum(1 for s in fleet if tag in (s["info"].get("tags") or "").split(";"))
    assert prod["count"] == expected_prod > 0

    # the console shows the same fleet
    page.goto(live_server.url + "/admin/login")
    page.fill("#login", "admin")
    page.fill("#password", live_server.admin_password)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/admin/")
    inventory = page.locator("table", has_text="fleetE2E").first
    assert "200" in inventory.locator("tr", has_text="fleetE2E").inner_text()
    page.click("a:text-is('fleetE2E')")
    page.wait_for_load_state()
    assert "of 200" in page.content()
    page.screenshot(path=str(tmp_path / "servers-of-key.png"), full_page=True)
    page.goto(live_server.url + "/admin/kcserver/?" + urllib.parse.urlencode({"tag": tag}))
    assert f"of {expected_prod}" in page.content() or (expected_prod <= 50 and page.locator("tbody tr").count() == expected_prod)
    first = body["result"][0]
    page.goto(live_server.url + f"/admin/kcserver/{first['id']}")
    text = page.inner_text("main")
    for field in ("hostname", "euname", "kernel_id", "distro"):
        assert str(first[field]) in text
    page.screenshot(path=str(tmp_path / "server-page.png"), full_page=True)
    assert console_errors(page) == []
