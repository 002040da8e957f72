"""Patch serving under PATCH_SERVER (protocol.md §2) through the real app: latest.v2 per feed (the
caller's, or main for anonymous callers), version, kpatch.info and the files of enabled levels only,
streamed with ETag, Last-Modified, 304, Range 206/416; traversal attempts and malformed ids are 404
and never a file; patch binaries need a server identity unless the ini allows anonymous downloads;
every identified request is a check-in; the hot path makes one query for the identity and one for
the level."""
from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import event, select

from eportal_core.models import MAIN_FEED, Feed, Patchset, Server
from eportal_core.services import agents, deploy, keys
from eportal_core.services.patchstore import import_archive
from eportal_core.testing.patches import KERNEL_IDS

K0, K1, K2 = KERNEL_IDS
UNKNOWN = "f" * 40


def basic(server_id: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{server_id}:anything".encode()).decode()}


def info_blob(data) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Store:
    """The five test patchsets imported into the app's data dir; the first three enabled on main."""

    def __init__(self, db, data_dir: Path, archives):
        self.db, self.data_dir, self.archives = db, data_dir, archives
        self.rows = [import_archive(db, a, data_dir=data_dir) for a in archives]
        self.main = db.scalar(select(Feed).where(Feed.name == MAIN_FEED))
        deploy.enable_upto(db, self.main, self.rows[2])
        db.commit()

    def feed(self, name: str) -> Feed:
        feed = Feed(name=name)
        self.db.add(feed)
        self.db.flush()
        return feed

    def agent(self, feed: str = MAIN_FEED, key: str | None = None) -> str:
        """A registered server on a key of ``feed``; its server_id."""
        key = key or f"key-{feed}"
        if keys.get_key(self.db, key) is None:
            keys.create_key(self.db, key, feed=feed, actor="test")
        reg = agents.register(self.db, key, hostname="agent-host")
        assert reg.code == agents.REGISTERED
        self.db.commit()
        return reg.server.server_id

    def server(self, server_id: str) -> Server:
        self.db.expire_all()
        return self.db.scalar(select(Server).where(Server.server_id == server_id))


@pytest.fixture
def store(testapp, dbsession, patch_archives):
    data_dir = Path(testapp.app.registry.settings["eportal.data_dir"])
    yield Store(dbsession, data_dir, list(patch_archives))
    # the rows go with the test's transaction; the folders committed into it go here
    for archive in patch_archives:
        shutil.rmtree(data_dir / "patches" / archive.name, ignore_errors=True)


def flush_checkins(testapp):
    testapp.app.registry["checkins"].flush()


# --- latest.v2 ----------------------------------------------------------------------------------

def test_latest_v2_answers_the_main_feed_to_anonymous_callers(testapp, store, patch_archives):
    for kernel_id in KERNEL_IDS:
        res = testapp.get(f"/{kernel_id}/latest.v2")
        assert res.content_type == "text/plain"
        assert res.text == str(patch_archives.latest(3, kernel_id))
        assert res.headers["Cache-Control"] == "no-store"
    testapp.get(f"/{UNKNOWN}/latest.v2", status=404)
    assert testapp.app.registry["checkins"].pending() == 0  # nobody to record


def test_latest_v2_answers_the_callers_own_feed(testapp, store, patch_archives):
    beta = store.feed("beta")
    deploy.enable_upto(store.db, beta, store.rows[4])
    on_beta, on_main = store.agent("beta"), store.agent(MAIN_FEED)
    for kernel_id in KERNEL_IDS:
        assert testapp.get(f"/{kernel_id}/latest.v2", headers=basic(on_beta)).text == str(patch_archives.latest(5, kernel_id))
        assert testapp.get(f"/{kernel_id}/latest.v2", headers=basic(on_main)).text == str(patch_archives.latest(3, kernel_id))
    # an unknown server id is an anonymous caller: the main feed
    assert testapp.get(f"/{K0}/latest.v2", headers=basic("Zzzzzzzzzzzzzzzz")).text == "3"
    # rolled back on beta: the agent there sees the older level at once
    deploy.rollback_from(store.db, beta, store.rows[1])
    store.db.commit()
    assert testapp.get(f"/{K0}/latest.v2", headers=basic(on_beta)).text == "1"
    assert testapp.get(f"/{K2}/latest.v2", headers=basic(on_beta), status=404)


def test_a_blocked_patchset_is_not_served(testapp, store):
    deploy.block(store.db, store.rows[2])
    store.db.commit()
    assert testapp.get(f"/{K0}/latest.v2").text == "2"
    server_id = store.agent()
    testapp.get(f"/{K0}/3/kpatch.bin", headers=basic(server_id), status=404)
    testapp.get(f"/{K0}/2/kpatch.bin", headers=basic(server_id), status=200)


def test_latest_v2_records_a_check_in_with_the_kernel_and_info(testapp, store):
    server_id = store.agent()
    blob = info_blob({"hostname": "web-01", "patch_level": 2, "uptime": 3600, "kcare_version": "2.80-1",
                      "distro": "rhel", "kernel_id": "0" * 40})
    before = store.server(server_id).checkin
    assert testapp.get(f"/{K0}/latest.v2?info={blob}", headers=basic(server_id)).text == "3"
    flush_checkins(testapp)
    server = store.server(server_id)
    assert server.kernel_id == K0  # the path names the kernel, not the blob
    assert (server.hostname, server.patch_level, server.uptime, server.kcare_version, server.distro) == \
        ("web-01", 2, 3600, "2.80-1", "rhel")
    assert server.ip == "192.0.2.10"
    assert server.checkin >= before


@pytest.mark.parametrize("blob", [
    "!!!not-base64!!!", info_blob(b"not json"), info_blob(b"[1, 2, 3]"), info_blob({"patch_level": "many"}),
    info_blob({"hostname": "bad\u0001name"}), info_blob({"hostname": "x" * 300}), info_blob(b"\xff\xfe"),
    "A" * 20000, info_blob(b"[" * 5000),
])
def test_a_bad_info_blob_is_ignored_and_still_answered(testapp, store, blob):
    server_id = store.agent()
    res = testapp.get(f"/{K0}/latest.v2", params={"info": blob}, headers=basic(server_id))
    assert res.text == "3"
    flush_checkins(testapp)
    server = store.server(server_id)
    assert server.kernel_id == K0 and server.hostname == "agent-host"


def test_the_hot_path_makes_one_query_for_the_identity_and_one_for_the_level(testapp, store, dbconnection):
    server_id = store.agent()
    testapp.get(f"/{K0}/latest.v2")  # the main feed's id is looked up once per process
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(dbconnection, "before_cursor_execute", count)
    try:
        testapp.get(f"/{K0}/latest.v2", headers=basic(server_id))
        identified = list(statements)
        statements.clear()
        testapp.get(f"/{K0}/latest.v2")
        anonymous = list(statements)
    finally:
        event.remove(dbconnection, "before_cursor_execute", count)
    assert len(identified) == 2, identified
    assert len(anonymous) == 1, anonymous


# --- version ------------------------------------------------------------------------------------

def test_version_says_whether_the_portal_has_patches_for_the_kernel(testapp, store):
    for kernel_id in KERNEL_IDS:
        testapp.get(f"/{kernel_id}/version", status=200)
    testapp.get(f"/{UNKNOWN}/version", status=404)
    # any downloaded patchset counts, enabled or not
    deploy.rollback_from(store.db, store.main, store.rows[0])
    store.db.commit()
    testapp.get(f"/{K0}/latest.v2", status=404)
    testapp.get(f"/{K0}/version", status=200)


# --- files --------------------------------------------------------------------------------------

def test_kpatch_info_is_public(testapp, store, patch_archives):
    res = testapp.get(f"/{K2}/2/kpatch.info")
    assert res.content_type == "text/plain"
    assert res.body == patch_archives[2].member(f"patches/{K2}/2/kpatch.info")
    assert res.text.startswith("OS: ") and "kpatch-cve: " in res.text


def test_kpatch_bin_of_every_enabled_level_comes_from_the_patchset_that_carries_it(testapp, store, patch_archives):
    server_id = store.agent()
    for kernel_id in KERNEL_IDS:
        for level in range(1, 6):
            provider = patch_archives.provider(3, kernel_id, level)
            res = testapp.get(f"/{kernel_id}/{level}/kpatch.bin", headers=basic(server_id), status="*")
            if provider is None:
                assert res.status_int == 404, (kernel_id, level)
                continue
            assert res.status_int == 200, (kernel_id, level)
            assert res.content_type == "application/octet-stream"
            assert res.body == provider.payload(kernel_id)
            assert int(res.headers["Content-Length"]) == len(res.body)
    # another file of a level
    res = testapp.get(f"/{K0}/3/kpatch.bin.sig", headers=basic(server_id))
    assert res.body == patch_archives[2].member(f"patches/{K0}/3/kpatch.bin.sig")


def test_patch_binaries_need_a_server_identity_unless_allowed(testapp, store, patch_archives, monkeypatch):
    res = testapp.get(f"/{K0}/3/kpatch.bin", status=401)
    assert res.headers["WWW-Authenticate"].startswith("Basic ")
    testapp.get(f"/{K0}/3/kpatch.bin", headers=basic("Zzzzzzzzzzzzzzzz"), status=401)  # unknown server
    monkeypatch.setitem(testapp.app.registry.settings, "eportal.anonymous_patch_downloads", True)
    assert testapp.get(f"/{K0}/3/kpatch.bin").body == patch_archives[2].payload(K0)
    testapp.get(f"/{K0}/4/kpatch.bin", status=404)  # the main feed decides for anonymous callers too


def test_a_level_not_enabled_on_the_callers_feed_is_404(testapp, store):
    beta = store.feed("beta")
    deploy.enable_upto(store.db, beta, store.rows[0])
    on_beta, on_main = store.agent("beta"), store.agent()
    testapp.get(f"/{K0}/2/kpatch.bin", headers=basic(on_beta), status=404)
    testapp.get(f"/{K0}/2/kpatch.info", headers=basic(on_beta), status=404)
    testapp.get(f"/{K0}/2/kpatch.bin", headers=basic(on_main), status=200)
    testapp.get(f"/{K0}/4/kpatch.bin", headers=basic(on_main), status=404)
    testapp.get(f"/{UNKNOWN}/1/kpatch.bin", headers=basic(on_main), status=404)


def test_downloads_record_check_ins(testapp, store):
    server_id = store.agent()
    testapp.get(f"/{K1}/2/kpatch.bin", headers=basic(server_id))
    flush_checkins(testapp)
    assert store.server(server_id).kernel_id == K1


def test_range_requests(testapp, store, patch_archives):
    server_id = store.agent()
    payload = patch_archives[2].payload(K0)
    url = f"/{K0}/3/kpatch.bin"
    res = testapp.get(url, headers={**basic(server_id), "Range": "bytes=10-99"}, status=206)
    assert res.body == payload[10:100]
    assert res.headers["Content-Range"] == f"bytes 10-99/{len(payload)}"
    assert res.headers["Content-Length"] == "90"
    res = testapp.get(url, headers={**basic(server_id), "Range": "bytes=-100"}, status=206)
    assert res.body == payload[-100:]
    res = testapp.get(url, headers={**basic(server_id), "Range": f"bytes={len(payload) - 5}-"}, status=206)
    assert res.body == payload[-5:]
    res = testapp.get(url, headers={**basic(server_id), "Range": f"bytes={len(payload) + 10}-"}, status=416)
    assert res.headers["Content-Range"] == f"bytes */{len(payload)}"
    assert testapp.get(url, headers=basic(server_id)).headers["Accept-Ranges"] == "bytes"


def test_conditional_requests(testapp, store, patch_archives):
    server_id = store.agent()
    url = f"/{K0}/3/kpatch.bin"
    first = testapp.get(url, headers=basic(server_id))
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag.startswith('"') and first.headers["Cache-Control"] == "private, no-cache"
    res = testapp.get(url, headers={**basic(server_id), "If-None-Match": etag}, status=304)
    assert res.body == b""
    testapp.get(url, headers={**basic(server_id), "If-Modified-Since": modified}, status=304)
    testapp.get(url, headers={**basic(server_id), "If-None-Match": '"something-else"'}, status=200)
    # If-Range with a stale validator: the whole file, not a range of a different one
    res = testapp.get(url, headers={**basic(server_id), "Range": "bytes=0-9", "If-Range": '"stale"'}, status=200)
    assert res.body == patch_archives[2].payload(K0)
    res = testapp.get(url, headers={**basic(server_id), "Range": "bytes=0-9", "If-Range": etag}, status=206)
    assert len(res.body) == 10
    # another level is another file with another validator
    assert testapp.get(f"/{K0}/2/kpatch.bin", headers=basic(server_id)).headers["ETag"] != etag


def test_head_answers_the_headers_only(testapp, store, patch_archives):
    server_id = store.agent()
    res = testapp.head(f"/{K0}/3/kpatch.bin", headers=basic(server_id))
    assert res.status_int == 200 and res.body == b""
    assert int(res.headers["Content-Length"]) == len(patch_archives[2].payload(K0))


# --- what must never be a file ------------------------------------------------------------------

def traversal_paths(name: str) -> list[str]:
    return [
        f"/{K0}/1/..%2F..%2Fmanifest.json",
        f"/{K0}/1/..%2F..%2F..%2F..%2F{name}%2Fmanifest.json",
        f"/{K0}/1/%2e%2e",
        f"/{K0}/1/%2e%2e%2fchangelog",
        f"/{K0}/1/..%5Cmanifest.json",
        f"/{K0}/%2e%2e/%2e%2e/{name}/manifest.json",
        f"/{K0}/1/../../manifest.json",
        f"/{K0}/1/.hidden",
        f"/{K0}/1/manifest.json",
        f"/{K0}/1/changelog",
        f"/{K0}/1/kpatch.bin%00.info",
        f"/{K0}/1/kpatch.bin/",
        f"/{K0}/1/kpatch.bin/extra",
        f"/{K0}/01/kpatch.bin",
        f"/{K0}/0/kpatch.bin",
        f"/{K0}/-1/kpatch.bin",
        f"/{K0}/1e3/kpatch.bin",
        f"/{K0}/9999999999/kpatch.bin",
        f"/{K0.upper()}/latest.v2",
        f"/{K0[:-1]}/latest.v2",
        f"/{K0}0/latest.v2",
        f"/..%2F{K0}/latest.v2",
        f"/{name}/manifest.json",
        f"/patches/{name}/manifest.json",
    ]


def test_traversal_and_malformed_ids_are_404_never_a_file(testapp, store, patch_archives, monkeypatch):
    monkeypatch.setitem(testapp.app.registry.settings, "eportal.anonymous_patch_downloads", True)
    server_id = store.agent()
    secret = (store.data_dir / "patches" / patch_archives[0].name / "manifest.json").read_bytes()
    for path in traversal_paths(patch_archives[0].name):
        for headers in ({}, basic(server_id)):
            res = testapp.get(path, headers=headers, status="*", expect_errors=True)
            assert res.status_int in (400, 404), f"{path} answered {res.status}"
            assert secret not in res.body and b'"files"' not in res.body, path
            assert "Traceback" not in res.text


def test_only_get_and_head(testapp, store):
    server_id = store.agent()
    for method in ("post", "put", "delete", "patch"):
        res = getattr(testapp, method)(f"/{K0}/3/kpatch.bin", headers=basic(server_id), status="*", expect_errors=True)
        assert res.status_int in (404, 405), (method, res.status)
        res = getattr(testapp, method)(f"/{K0}/latest.v2", status="*", expect_errors=True)
        assert res.status_int in (404, 405), (method, res.status)


def test_files_are_found_from_the_database_not_the_disk(testapp, store, patch_archives):
    """A folder that looks like a patchset but has no row (an unfinished import, a stray copy) is never served."""
    server_id = store.agent()
    stray = store.data_dir / "patches" / "K20991231_01" / "patches" / K0 / "99"
    stray.mkdir(parents=True)
    try:
        (stray / "kpatch.bin").write_bytes(b"stray")
        testapp.get(f"/{K0}/99/kpatch.bin", headers=basic(server_id), status=404)
    finally:
        shutil.rmtree(store.data_dir / "patches" / "K20991231_01")
    # a row whose folder is gone: 404, not a 500
    row = store.db.scalar(select(Patchset).where(Patchset.name == patch_archives[0].name))
    shutil.rmtree(store.data_dir / "patches" / row.name)
    testapp.get(f"/{K0}/1/kpatch.bin", headers=basic(server_id), status=404)
