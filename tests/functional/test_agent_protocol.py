"""The agent protocol (protocol.md §2) through the real app: register, unregister, check-in,
unregister_by_key, the install scripts, and what bad input gets. Runs on SQLite and PostgreSQL."""
from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from eportal_core.models import Server, ServerTag
from eportal_core.services import agents, keys
from eportal_core.testing import factories

BASE = "/admin/api/kcare"
KERNEL_ID = "0123456789abcdef0123456789abcdef01234567"
BASH = shutil.which("bash") or "/bin/bash"


# --- helpers ------------------------------------------------------------------------------------

def make_key(dbsession, name, limit=0, enabled=True):
    key = factories.make_key(dbsession, name, server_limit=limit, enabled=enabled)
    dbsession.commit()
    return key


def count_servers(dbsession, key_name=None):
    dbsession.expire_all()
    stmt = select(func.count()).select_from(Server)
    if key_name is not None:
        stmt = stmt.where(Server.key_id == select(keys.Key.id).where(keys.Key.key == key_name).scalar_subquery())
    return dbsession.scalar(stmt)


def server(dbsession, server_id) -> Server:
    dbsession.expire_all()
    return dbsession.scalar(select(Server).where(Server.server_id == server_id))


def register(testapp, key, **params):
    res = testapp.post(f"{BASE}/register_server.json", dict(key=key, **params))
    assert res.json["code"] == 0, res.json
    return res.json["server_id"]


@pytest.fixture
def checkins(app):
    buf = app.registry["checkins"]
    buf.flush()
    return buf


@pytest.fixture
def token_file(app):
    path = Path(app.registry.settings["eportal.data_dir"]) / "config" / "api.token"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
def trusted_proxies(app):
    """Set eportal.trusted_proxies on the running app for one test."""
    settings = app.registry.settings
    saved = settings["eportal.trusted_proxies"]

    def set_(*nets):
        settings["eportal.trusted_proxies"] = [ipaddress.ip_network(n) for n in nets]
    yield set_
    settings["eportal.trusted_proxies"] = saved


# --- register_server ----------------------------------------------------------------------------

def test_register_json_get_and_post(testapp, dbsession):
    make_key(dbsession, "regkey1")
    res = testapp.get(f"{BASE}/register_server.json", {"key": "regkey1", "hostname": "web1"})
    assert res.content_type == "application/json"
    assert set(res.json) == {"code", "server_id"} and res.json["code"] == 0
    sid = res.json["server_id"]
    assert agents.valid_server_id(sid)
    row = server(dbsession, sid)
    assert row.hostname == "web1" and row.ip == "192.0.2.10" and row.registered is not None
    # POST, form
    sid2 = register(testapp, "regkey1", hostname="web2")
    assert sid2 != sid and server(dbsession, sid2).hostname == "web2"
    # POST, JSON body with §4 fields and tags
    res = testapp.post_json(f"{BASE}/register_server.json",
                            {"key": "regkey1", "hostname": "db1", "tags": "env:prod;ubuntu", "kernel_id": KERNEL_ID.upper(),
                             "distro": "ubuntu", "patch_level": 2})
    row = server(dbsession, res.json["server_id"])
    assert (row.hostname, row.kernel_id, row.distro, row.patch_level, row.tags) == \
        ("db1", KERNEL_ID, "ubuntu", 2, "env:prod;ubuntu")
    assert {(t.name, t.value) for t in dbsession.scalars(select(ServerTag).where(ServerTag.server_pk == row.id))} == \
        {("env", "prod"), ("ubuntu", "")}
    # no hostname is fine
    assert server(dbsession, register(testapp, "regkey1")).hostname == ""


def test_register_plain_exact_format(testapp, dbsession):
    make_key(dbsession, "plainkey", limit=1)
    res = testapp.post(f"{BASE}/register_server.plain", {"key": "plainkey", "hostname": "h"})
    assert res.content_type == "text/plain"
    lines = res.text.split("\n")
    assert lines[0] == "code=0" and lines[1].startswith("server_id=") and lines[2:] == [""]
    assert server(dbsession, lines[1].split("=", 1)[1]).hostname == "h"
    assert testapp.get(f"{BASE}/register_server.plain", {"key": "plainkey"}).text == "code=3\n"
    assert testapp.get(f"{BASE}/register_server.plain", {"key": "nosuchkey"}).text == "code=2\n"


