"""Shared pieces of the bench scripts: a real ``eportal serve`` with a chosen thread count, a
throw-away PostgreSQL, a logged-in HTTP client, CPU accounting and pinning, machine facts.

Not a test helper: benchmarks are scripts (``.venv/bin/python bench/<script>.py --help``).
"""
from __future__ import annotations

import http.client
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT / "src"))
RESULTS = CHECKOUT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent

from eportal_core.testing.live import START_TIMEOUT, LiveServer, LiveServerError, http_get  # noqa: E402

BACKENDS = ("sqlite", "postgresql")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the machine --------------------------------------------------------------------------------

def machine() -> dict:
    cpu = ""
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = found.group(1).strip() if found else ""
    except OSError:
        pass
    mem = ""
    try:
        kib = int(re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(), re.M).group(1))
        mem = f"{kib / 2**20:.0f} GiB"
    except (OSError, AttributeError):
        pass
    return {"host": platform.node(), "cpus": os.cpu_count(), "cpu": cpu, "memory": mem,
            "python": platform.python_version(), "kernel": platform.release(),
            "load_average_at_start": round(os.getloadavg()[0], 2)}


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def write_result(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


# --- CPU time and pinning -------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its live children (a PostgreSQL postmaster and its backends)."""
    return cpu_seconds(pid) + sum(cpu_seconds(c) for c in children(pid))


def pin(pid: int, cpus: str, *, tree: bool = False) -> bool:
    """Set the CPU affinity of every thread of ``pid`` (and of its children with ``tree``); True if it worked."""
    if not shutil.which("taskset"):
        return False
    ok = True
    for p in [pid] + (children(pid) if tree else []):
        ok &= subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(p)], capture_output=True).returncode == 0
    return ok


def system_busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine so far (all CPUs; /proc/stat, idle and iowait excluded)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def wait_for_quiet(max_wait: float, threshold: float = 0.25, window: float = 3.0) -> float:
    """Wait (at most ``max_wait`` s) until the machine is busy less than ``threshold`` CPUs over
    ``window`` seconds (other jobs distort a benchmark on a small machine); returns the last busy share."""
    deadline = time.monotonic() + max_wait
    while True:
        b0 = system_busy_seconds()
        time.sleep(window)
        busy = (system_busy_seconds() - b0) / window
        if busy < threshold or time.monotonic() >= deadline:
            if busy >= threshold:
                print(f"  (the machine is still busy: {busy:.2f} CPUs used by other processes; measuring anyway)",
                      flush=True)
            return round(busy, 2)
        print(f"  (waiting for a quiet machine: {busy:.2f} CPUs busy)", flush=True)


def all_cpus() -> str:
    return f"0-{(os.cpu_count() or 1) - 1}"


# --- PostgreSQL ------------------------------------------------------------------------------------

class ThrowAwayPostgres:
    """A PostgreSQL cluster in a temp dir on a free loopback port (the test harness' recipe, which
    runs it with fsync=off, synchronous_commit=off, full_page_writes=off: numbers are flattered)."""

    SETTINGS = "fsync=off, synchronous_commit=off, full_page_writes=off, max_connections=200"

    def __init__(self):
        from eportal_core.testing import PostgresServer, _pg_bin
        if _pg_bin() is None:
            raise SystemExit("PostgreSQL is not installed (no initdb under /usr/lib/postgresql)")
        self.base = Path(tempfile.mkdtemp(prefix="eportal-bench-pg-"))
        self.server = PostgresServer(self.base)
        self.admin_url = ""

    def start(self, database: str = "eportal") -> str:
        self.admin_url = self.server.start()
        return self.server.create_database(self.admin_url, database)

    @property
    def postmaster_pid(self) -> int | None:
        try:
            return int((self.base / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def version(self) -> str:
        out = subprocess.run([str(self.server.bin / "postgres"), "--version"], capture_output=True, text=True)
        return out.stdout.strip()

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.base, ignore_errors=True)


# --- the portal ----------------------------------------------------------------------------------

class Portal(LiveServer):
    """``eportal serve`` with ``--threads``, started in two steps so a database can be seeded
    between ``eportal init`` (:meth:`prepare`) and serving (:meth:`serve`)."""

    def __init__(self, base_dir, *, threads: int = 8, **kw):
        super().__init__(base_dir, **kw)
        self.threads = threads

    def prepare(self) -> Portal:
        from eportal_core.testing import free_port
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._write_ini()
        init = self.run_cli("eportal", "--ini", str(self.ini), "init", timeout=600)
        found = re.search(r"^admin password: (\S+)$", init.stdout, re.M)
        if found:
            self.admin_password = found.group(1)
        elif self.admin_password is None:
            pw = self.data_dir / "initial-admin-password"
            if pw.exists():
                self.admin_password = pw.read_text().split(":", 1)[1].strip()
        return self

    def serve(self) -> Portal:
        from eportal_core.testing import free_port
        for attempt in range(3):
            if attempt:
                self.port = free_port()
                self._write_ini()
            if self._spawn_and_wait():
                return self
        raise LiveServerError(f"eportal serve could not get a port:\n{self.log_tail()}")

    def start(self) -> Portal:
        return self.prepare().serve()

    def _spawn_and_wait(self) -> bool:
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "eportal"), "--ini", str(self.ini), "serve", "--host", "127.0.0.1",
             "--port", str(self.port), "--threads", str(self.threads)],
            stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env())
        deadline = time.monotonic() + START_TIMEOUT * 3
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._close_log()
                if "cannot listen" in self.log_tail(5):
                    return False
                raise LiveServerError(f"eportal serve exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                status, _, _ = http_get(self.url + "/admin/ping", timeout=1)
            except OSError:
                time.sleep(0.05)
                continue
            if status == 200:
                return True
            time.sleep(0.05)
        self.stop()
        raise LiveServerError(f"eportal serve did not answer /admin/ping in time:\n{self.log_tail()}")

    def health(self) -> dict:
        status, _, body = http_get(self.url + "/admin/health", timeout=10)
        data = json.loads(body)
        data["http_status"] = status
        return data


class Client:
    """One kept-alive HTTP/1.1 connection with a cookie jar of one cookie (the console session)."""

    def __init__(self, url: str, timeout: float = 120):
        parts = urlsplit(url)
        self.host, self.port, self.timeout = parts.hostname, parts.port, timeout
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        self.cookie = ""

    def request(self, method: str, path: str, body: str | None = None, headers: dict | None = None):
        hdrs = dict(headers or {})
        if self.cookie:
            hdrs["Cookie"] = self.cookie
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                if attempt:
                    raise
        cookie = resp.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return resp.status, resp, data

    def get(self, path: str):
        return self.request("GET", path)

    def login(self, username: str, password: str) -> None:
        status, _, body = self.get("/admin/login")
        token = re.search(rb'name="csrf_token"\s+value="([^"]+)"', body) or \
            re.search(rb'value="([^"]+)"\s+name="csrf_token"', body)
        if status != 200 or not token:
            raise RuntimeError(f"login page: {status}, no CSRF token")
        form = urlencode({"csrf_token": token.group(1).decode(), "next": "", "login": username, "password": password})
        status, _, _ = self.request("POST", "/admin/login", form,
                                    {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 303:
            raise RuntimeError(f"login as {username} answered {status}")

    def close(self) -> None:
        self.conn.close()


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]
