"""Patches over real HTTP against ``eportal serve`` (waitress), on SQLite and PostgreSQL: archives are
imported into the server's data dir the way the CLI does (CliEnv), the 3rd of 5 is enabled on main,
a registered agent reads latest.v2 and downloads kpatch.bin (whole and by Range), the bytes equal
the archive's; rolling back the 2nd shows the agent the 1st's level at once. Waitress decodes %2F
in the path: traversal attempts over the wire are still 404."""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from sqlalchemy import select

from eportal_core.cli.env import CliEnv
from eportal_core.models import MAIN_FEED, Feed, Patchset, Server
from eportal_core.services import deploy
from eportal_core.services.keys import create_key
from eportal_core.services.patchstore import import_archive
from eportal_core.testing.live import wait_until
from eportal_core.testing.patches import KERNEL_IDS, make_archive

pytestmark = pytest.mark.e2e

K0, K1, K2 = KERNEL_IDS
BIG_KERNEL = hashlib.sha1(b"Linux version 6.1.0-17-amd64 (debian-kernel@lists.debian.org) #1 SMP").hexdigest()
BIG = 8 * 2**20


def request(url: str, headers: dict | None = None, method: str = "GET", data: dict | None = None):
    """``(status, headers, body)``; HTTP errors are answers too."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


def raw_get(server, path: str) -> tuple[int, bytes]:
    """A GET with the path sent exactly as written (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def basic(server_id: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{server_id}:x".encode()).decode()}


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory):
    # released before the five: enabling the 3rd enables it too, and no rollback here touches it
    return make_archive(tmp_path_factory.mktemp("big"), "K01122023_1", "2023-12-01T00:00:00", {BIG_KERNEL: 1},
                        payload_size=BIG, compression="gz")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_agent_follows_deploys_and_rollbacks_over_http(backend, start_live_server, patch_archives, big_archive):
    server = start_live_server(backend)
    env = CliEnv(str(server.ini))
    try:
        data_dir = env.settings["eportal.data_dir"]
        started = time.perf_counter()
        with env.dbsession() as db:
            for archive in [big_archive, *patch_archives]:
                import_archive(db, archive, data_dir=data_dir, pm=env.pm)
        imported_in = time.perf_counter() - started
        with env.dbsession() as db:
            main = db.scalar(select(Feed).where(Feed.name == MAIN_FEED))
            third = db.scalar(select(Patchset).where(Patchset.name == patch_archives[2].name))
            enabled = deploy.enable_upto(db, main, third, pm=env.pm, actor="e2e")
            assert [p.name for p in enabled] == [big_archive.name] + [a.name for a in patch_archives[:3]]
            create_key(db, "e2e-patches", actor="e2e")
        print(f"\nimported 6 archives ({BIG // 2**20} MB payload in one) in {imported_in:.2f} s")

        status, _, body = request(server.url + "/admin/api/kcare/register_server.json",
                                  method="POST", data={"key": "e2e-patches", "hostname": "e2e-agent"})
        assert status == 200, body
        answer = json.loads(body)
        assert answer["code"] == 0
        agent = basic(answer["server_id"])

        # latest.v2 for the agent (main feed) and for an anonymous scanner alike
        for kernel_id in KERNEL_IDS:
            status, headers, body = request(f"{server.url}/{kernel_id}/latest.v2", agent)
            assert (status, body.decode()) == (200, str(patch_archives.latest(3, kernel_id)))
            assert headers["Content-Type"].startswith("text/plain")
        assert request(f"{server.url}/{K0}/latest.v2")[2] == b"3"
        assert request(f"{server.url}/{'f' * 40}/latest.v2", agent)[0] == 404

        # kpatch.bin: the archive's bytes, whole and by range; anonymous callers are refused
        status, headers, body = request(f"{server.url}/{K0}/3/kpatch.bin", agent)
        assert status == 200 and body == patch_archives[2].payload(K0)
        assert headers["ETag"] and headers["Last-Modified"] and headers["Accept-Ranges"] == "bytes"
        status, _, body = request(f"{server.url}/{K0}/3/kpatch.bin", {**agent, "If-None-Match": headers["ETag"]})
        assert (status, body) == (304, b"")
        status, headers, body = request(f"{server.url}/{BIG_KERNEL}/1/kpatch.bin", agent)
        assert status == 200 and int(headers["Content-Length"]) == BIG
        assert hashlib.sha256(body).hexdigest() == big_archive.files[f"patches/{BIG_KERNEL}/1/kpatch.bin"]
        status, headers, part = request(f"{server.url}/{BIG_KERNEL}/1/kpatch.bin",
                                        {**agent, "Range": f"bytes={BIG - 1000}-{BIG - 1}"})
        assert (status, part) == (206, body[-1000:])
        assert headers["Content-Range"] == f"bytes {BIG - 1000}-{BIG - 1}/{BIG}"
        assert request(f"{server.url}/{BIG_KERNEL}/1/kpatch.bin", {**agent, "Range": f"bytes={BIG}-"})[0] == 416
        status, headers, _ = request(f"{server.url}/{K0}/3/kpatch.bin")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic ")
        status, _, body = request(f"{server.url}/{K0}/3/kpatch.info")
        assert status == 200 and body == patch_archives[2].member(f"patches/{K0}/3/kpatch.info")
        assert request(f"{server.url}/{K0}/4/kpatch.bin", agent)[0] == 404

        # waitress turns %2F into "/" before the app sees the path: still no file
        manifest = (server.data_dir / "patches" / patch_archives[0].name / "manifest.json").read_bytes()
        for path in (f"/{K0}/1/..%2F..%2Fmanifest.json", f"/{K0}/1/%2e%2e%2f%2e%2e%2fmanifest.json",
                     f"/{K0}/%2e%2e/%2e%2e/{patch_archives[0].name}/manifest.json", f"/{K0}/1/..%5Cchangelog",
                     f"/{patch_archives[0].name}/manifest.json"):
            status, body = raw_get(server, path)
            assert status in (400, 404), (path, status)
            assert manifest not in body and b'"files"' not in body, path

        # roll back the 2nd (and so the 3rd): the agent sees the 1st's level at once
        with env.dbsession() as db:
            main = db.scalar(select(Feed).where(Feed.name == MAIN_FEED))
            second = db.scalar(select(Patchset).where(Patchset.name == patch_archives[1].name))
            assert [p.name for p in deploy.rollback_from(db, main, second, actor="e2e")] == \
                [a.name for a in patch_archives[1:3]]
        for kernel_id in KERNEL_IDS:
            status, _, body = request(f"{server.url}/{kernel_id}/latest.v2", agent)
            expected = patch_archives.latest(1, kernel_id)
            assert (status, body.decode()) == ((200, str(expected)) if expected else (404, "not found\n"))
        assert request(f"{server.url}/{K0}/3/kpatch.bin", agent)[0] == 404
        status, _, body = request(f"{server.url}/{K0}/1/kpatch.bin", agent)
        assert status == 200 and body == patch_archives[0].payload(K0)

        # every request was a check-in; the last one named K0
        def last_checkin():
            with env.dbsession() as db:
                row = db.scalar(select(Server).where(Server.hostname == "e2e-agent"))
                return (row.kernel_id, row.ip) if row.kernel_id == K0 else None

        assert wait_until(last_checkin, "the last check-in (K0) written") == (K0, "127.0.0.1")
        assert "Traceback" not in server.log_tail(200)
    finally:
        env.engine.dispose()