def test_register_codes(testapp, dbsession):
    make_key(dbsession, "limited", limit=2)
    make_key(dbsession, "disabled", enabled=False)
    url = f"{BASE}/register_server.json"
    assert testapp.get(url, {"key": "unknownkey"}).json == {"code": 2}
    assert testapp.get(url).json == {"code": 2}                        # no key at all
    assert testapp.get(url, {"key": ""}).json == {"code": 2}
    assert testapp.get(url, {"key": "a b;'--"}).json == {"code": 2}   # cannot name a key
    assert testapp.get(url + "?key=lim%00ited").json == {"code": 2}   # NUL: no query (PostgreSQL would refuse it)
    assert testapp.get(url, {"key": "k" * 65}).json == {"code": 2}
    assert testapp.get(url, {"key": "disabled"}).json == {"code": 1}
    assert count_servers(dbsession, "disabled") == 0
    register(testapp, "limited")
    register(testapp, "limited")
    assert testapp.get(url, {"key": "limited", "hostname": "third"}).json == {"code": 3}
    assert testapp.post_json(url, {"key": "limited"}).json == {"code": 3}
    assert count_servers(dbsession, "limited") == 2


def test_register_bad_input_is_4xx_and_changes_nothing(testapp, dbsession):
    make_key(dbsession, "badin")
    url = f"{BASE}/register_server.json"
    before = count_servers(dbsession)

    def refused(res, slug, status=400):
        assert res.status_int == status and res.content_type == "application/json", res
        assert res.json["error"] == slug and res.json["message"], res.json
        assert "Traceback" not in res.text

    refused(testapp.post(url, {"key": "badin", "hostname": "h" * 10240}, status=400), "bad-param")
    refused(testapp.post(url, {"key": "badin", "kernel_id": KERNEL_ID + "0"}, status=400), "bad-param")   # 41 chars
    refused(testapp.post(url, {"key": "badin", "kernel_id": "z" * 40}, status=400), "bad-param")         # not hex
    refused(testapp.post(url, {"key": "badin", "patch_level": "-5"}, status=400), "bad-param")
    refused(testapp.post(url, {"key": "badin", "patch_level": "two"}, status=400), "bad-param")
    refused(testapp.post(url, {"key": "badin", "hostname": "a\x00b"}, status=400), "bad-param")
    refused(testapp.post(url, {"key": "badin", "tags": ":novalue"}, status=400), "bad-param")
    # non-UTF-8: in a form body (percent-encoded and raw) and in the query string
    refused(testapp.post(url, b"key=badin&hostname=%ff%fe", content_type="application/x-www-form-urlencoded",
                         status=400), "bad-encoding")
    refused(testapp.post(url, b"key=badin&hostname=caf\xe9", content_type="application/x-www-form-urlencoded",
                         status=400), "bad-encoding")
    refused(testapp.get(url + "?key=badin&hostname=%ff", status=400), "bad-encoding")
    refused(testapp.post(url + "?hostname=%c3%28", {"key": "badin"}, status=400), "bad-encoding")
    # JSON that is not an object, or not JSON at all
    refused(testapp.post_json(url, ["badin"], status=400), "bad-json")
    refused(testapp.post(url, b'{"key": "badin",', content_type="application/json", status=400), "bad-json")
    refused(testapp.post(url, b'{"key": "\xff"}', content_type="application/json", status=400), "bad-encoding")
    refused(testapp.post(url, b"[" * 60000, content_type="application/json", status=400), "bad-json")
    refused(testapp.post(url, b'{"key": "badin", "uptime": ' + b"9" * 5000 + b"}", content_type="application/json",
                         status=400), "bad-json")
    refused(testapp.post_json(url, {"key": "badin", "hostname": {"a": 1}}, status=400), "bad-param")
    refused(testapp.post_json(url, {"key": ["badin"]}, status=400), "bad-param")
    # a lone surrogate (JSON "\ud800"): valid JSON, but no database can store it
    refused(testapp.post_json(url, {"key": "badin", "hostname": "x\ud800"}, status=400), "bad-param")
    refused(testapp.post_json(url, {"key": "badin", "tags": "env:\udfff"}, status=400), "bad-param")
    # too big for an agent, or a body type agents do not send
    refused(testapp.post(url, b"key=badin&hostname=" + b"x" * 70000, content_type="application/x-www-form-urlencoded",
                         status=413), "too-large", 413)
    refused(testapp.post(url, b"<key>badin</key>", content_type="application/xml", status=415),
            "unsupported-media-type", 415)
    assert count_servers(dbsession) == before


