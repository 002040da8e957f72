"""eportal-sim: fleet generation, stats, the HTTP client (against a local http.server), the CLI."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import string
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from eportal_core.services import ServiceError
from eportal_core.services.agents import parse_info
from eportal_core.services.tags import parse_tags
from eportal_sim import cli
from eportal_sim.client import RateLimiter, Request, UrlError, basic_auth, parse_url, run_requests
from eportal_sim.fleet import (
    ARM_CPUS,
    DISTROS,
    ServerInfo,
    SimServer,
    StateError,
    generate_fleet,
    kernel_id_of,
    load_state,
    save_state,
)
from eportal_sim.scenarios import checkin_fleet, register_fleet
from eportal_sim.stats import Stats, percentile

KERNEL_ID = re.compile(r"^[0-9a-f]{40}$")


# --- fleet generation -------------------------------------------------------------------------

def test_same_seed_same_fleet_and_prefix_stable():
    assert generate_fleet(300, 7) == generate_fleet(300, 7)
    assert generate_fleet(300, 7) != generate_fleet(300, 8)
    assert generate_fleet(500, 7)[:300] == generate_fleet(300, 7)
    assert generate_fleet(0, 7) == []


def test_hostnames_are_distinct_and_realistic():
    fleet = generate_fleet(2000, 5)
    names = [s.hostname for s in fleet]
    assert len(set(names)) == len(names)
    assert all(re.match(r"^[a-z0-9-]+-\d{3,}\.dc\d\.example\.net$", n) for n in names)
    roles = Counter(n.split(".")[0].rsplit("-", 1)[0] for n in names)
    assert {"web", "db", "k8s-node"} <= set(roles)
    assert fleet[0].hostname.endswith("-001." + fleet[0].hostname.split(".", 1)[1])


def test_kernel_id_is_sha1_of_proc_version_and_shared_by_a_kernel():
    assert kernel_id_of("Linux version x\n") == hashlib.sha1(b"Linux version x\n").hexdigest()
    fleet = generate_fleet(1000, 11)
    assert all(KERNEL_ID.match(s.kernel_id) for s in fleet)
    by_build: dict[tuple, set] = {}
    for s in fleet:
        by_build.setdefault((s.distro, s.release, s.version, s.machine), set()).add(s.kernel_id)
    assert all(len(ids) == 1 for ids in by_build.values()), "one kernel build, one kernel_id"
    # distinct builds, distinct ids (and many servers share a kernel, as on a real fleet)
    assert len({next(iter(ids)) for ids in by_build.values()}) == len(by_build)
    assert len(by_build) < len(fleet) / 5
    # the id is the sha1 of the distro's synthetic /proc/version for that kernel
    s = fleet[0]
    distro = next(d for d in DISTROS if d.name == s.distro and s.distro_version.startswith(d.version))
    kernel = next(k for k in distro.kernels if distro.release(k, s.machine) == s.release)
    text = distro.proc_version(kernel, s.machine)
    assert text.startswith(f"Linux version {s.release} (") and text.endswith(f"{s.version}\n")
    assert s.kernel_id == kernel_id_of(text)


RELEASE_PATTERNS = {
    ("Ubuntu", "20.04"): r"^5\.4\.0-\d+-generic$",
    ("Ubuntu", "22.04"): r"^5\.15\.0-\d+-generic$",
    ("Ubuntu", "24.04"): r"^6\.8\.0-\d+-generic$",
    ("Debian GNU/Linux", "11"): r"^5\.10\.0-\d+-(amd64|arm64)$",
    ("Debian GNU/Linux", "12"): r"^6\.1\.0-\d+-(amd64|arm64)$",
    ("CentOS Linux", "7"): r"^3\.10\.0-1160(\.\d+)*\.el7\.x86_64$",
    ("Amazon Linux", "2"): r"^(4\.14|5\.10)\.\d+-[\d.]+\.amzn2\.(x86_64|aarch64)$",
}


def test_distro_and_kernel_are_consistent():
    fleet = generate_fleet(3000, 2)
    for s in fleet:
        key = (s.distro, s.distro_version)
        if s.distro in ("Red Hat Enterprise Linux", "AlmaLinux", "Rocky Linux"):
            major, minor = s.distro_version.split(".")
            base = {"8": r"4\.18\.0", "9": r"5\.14\.0"}[major]
            assert re.match(rf"^{base}-[\d.]+\.el{major}_{minor}\.{s.machine}$", s.release), s
        else:
            assert re.match(RELEASE_PATTERNS[key], s.release), s
        if s.distro == "Debian GNU/Linux":
            assert s.release.endswith("-amd64" if s.machine == "x86_64" else "-arm64"), s
            assert "Debian" in s.version
        if s.distro == "Ubuntu":
            assert "-Ubuntu SMP" in s.version
        if s.release.endswith((".x86_64", ".aarch64")):
            assert s.release.endswith("." + s.machine), s
        assert s.euname == s.release
        assert s.machine in ("x86_64", "aarch64")
        assert (s.processor in ARM_CPUS) == (s.machine == "aarch64"), s
        assert s.virt in ("kvm", "vmware", "none", "xen", "hyperv")
        assert re.match(r"^2\.\d+-\d+$", s.kcare_version)
        assert s.uptime >= 300
        assert s.patch_type in ("default", "extra", "free")
        assert s.patch_level in (-1, 1, 2, 3, 4, 5)
    # varied: every distribution, both architectures, every virt, mostly "default"
    assert {s.distro for s in fleet} == {d.name for d in DISTROS}
    majors = {(s.distro, s.distro_version if s.distro == "Ubuntu" else s.distro_version.split(".")[0]) for s in fleet}
    assert majors == {(d.name, d.version) for d in DISTROS}
    assert {s.machine for s in fleet} == {"x86_64", "aarch64"}
    assert {s.virt for s in fleet} == {"kvm", "vmware", "none", "xen", "hyperv"}
    types = Counter(s.patch_type for s in fleet)
    assert types["default"] > 0.7 * len(fleet) and types["extra"] and types["free"]
    assert not any(s.machine == "aarch64" for s in fleet if s.distro == "CentOS Linux")


def test_every_generated_server_passes_the_portal_validation():
    fleet = generate_fleet(2000, 13)
    for s in fleet:
        info = parse_info(s.params())
        assert info["kernel_id"] == s.kernel_id
        assert info["hostname"] == s.hostname and info["release"] == s.release
        assert info["patch_level"] == (None if s.patch_level == -1 else s.patch_level)
        assert info["uptime"] == s.uptime and info["patch_type"] == s.patch_type
        if s.tags is not None:
            tags = parse_tags(s.tags)
            assert tags and ("env", tags[0][1]) == tags[0] and tags[0][1] in ("prod", "staging", "dev")
            assert info["tags"] == s.tags
        else:
            assert "tags" not in info
    # the check-in form leaves the tags out
    assert "tags" not in fleet[0].params(tags=False)
    # a plain tag ("ubuntu") and name:value tags both occur
    all_tags = [t for s in fleet if s.tags for t in parse_tags(s.tags)]
    assert any(v == "" for _, v in all_tags) and any(n == "team" for n, _ in all_tags)


def test_tags_ratio():
    assert all(s.tags is None for s in generate_fleet(300, 1, tags_ratio=0))
    assert all(s.tags for s in generate_fleet(300, 1, tags_ratio=1))
    half = sum(1 for s in generate_fleet(1000, 1, tags_ratio=0.5) if s.tags)
    assert 400 < half < 600
    with pytest.raises(ValueError):
        generate_fleet(1, 1, tags_ratio=1.5)


def test_state_file_round_trip(tmp_path):
    servers = [SimServer(f"A{i:015d}", info) for i, info in enumerate(generate_fleet(20, 3))]
    path = tmp_path / "fleet.json"
    save_state(path, servers, url="http://x:1", seed=3)
    loaded, meta = load_state(path)
    assert loaded == servers and meta["url"] == "http://x:1" and meta["seed"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["fleet.json"], "no temporary file left behind"
    save_state(path, servers[:2])  # replaced, not appended
    assert len(load_state(path)[0]) == 2
    with pytest.raises(StateError, match="no such file"):
        load_state(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(StateError, match="cannot read"):
        load_state(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"servers": []}')
    with pytest.raises(StateError, match="not an eportal-sim fleet"):
        load_state(tmp_path / "other.json")
    assert ServerInfo.from_dict({**servers[0].info.__dict__, "unknown": 1}) == servers[0].info


# --- stats ------------------------------------------------------------------------------------

def test_percentiles():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 90) == pytest.approx(90.1)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 0) == 1 and percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0], 50) == 1.5
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_stats_summary():
    s = Stats(concurrency=4, rate=0)
    s.status.update({200: 6, 404: 2})
    s.errors["ConnectionRefusedError"] += 2
    s.latencies.extend([0.001 * v for v in (1, 2, 3, 4, 5, 6, 7, 8)])
    s.elapsed = 2.0
    assert (s.answered, s.error_count, s.requests, s.rps) == (8, 2, 10, 5.0)
    d = s.to_dict()
    assert d["status"] == {"200": 6, "404": 2} and d["errors"] == 2 and d["requests"] == 10
    assert d["latency_ms"]["p50"] == pytest.approx(4.5) and d["latency_ms"]["max"] == pytest.approx(8.0)
    assert d["rps"] == 5.0 and json.loads(json.dumps(d)) == d
    assert s.unexpected({200}) == 2 and s.unexpected({200, 404}) == 0
    text = s.format_text("title")
    assert "200=6  404=2" in text and "p99" in text and "ConnectionRefusedError=2" in text
    assert d["body_bytes"] == 0 and "received:    0.0 MiB" in text
    other = Stats()
    other.status[200] += 1
    other.latencies.append(0.5)
    other.body_bytes = 3 * 2**20
    s.merge(other)
    assert s.status[200] == 7 and len(s.latencies) == 9 and s.body_bytes == 3 * 2**20
    assert "received:    3.0 MiB of bodies (1.5 MiB/s)" in s.format_text()
    empty = Stats()
    assert empty.latency_ms()["p50"] is None and empty.rps == 0.0 and "p50 -" in empty.format_text()


# --- a local HTTP server ----------------------------------------------------------------------

BLOB = bytes(range(256)) * 1024  # 256 KiB


class FakePortal(ThreadingHTTPServer):
    """Enough of the agent endpoints to drive the simulator, validating what it sends with the
    portal's own validators; counts requests and the client connections they came on."""
    daemon_threads = True
    request_queue_size = 256

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.requests = 0
        self.peers: set = set()
        self.paths: Counter = Counter()
        self.servers: dict[str, dict] = {}  # server_id -> info
        self.checkins: Counter = Counter()
        self.latest: Counter = Counter()
        self.auth: Counter = Counter()  # Authorization headers of /blob requests
        self.keys = {"good": 0, "full": 3, "off": 1}
        self.close_after_each = False
        self.send_close_header = False

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def log_message(self, *args):
        pass

    def _answer(self, status: int, body: bytes, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if self.server.send_close_header:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        if self.server.close_after_each:
            self.close_connection = True  # close without telling: a stale kept-alive connection

    def _params(self) -> dict:
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            params.update(parse_qsl(self.rfile.read(length).decode()))
        return params

    def do_GET(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def _handle(self):
        fake: FakePortal = self.server
        path = urlsplit(self.path).path
        params = self._params()
        with fake.lock:
            fake.requests += 1
            fake.peers.add(self.client_address)
            fake.paths[path] += 1
        if path == "/admin/api/kcare/register_server.json":
            try:
                info = parse_info(params)
            except ServiceError as exc:
                return self._answer(400, json.dumps({"error": str(exc)}).encode())
            code = fake.keys.get(params.get("key"), 2)
            answer = {"code": code}
            if code == 0:
                sid = secrets.choice(string.ascii_letters) + "".join(
                    secrets.choice(string.ascii_letters + string.digits) for _ in range(15))
                with fake.lock:
                    fake.servers[sid] = info
                answer["server_id"] = sid
            return self._answer(200, json.dumps(answer).encode())
        if path == "/admin/api/kcare/checkin":
            sid = params.get("server_id")
            if sid not in fake.servers:
                return self._answer(404, b'{"error": "unknown-server"}')
            try:
                info = parse_info(params)
            except ServiceError as exc:
                return self._answer(400, json.dumps({"error": str(exc)}).encode())
            assert "tags" not in info
            with fake.lock:
                fake.servers[sid].update(info)
                fake.checkins[sid] += 1
            return self._answer(200, b'{"result": "ok"}')
        m = re.match(r"^/([0-9a-f]{40})/latest\.v2$", path)
        if m:
            auth = self.headers.get("Authorization", "")
            user = base64.b64decode(auth.split(" ", 1)[1]).decode().partition(":")[0] if auth else ""
            with fake.lock:
                if user in fake.servers and fake.servers[user]["kernel_id"] == m.group(1):
                    fake.latest[user] += 1
                if "info" in params:
                    fake.servers[user].update(parse_info(json.loads(base64.urlsafe_b64decode(params["info"]))))
            if m.group(1) < "8":
                return self._answer(200, b"3", "text/plain")
            return self._answer(404, b"no patches", "text/plain")
        if path == "/hello":
            return self._answer(200, b"hello", "text/plain")
        if path == "/blob":  # a patch file: only for a known server (HTTP Basic user, no password)
            auth = self.headers.get("Authorization", "")
            with fake.lock:
                fake.auth[auth] += 1
            if auth != "Basic " + base64.b64encode(b"Zagent0000000001:").decode():
                return self._answer(401, b"who are you", "text/plain")
            return self._answer(200, BLOB, "application/octet-stream")
        return self._answer(404, b"not found", "text/plain")


@pytest.fixture
def fake():
    server = FakePortal()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port_url():
    probe = FakePortal()
    url = probe.url
    probe.server_close()
    return url


# --- the client -------------------------------------------------------------------------------

def test_parse_url():
    e = parse_url("http://127.0.0.1:8000")
    assert (e.scheme, e.host, e.port, e.prefix, e.own_target) == ("http", "127.0.0.1", 8000, "", "/")
    e = parse_url("https://portal.example.net/eportal/?a=1")
    assert (e.port, e.prefix, e.target("/admin/x"), e.own_target) == (443, "/eportal", "/eportal/admin/x", "/eportal?a=1")
    assert parse_url("http://[::1]:81/").netloc == "[::1]:81"
    for bad in ("", "127.0.0.1:8000", "ftp://x", "http://", "http://x:99999", "http://u:p@x/", "http://x/#f"):
        with pytest.raises(UrlError):
            parse_url(bad)


def test_keep_alive_connections_are_reused(fake):
    stats = run_requests(fake.url + "/hello", requests=200, concurrency=4)
    assert fake.requests == 200
    assert stats.status == Counter({200: 200}) and stats.error_count == 0 and stats.requests == 200
    assert 1 <= len(fake.peers) <= 4, "one connection per worker, kept alive"
    assert stats.connections == len(fake.peers) and stats.retries == 0
    assert len(stats.latencies) == 200 and stats.elapsed > 0 and stats.concurrency == 4


def test_workers_never_exceed_the_requests(fake):
    stats = run_requests(fake.url + "/hello", requests=3, concurrency=64)
    assert stats.concurrency == 3 and fake.requests == 3


def test_connection_close_answers_reconnect(fake):
    fake.send_close_header = True
    stats = run_requests(fake.url + "/hello", requests=30, concurrency=3)
    assert stats.status[200] == 30 and stats.error_count == 0
    assert stats.connections == 30 == len(fake.peers)


def test_stale_kept_alive_connection_is_retried_once(fake):
    fake.close_after_each = True  # the server drops the connection after each answer, silently
    stats = run_requests(fake.url + "/hello", requests=10, concurrency=1)
    assert stats.status[200] == 10 and stats.error_count == 0
    assert fake.requests == 10 and stats.retries == 9 and stats.connections == 10


def test_any_status_is_an_answer_not_an_error(fake):
    stats = run_requests(fake.url + "/nowhere", requests=20, concurrency=2)
    assert stats.status == Counter({404: 20}) and stats.error_count == 0


def test_transport_errors_are_counted_not_raised(closed_port_url):
    stats = run_requests(closed_port_url, requests=5, concurrency=2, timeout=2)
    assert stats.answered == 0 and stats.errors == Counter({"ConnectionRefusedError": 5})
    assert stats.latencies == []


def test_request_factory_and_callback(fake):
    seen = []
    lock = threading.Lock()

    def make(i):
        return Request("POST" if i % 2 else "GET", "/hello" if i % 3 else "/nowhere", b"x=1" if i % 2 else None)

    def on_response(i, req, status, body):
        with lock:
            seen.append((i, status, body))

    stats = run_requests(fake.url, make, requests=30, concurrency=5, on_response=on_response)
    assert sorted(i for i, _, _ in seen) == list(range(30))
    assert all((status, body) == ((200, b"hello") if i % 3 else (404, b"not found")) for i, status, body in seen)
    assert stats.status == Counter({200: 20, 404: 10})


def test_a_failing_callback_stops_the_run_and_raises(fake):
    def boom(i, req, status, body):
        raise RuntimeError("callback bug")

    with pytest.raises(RuntimeError, match="callback bug"):
        run_requests(fake.url + "/hello", requests=1000, concurrency=4, on_response=boom)
    assert fake.requests < 1000


def test_rate_limit_is_respected(fake):
    started = time.perf_counter()
    stats = run_requests(fake.url + "/hello", requests=20, concurrency=4, rate=50)
    elapsed = time.perf_counter() - started
    assert stats.status[200] == 20
    assert elapsed >= 0.3, "20 requests at 50/s need about 0.38 s"
    assert elapsed < 10


def test_rate_limiter_spaces_reservations():
    limiter = RateLimiter(100)
    times = [limiter.reserve() for _ in range(11)]
    assert all(b >= a for a, b in zip(times, times[1:], strict=False))
    assert times[-1] - times[0] >= 10 * 0.01 - 1e-9
    bursty = RateLimiter(100, burst=5)
    first = [bursty.reserve() for _ in range(5)]
    assert first[-1] - first[0] < 0.01, "a full bucket lets a burst through at once"
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_duration_stops_the_run(fake):
    started = time.perf_counter()
    stats = run_requests(fake.url + "/hello", duration=0.3, concurrency=2)
    assert 0.25 <= time.perf_counter() - started < 5
    assert stats.requests > 0 and stats.error_count == 0
    slow = run_requests(fake.url + "/hello", duration=0.5, concurrency=2, rate=20)
    assert 1 <= slow.requests <= 12


def test_run_requests_validates_its_options(fake):
    for kwargs in ({}, {"requests": 1, "concurrency": 0}, {"requests": 1, "concurrency": 1025},
                   {"requests": 1, "rate": -1}, {"duration": 0}, {"requests": -1}, {"requests": 1, "timeout": 0}):
        with pytest.raises(ValueError):
            run_requests(fake.url, **kwargs)


# --- the agent scenarios ----------------------------------------------------------------------

def test_register_then_check_in(fake):
    infos = generate_fleet(40, 9)
    result = register_fleet(fake.url, "good", infos, concurrency=8)
    assert len(result.servers) == 40 and result.failed == 0 and result.codes == Counter({"0": 40})
    assert [s.info for s in result.servers] == infos
    assert {s.server_id for s in result.servers} == set(fake.servers)
    assert {fake.servers[s.server_id]["hostname"] for s in result.servers} == {i.hostname for i in infos}

    stats = checkin_fleet(fake.url, result.servers, requests=120, concurrency=8)
    assert stats.status == Counter({200: 120})
    assert set(fake.checkins.values()) == {3}, "round robin: every server three times"
    # uptime grows with the clock, unless the server rebooted meanwhile (rarely)
    assert all(fake.servers[s.server_id]["uptime"] >= s.info.uptime or fake.servers[s.server_id]["uptime"] < 120
               for s in result.servers)
    assert sum(fake.servers[s.server_id]["uptime"] >= s.info.uptime for s in result.servers) > 30
    assert infos == generate_fleet(40, 9), "the caller's fleet is not modified"

    stats = checkin_fleet(fake.url, result.servers, mode="latest", requests=80, concurrency=4)
    assert stats.error_count == 0 and stats.answered == 80 and set(stats.status) <= {200, 404}
    assert sum(fake.latest.values()) == 80
    stats = checkin_fleet(fake.url, result.servers, mode="latest", requests=40, send_info=True)
    assert stats.error_count == 0 and stats.answered == 40


def test_refused_registrations(fake):
    result = register_fleet(fake.url, "full", generate_fleet(5, 1))
    assert result.servers == [] and result.failed == 5 and result.codes == Counter({"3": 5})
    result = register_fleet(fake.url, "nope", generate_fleet(5, 1))
    assert result.codes == Counter({"2": 5})


# --- the command line -------------------------------------------------------------------------

def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_register_checkin_latest_bare(fake, tmp_path, capsys):
    state = str(tmp_path / "fleet.json")
    code, out, err = run_cli(capsys, "register", "--url", fake.url, "--key", "good", "-n", "50",
                             "--concurrency", "8", "--state", state, "--seed", "4", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["ok"] and summary["registered"] == 50 and summary["status"] == {"200": 50}
    assert summary["codes"] == {"0": 50} and summary["requests"] == 50 and summary["errors"] == 0
    assert set(summary["latency_ms"]) >= {"p50", "p90", "p99", "max"}
    servers, meta = load_state(state)
    assert len({s.server_id for s in servers}) == 50 and meta["url"] == fake.url and meta["seed"] == 4
    assert [s.info for s in servers] == generate_fleet(50, 4)

    code, out, err = run_cli(capsys, "checkin", "--url", fake.url, "--state", state, "--requests", "100", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["status"] == {"200": 100} and summary["mode"] == "checkin" and summary["servers"] == 50
    assert set(fake.checkins.values()) == {2}

    # --url defaults to the one the fleet was registered with; 404 is a valid answer to latest.v2
    code, out, err = run_cli(capsys, "checkin", "--state", state, "--mode", "latest", "--duration", "0.3")
    assert code == 0, err
    assert "requests:" in out and "latency ms:" in out and "p99" in out and "errors:      0" in out
    assert sum(fake.latest.values()) > 0

    code, out, err = run_cli(capsys, "bare", "--url", fake.url + "/hello", "--requests", "25", "--json")
    assert code == 0 and json.loads(out)["status"] == {"200": 25}
    code, out, err = run_cli(capsys, "bare", "--url", fake.url + "/nowhere", "--requests", "5")
    assert code == 1 and "404=5" in out and "FAILURES" in out


def test_basic_auth():
    assert basic_auth("Zagent0000000001") == "Basic " + base64.b64encode(b"Zagent0000000001:").decode()
    assert basic_auth("admin:s3:cret") == "Basic " + base64.b64encode(b"admin:s3:cret").decode()


def test_bodies_are_read_to_the_end_and_counted(fake):
    stats = run_requests(fake.url + "/blob", requests=12, concurrency=3,
                         headers={"Authorization": basic_auth("Zagent0000000001")})
    assert stats.status == Counter({200: 12}) and stats.body_bytes == 12 * len(BLOB)
    # one connection per worker that got work (a worker may find the 12 requests already taken);
    # without keep-alive after a large body there would be one per request
    assert 1 <= stats.connections <= 3, "kept alive after a large body"
    assert stats.to_dict()["body_bytes"] == 12 * len(BLOB)


def test_cli_bare_with_basic_credentials(fake, capsys):
    code, out, err = run_cli(capsys, "bare", "--url", fake.url + "/blob", "--basic", "Zagent0000000001",
                             "--requests", "8", "-c", "2", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["status"] == {"200": 8} and summary["body_bytes"] == 8 * len(BLOB)
    assert fake.auth == Counter({basic_auth("Zagent0000000001"): 8})
    code, out, err = run_cli(capsys, "bare", "--url", fake.url + "/blob", "--basic", "Zother000000000:pw",
                             "--requests", "3")
    assert code == 1 and "401=3" in out and "FAILURES" in out
    assert fake.auth[basic_auth("Zother000000000:pw")] == 3
    code, out, err = run_cli(capsys, "bare", "--url", fake.url + "/blob", "--requests", "2")
    assert code == 1 and "401=2" in out and fake.auth[""] == 2, "no credentials without --basic"


def test_cli_refused_registration_keeps_the_old_state(fake, tmp_path, capsys):
    state = tmp_path / "fleet.json"
    state.write_text("old")
    code, out, err = run_cli(capsys, "register", "--url", fake.url, "--key", "off", "-n", "3", "--state", str(state))
    assert code == 1 and "1 (key disabled)=3" in out and "no server was registered" in err
    assert state.read_text() == "old"


def test_cli_checkin_against_unknown_servers_fails(fake, tmp_path, capsys):
    state = tmp_path / "fleet.json"
    save_state(state, [SimServer("Zunknown00000000", generate_fleet(1, 1)[0])], url=fake.url)
    code, out, err = run_cli(capsys, "checkin", "--state", str(state), "--requests", "3")
    assert code == 1 and "404=3" in out and "does not know these servers" in err


@pytest.mark.parametrize("argv, message", [
    (["register", "--url", "URL", "--key", "k", "-n", "0"], "out of range"),
    (["register", "--url", "URL", "--key", "k", "-n", "x"], "not a whole number"),
    (["register", "--url", "URL", "--key", "k", "-n", "2", "--tags-ratio", "2"], "tags-ratio"),
    (["bare", "--url", "URL", "--concurrency", "0"], "out of range"),
    (["bare", "--url", "URL", "--concurrency", "1025"], "out of range"),
    (["bare", "--url", "URL", "--rate", "-1"], "must be >= 0"),
    (["bare", "--url", "URL", "--rate", "nan"], "must be >= 0"),
    (["bare", "--url", "URL", "--requests", "5", "--duration", "1"], "not allowed with"),
    (["checkin", "--mode", "fast"], "invalid choice"),
    (["register", "--url", "URL", "-n", "2"], "--key"),
])
def test_cli_validates_options(capsys, argv, message, fake):
    argv = [fake.url if a == "URL" else a for a in argv]
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_bad_url_and_unreachable_portal(capsys, closed_port_url, tmp_path):
    code, out, err = run_cli(capsys, "bare", "--url", "localhost:8000", "--requests", "1")
    assert code == 2 and err.startswith("eportal-sim: error: bad URL") and len(err.splitlines()) == 1
    code, out, err = run_cli(capsys, "register", "--url", closed_port_url, "--key", "k", "-n", "1",
                             "--state", str(tmp_path / "f.json"))
    assert code == 1 and "cannot connect to" in err and len(err.splitlines()) == 1 and out == ""
    code, out, err = run_cli(capsys, "bare", "--url", "http://no-such-host.invalid/", "--requests", "1")
    assert code == 1 and "cannot resolve host" in err and len(err.splitlines()) == 1
    code, out, err = run_cli(capsys, "checkin", "--url", closed_port_url, "--state", str(tmp_path / "none.json"))
    assert code == 1 and "no such file" in err and len(err.splitlines()) == 1