def test_register_utf8_hostname_raw_and_encoded(testapp, dbsession):
    make_key(dbsession, "utf8key")
    url = f"{BASE}/register_server.json"
    raw = testapp.post(url, "key=utf8key&hostname=café".encode(), content_type="application/x-www-form-urlencoded")
    assert server(dbsession, raw.json["server_id"]).hostname == "café"
    enc = testapp.post(url, b"key=utf8key&hostname=caf%C3%A9+2", content_type="application/x-www-form-urlencoded")
    assert server(dbsession, enc.json["server_id"]).hostname == "café 2"
    multi = testapp.post(url, {"key": "utf8key", "hostname": "multi"}, content_type="multipart/form-data")
    assert server(dbsession, multi.json["server_id"]).hostname == "multi"
    res = testapp.post(url, {"key": "utf8key"}, upload_files=[("hostname", "h.txt", b"x")], status=400)
    assert res.json["error"] == "bad-param"


def test_agent_endpoints_other_methods_are_json_404(testapp):
    for method, path in (("get", "checkin"), ("delete", "register_server.json"), ("put", "unregister_server.plain"),
                         ("post", "unregister_by_key.plain")):
        res = getattr(testapp, method)(f"{BASE}/{path}", status=404)
        assert res.json == {"error": "not-found"}


# --- unregister_server --------------------------------------------------------------------------

def test_unregister_json_and_plain(testapp, dbsession):
    make_key(dbsession, "unreg")
    a, b = register(testapp, "unreg", hostname="a"), register(testapp, "unreg", hostname="b")
    res = testapp.post(f"{BASE}/unregister_server.json", {"server_id": a})
    assert res.content_type == "application/json" and res.text == "true"
    assert server(dbsession, a) is None and server(dbsession, b) is not None
    assert testapp.get(f"{BASE}/unregister_server.json", {"server_id": a}).text == "false"        # gone already
    assert testapp.get(f"{BASE}/unregister_server.json", {"server_id": "bad id!"}).text == "false"  # malformed
    assert testapp.get(f"{BASE}/unregister_server.json").text == "false"                           # missing
    res = testapp.get(f"{BASE}/unregister_server.plain", {"server_id": b})
    assert res.content_type == "text/plain" and res.text == "1"
    assert testapp.post(f"{BASE}/unregister_server.plain", {"server_id": b}).text == "0"
    assert testapp.post_json(f"{BASE}/unregister_server.plain", {"server_id": "A" * 17}).text == "0"
    assert count_servers(dbsession, "unreg") == 0


# --- check-in -----------------------------------------------------------------------------------

def test_checkin_recorded_after_flush(testapp, dbsession, checkins):
    make_key(dbsession, "ckey")
    sid = register(testapp, "ckey", hostname="old-name")
    row = server(dbsession, sid)
    registered_checkin = row.checkin
    assert row.updated is None and row.patch_level is None
    res = testapp.post(f"{BASE}/checkin", {"server_id": sid, "kernel_id": KERNEL_ID, "patch_level": "3",
                                           "tags": "env:prod;web", "hostname": "new-name", "uptime": "1234",
                                           "patch_type": "extra", "euname": "5.14.0-1"},
                       extra_environ={"REMOTE_ADDR": "198.51.100.4"})
    assert res.content_type == "application/json" and res.json == {"result": "ok"}
    # coalesced: nothing is written until the buffer flushes
    assert checkins.pending() == 1
    assert server(dbsession, sid).patch_level is None
    assert checkins.flush() == 1
    row = server(dbsession, sid)
    assert row.ip == "198.51.100.4" and row.kernel_id == KERNEL_ID and row.patch_level == 3
    assert row.hostname == "new-name" and row.uptime == 1234 and row.patch_type == "extra" and row.euname == "5.14.0-1"
    assert row.tags == "env:prod;web" and row.updated is not None and row.checkin >= registered_checkin
    assert {(t.name, t.value) for t in dbsession.scalars(select(ServerTag).where(ServerTag.server_pk == row.id))} == \
        {("env", "prod"), ("web", "")}
    first_updated = row.updated
    # the same level again: checked in, but `updated` keeps the time the level last changed
    testapp.post_json(f"{BASE}/checkin", {"server_id": sid, "patch_level": 3})
    checkins.flush()
    row = server(dbsession, sid)
    assert row.updated == first_updated and row.ip == "192.0.2.10"
    # a new level moves `updated`; an empty tag string removes the tags
    testapp.post_json(f"{BASE}/checkin", {"server_id": sid, "patch_level": 4, "tags": ""})
    checkins.flush()
    row = server(dbsession, sid)
    assert row.patch_level == 4 and row.updated > first_updated and row.tags is None


def test_checkin_never_opens_the_request_transaction(app, testapp, dbsession, checkins):
    """The hottest path: one indexed read and a note in memory; a write transaction here would
    serialize every agent on SQLite's write lock."""
    make_key(dbsession, "hotpath")
    sid = register(testapp, "hotpath")
    factory = app.registry["dbsession_factory"]

    def refuse(*a, **kw):
        raise AssertionError("check-in opened request.dbsession")
    app.registry["dbsession_factory"] = refuse
    try:
        assert testapp.post(f"{BASE}/checkin", {"server_id": sid, "patch_level": "1"}).json == {"result": "ok"}
        assert testapp.post(f"{BASE}/checkin", {"server_id": "Nnnnnnnnnnnnnnn1"}, status=404)
    finally:
        app.registry["dbsession_factory"] = factory
    assert checkins.pending() == 1


def test_checkin_identity_by_basic_auth(testapp, dbsession, checkins):
    make_key(dbsession, "basickey")
    sid = register(testapp, "basickey")
    auth = "Basic " + base64.b64encode(f"{sid}:whatever".encode()).decode()
    assert testapp.post(f"{BASE}/checkin", {"kernel_id": KERNEL_ID}, headers={"Authorization": auth}).json == {"result": "ok"}
    checkins.flush()
    assert server(dbsession, sid).kernel_id == KERNEL_ID


def test_checkin_refusals_record_nothing(testapp, dbsession, checkins):
    make_key(dbsession, "ckbad")
    sid = register(testapp, "ckbad")
    url = f"{BASE}/checkin"
    res = testapp.post(url, {"server_id": "Zzzzzzzzzzzzzzz1"}, status=404)
    assert res.json == {"error": "unknown-server"}
    assert testapp.post(url, {"server_id": "not-an-id"}, status=400).json["error"] == "bad-server-id"
    assert testapp.post(url, {}, status=400).json["error"] == "bad-server-id"
    for bad in ({"kernel_id": KERNEL_ID + "0"}, {"kernel_id": "g" * 40}, {"patch_level": "-2"},
                {"hostname": "h" * 10240}, {"uptime": "-1"}, {"patch_type": "weird"}):
        res = testapp.post(url, dict(server_id=sid, **bad), status=400)
        assert res.json["error"] == "bad-param", bad
    assert testapp.post(url, b"server_id=" + sid.encode() + b"&hostname=%ff", status=400,
                        content_type="application/x-www-form-urlencoded").json["error"] == "bad-encoding"
    assert testapp.post(url + "?hostname=%ff", {"server_id": sid}, status=400).json["error"] == "bad-encoding"
    assert testapp.post_json(url, [sid], status=400).json["error"] == "bad-json"
    # one poisoned contact would fail the whole coalesced batch: refused here
    assert testapp.post_json(url, {"server_id": sid, "hostname": "\ud83d"}, status=400).json["error"] == "bad-param"
    assert testapp.post_json(url, "just a string", status=400).json["error"] == "bad-json"
    assert checkins.pending() == 0


# --- client IP behind proxies -------------------------------------------------------------------

def test_forwarded_for_only_from_trusted_proxies(testapp, dbsession, checkins, trusted_proxies):
    make_key(dbsession, "proxied")
    xff = {"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.8"}
    sid = register_with(testapp, "proxied", xff)
    assert server(dbsession, sid).ip == "192.0.2.10"          # the peer is no trusted proxy: headers ignored
    trusted_proxies("192.0.2.0/24")
    sid = register_with(testapp, "proxied", xff)
    assert server(dbsession, sid).ip == "203.0.113.7"
    testapp.post(f"{BASE}/checkin", {"server_id": sid}, headers={"X-Forwarded-For": "203.0.113.99"})
    checkins.flush()
    assert server(dbsession, sid).ip == "203.0.113.99"
    trusted_proxies("10.0.0.0/8")                               # someone else's proxy
    testapp.post(f"{BASE}/checkin", {"server_id": sid}, headers={"X-Forwarded-For": "203.0.113.50"})
    checkins.flush()
    assert server(dbsession, sid).ip == "192.0.2.10"


def register_with(testapp, key, headers):
    return testapp.post(f"{BASE}/register_server.json", {"key": key}, headers=headers).json["server_id"]


# --- unregister_by_key --------------------------------------------------------------------------

def test_unregister_by_key_token_file(testapp, dbsession, token_file, monkeypatch, caplog):
    make_key(dbsession, "bykey")
    make_key(dbsession, "otherkey")
    for ip in ("10.9.8.7", "10.9.8.7", "10.9.8.6"):
        testapp.post(f"{BASE}/register_server.json", {"key": "bykey"}, extra_environ={"REMOTE_ADDR": ip})
    testapp.post(f"{BASE}/register_server.json", {"key": "otherkey"}, extra_environ={"REMOTE_ADDR": "10.9.8.7"})
    url = f"{BASE}/unregister_by_key.plain"
    params = {"key": "bykey", "ip": "10.9.8.7", "token": "s3cret-token-value"}
    res = testapp.get(url, params)
    assert res.content_type == "text/plain" and res.text == "-3"           # no token file
    token_file.write_text("s3cret-token-value\n")
    assert testapp.get(url, dict(params, token="wrong")).text == "-2"
    assert testapp.get(url, dict(params, token="")).text == "-2"
    assert testapp.get(url, {"key": "bykey", "ip": "10.9.8.7"}).text == "-2"
    assert count_servers(dbsession, "bykey") == 3
    # an internal error: -1, logged, no traceback in the answer, nothing removed
    def boom(*a, **kw):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(agents, "unregister_by_key", boom)
    with caplog.at_level(logging.ERROR, logger="eportal_core.agent.views"):
        res = testapp.get(url, params)
    assert res.text == "-1" and "disk on fire" in caplog.text
    monkeypatch.undo()
    assert count_servers(dbsession, "bykey") == 3
    # the right token: the key's servers at that IP go, nobody else's
    assert testapp.get(url, params).text == "2"
    assert count_servers(dbsession, "bykey") == 1 and count_servers(dbsession, "otherkey") == 1
    assert testapp.get(url, params).text == "0"
    assert testapp.get(url, dict(params, key="nokey")).text == "0"
    assert testapp.get(url, dict(params, ip="not-an-ip")).text == "0"
    assert testapp.get(url, dict(params, key="bad key\x00")).text == "0"
    token_file.write_text("   \n")                                            # an empty token matches nothing
    assert testapp.get(url, dict(params, token="")).text == "-2"


# --- install scripts ----------------------------------------------------------------------------

@pytest.fixture
def fake_pm(tmp_path):
    """A PATH where ``dnf`` is a stub that logs its arguments (the real install cannot run here)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "dnf.log"
    stub = bindir / "dnf"
    stub.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    stub.chmod(0o755)
    return bindir, log


def run_script(script: str, conf: Path, bindir: Path, **env):
    environ = {"PATH": f"{bindir}:/usr/bin:/bin", "KCARE_CONF": str(conf), "HOME": str(conf.parent), **env}
    return subprocess.run([BASH], input=script, env=environ, capture_output=True, text=True, timeout=30)


def bash_syntax_ok(script: str) -> bool:
    return subprocess.run([BASH, "-n"], input=script, capture_output=True, text=True).returncode == 0


def test_install_kernelcare_script(testapp, tmp_path, fake_pm):
    bindir, log = fake_pm
    res = testapp.get("/install-kernelcare")
    assert res.content_type == "text/x-shellscript" and res.text.startswith("#!/bin/bash\n")
    assert "PATCH_SERVER=http://eportal.test/\n" in res.text
    assert "REGISTRATION_URL=http://eportal.test/admin/api/kcare\n" in res.text
    assert bash_syntax_ok(res.text)
    conf = tmp_path / "etc" / "sysconfig" / "kcare" / "kcare.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("# local settings\nAUTO_UPDATE=True\nPATCH_SERVER=http://old.example/\n"
                    "  REGISTRATION_URL = http://old.example/admin/api/kcare\nPATCH_SERVER=http://dup.example/\n"
                    "PATCH_SERVER_EXTRA=keep\n")
    conf.chmod(0o640)
    done = run_script(res.text, conf, bindir, KCARE_MAILTO="ops@example.com")
    assert done.returncode == 0, done.stderr
    assert conf.read_text().splitlines() == [
        "# local settings", "AUTO_UPDATE=True", "PATCH_SERVER=http://eportal.test/",
        "REGISTRATION_URL=http://eportal.test/admin/api/kcare", "PATCH_SERVER_EXTRA=keep",
        "KCARE_MAILTO=ops@example.com"]
    assert conf.stat().st_mode & 0o777 == 0o640
    assert log.read_text() == "-y install kernelcare\n"
    assert sorted(p.name for p in conf.parent.iterdir()) == ["kcare.conf"]   # no temp file left
    # again, without KCARE_MAILTO: the same file (the address stays), installed once more
    assert run_script(res.text, conf, bindir).returncode == 0
    assert conf.read_text().count("PATCH_SERVER=") == 1 and "KCARE_MAILTO=ops@example.com" in conf.read_text()
    # a fresh server: the folder and the file are created
    fresh = tmp_path / "fresh" / "kcare" / "kcare.conf"
    assert run_script(res.text, fresh, bindir).returncode == 0
    assert fresh.read_text() == "PATCH_SERVER=http://eportal.test/\nREGISTRATION_URL=http://eportal.test/admin/api/kcare\n"


def test_install_script_fails_without_package_manager(testapp, tmp_path):
    empty = tmp_path / "nobin"
    empty.mkdir()
    for tool in ("mkdir", "dirname", "mktemp", "awk", "cat", "rm"):   # only what the script needs besides
        found = next(p for p in ("/usr/bin", "/bin") if os.path.exists(f"{p}/{tool}"))
        (empty / tool).symlink_to(f"{found}/{tool}")
    conf = tmp_path / "kcare.conf"
    done = subprocess.run([BASH], input=testapp.get("/install-kernelcare").text, capture_output=True, text=True,
                          env={"PATH": str(empty), "KCARE_CONF": str(conf)}, timeout=30)
    assert done.returncode != 0 and "install the kernelcare package by hand" in done.stderr
    assert "PATCH_SERVER=http://eportal.test/" in conf.read_text()


def test_set_patch_server_script_only_rewrites_the_two_settings(testapp, tmp_path, fake_pm):
    bindir, log = fake_pm
    res = testapp.get("/set-patch-server", headers={"Host": "portal.example.com:8443"})
    assert res.content_type == "text/x-shellscript" and bash_syntax_ok(res.text)
    conf = tmp_path / "kcare.conf"
    conf.write_text("PREFIX=test\nREGISTRATION_URL=http://old/\n")
    done = run_script(res.text, conf, bindir, KCARE_MAILTO="ignored@example.com")
    assert done.returncode == 0, done.stderr
    assert conf.read_text() == ("PREFIX=test\nREGISTRATION_URL=http://portal.example.com:8443/admin/api/kcare\n"
                                "PATCH_SERVER=http://portal.example.com:8443/\n")
    assert not log.exists()   # nothing installed


def test_script_urls_quoted_and_odd_hosts_refused(testapp, tmp_path, fake_pm):
    bindir, _ = fake_pm
    res = testapp.get("/set-patch-server", headers={"Host": "[::1]:8080"})
    assert "PATCH_SERVER='http://[::1]:8080/'\n" in res.text              # shlex.quote: [ ] are glob characters
    conf = tmp_path / "kcare.conf"
    assert run_script(res.text, conf, bindir).returncode == 0
    assert conf.read_text().splitlines()[0] == "PATCH_SERVER=http://[::1]:8080/"
    for host in ("evil$(touch pwned)", "a'b", "a b", "x`id`"):
        res = testapp.get("/install-kernelcare", headers={"Host": host}, status=400)
        assert res.content_type == "text/x-shellscript" and bash_syntax_ok(res.text)
        done = run_script(res.text, conf, bindir)
        assert done.returncode == 1 and "Host header" in done.stderr and not (tmp_path / "pwned").exists()


def test_script_url_behind_trusted_proxy(testapp, trusted_proxies):
    fwd = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "patches.example.org"}
    assert "PATCH_SERVER=http://eportal.test/\n" in testapp.get("/install-kernelcare", headers=fwd).text
    trusted_proxies("192.0.2.10/32")
    text = testapp.get("/install-kernelcare", headers=fwd).text
    assert "PATCH_SERVER=https://patches.example.org/\n" in text
    assert "REGISTRATION_URL=https://patches.example.org/admin/api/kcare\n" in text
    text = testapp.get("/set-patch-server", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Port": "8443"}).text
    assert "PATCH_SERVER=https://eportal.test:8443/\n" in text
    # a forwarded host that would not be safe in a script is not taken
    text = testapp.get("/set-patch-server", headers={"X-Forwarded-Host": "x$(id)"}).text
    assert "PATCH_SERVER=http://eportal.test/\n" in text


# --- health -------------------------------------------------------------------------------------

def test_health_reports_checkins(testapp, checkins, backend):
    res = testapp.get("/admin/health", status="*")
    check = next(c for c in res.json["checks"] if c["name"] == "checkins")
    assert check["ok"] is True
    assert set(res.json["checkins"]) == {"pending", "flushed", "errors", "last_error", "in_memory"}
    # server ids in memory for check-ins: on for PostgreSQL (eportal.agent_directory.in_memory = auto)
    in_memory = res.json["checkins"]["in_memory"]
    if backend == "postgresql":
        assert set(in_memory) == {"servers", "loaded"}
    else:
        assert in_memory is None
    saved = checkins.last_error
    checkins.last_error = "OperationalError: could not connect to db.internal as eportal"
    try:
        res = testapp.get("/admin/health", status=503)
    finally:
        checkins.last_error = saved
    check = next(c for c in res.json["checks"] if c["name"] == "checkins")
    assert check["ok"] is False and "OperationalError" in check["detail"]
    assert res.json["checkins"]["last_error"] == "OperationalError"
    assert "db.internal" not in json.dumps(res.json)


def test_head_never_registers_a_server(testapp, dbsession):
    from eportal_core.models import Server
    from eportal_core.services.keys import create_key
    create_key(dbsession, "headkey")
    dbsession.commit()
    before = dbsession.query(Server).count()
    testapp.head("/admin/api/kcare/register_server.json?key=headkey", status=405)
    testapp.head("/admin/api/kcare/register_server.plain?key=headkey", status=405)
    assert dbsession.query(Server).count() == before
