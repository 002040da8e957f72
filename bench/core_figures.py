#!/usr/bin/env python3
"""Core figures for eportal, measured on this machine and printed as plain text.

    .venv/bin/python bench/core_figures.py [--skip-install] [--requests 200] [--logins 20]

(a) install time: ``python3 -m venv`` + ``pip install -e <checkout>`` into a fresh venv
    (what ``make install`` does; pip reads the machine's configured package index);
(b) RSS of a running ``eportal serve`` (SQLite) right after start-up and after the login-page requests;
(c) latency of ``GET /admin/login`` (sequential, one keep-alive connection, and fresh connections)
    and of ``POST /admin/login`` (a real login: CSRF token, one argon2 verify, a new session row).
"""
from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT / "src"))

from eportal_core.testing.live import LiveServer  # noqa: E402


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def summary(name: str, ms: list[float]) -> str:
    return (f"{name:<46} n={len(ms):<4} p50 {percentile(ms, 50):7.2f} ms   p95 {percentile(ms, 95):7.2f} ms   "
            f"max {max(ms):7.2f} ms")


def vm_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


# --- (a) ---------------------------------------------------------------------------------------

def measure_install(python: str) -> None:
    target = Path(tempfile.mkdtemp(prefix="eportal-bench-venv-"))
    try:
        t0 = time.perf_counter()
        subprocess.run([python, "-m", "venv", str(target)], check=True)
        t1 = time.perf_counter()
        result = subprocess.run([str(target / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                                 "-e", str(CHECKOUT)], capture_output=True, text=True)
        t2 = time.perf_counter()
        if result.returncode != 0:
            print(f"(a) pip install failed ({result.returncode}):\n{result.stdout}{result.stderr}")
            return
        check = subprocess.run([str(target / "bin" / "eportal"), "--help"], capture_output=True, text=True)
        count = subprocess.run([str(target / "bin" / "pip"), "list", "--format=freeze", "--disable-pip-version-check"],
                               capture_output=True, text=True).stdout.count("==")
        print(f"(a) fresh venv install ({python} -m venv; pip install -e {CHECKOUT}):")
        print(f"    python -m venv                {t1 - t0:6.1f} s")
        print(f"    pip install -e .              {t2 - t1:6.1f} s   ({count} distributions; "
              f"'eportal --help' {'works' if check.returncode == 0 else 'FAILS'})")
        print(f"    total                         {t2 - t0:6.1f} s")
    finally:
        shutil.rmtree(target, ignore_errors=True)


# --- (b), (c) ---------------------------------------------------------------------------------

def get(conn: http.client.HTTPConnection, path: str, headers: dict | None = None):
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    return resp, body


def login_once(host: str, port: int, password: str) -> float:
    """One full browser-like login on a new connection; returns the POST's latency in ms."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        resp, body = get(conn, "/admin/login")
        cookie = resp.getheader("Set-Cookie", "").split(";", 1)[0]
        token = re.search(rb'name="csrf_token"\s+value="([^"]+)"', body) or \
            re.search(rb'value="([^"]+)"\s+name="csrf_token"', body)
        assert cookie and token, "no session cookie or CSRF token on the login page"
        form = urlencode({"csrf_token": token.group(1).decode(), "next": "", "login": "admin", "password": password})
        t0 = time.perf_counter()
        conn.request("POST", "/admin/login", body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
        resp = conn.getresponse()
        resp.read()
        elapsed = (time.perf_counter() - t0) * 1000
        assert resp.status == 303, f"login answered {resp.status}"
        return elapsed
    finally:
        conn.close()


def measure_server(n_requests: int, n_logins: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="eportal-bench-"))
    server = LiveServer(base)
    try:
        t0 = time.perf_counter()
        server.start()
        started = time.perf_counter() - t0
        pid = server.process.pid
        split = urlsplit(server.url)
        time.sleep(1.0)  # let start-up settle (scheduler thread, first lease renewal)
        rss_start = vm_rss_kib(pid)

        conn = http.client.HTTPConnection(split.hostname, split.port, timeout=10)
        keepalive = []
        for _ in range(n_requests):
            t = time.perf_counter()
            resp, _ = get(conn, "/admin/login")
            keepalive.append((time.perf_counter() - t) * 1000)
            assert resp.status == 200
        conn.close()
        rss_after = vm_rss_kib(pid)

        fresh = []
        for _ in range(n_requests):
            t = time.perf_counter()
            c = http.client.HTTPConnection(split.hostname, split.port, timeout=10)
            resp, _ = get(c, "/admin/login")
            c.close()
            fresh.append((time.perf_counter() - t) * 1000)
            assert resp.status == 200
        logins = [login_once(split.hostname, split.port, server.admin_password) for _ in range(n_logins)]
        rss_end = vm_rss_kib(pid)

        print(f"    (init + serve until /admin/health answered: {started:.2f} s; SQLite, scheduler on, 8 threads)")
        print(f"(b) RSS of 'eportal serve' (pid {pid}, /proc/{pid}/status VmRSS):")
        print(f"    after start-up                {mib(rss_start)}")
        print(f"    after {n_requests} GET /admin/login     {mib(rss_after)}")
        print(f"    after {n_logins} POST /admin/login too   {mib(rss_end)}   (glibc keeps argon2's 19 MiB buffer per "
              f"worker thread; MALLOC_MMAP_THRESHOLD_=131072 avoids it)")
        print("(c) latency, sequential, client on the same machine:")
        print(f"    first GET /admin/login (templates compile)    {keepalive[0]:7.2f} ms")
        print("    " + summary("GET /admin/login, keep-alive connection", keepalive[1:]))
        print("    " + summary("GET /admin/login, new connection each", fresh))
        print("    " + summary("POST /admin/login (argon2 verify + session)", logins))
    finally:
        t = time.perf_counter()
        code = server.stop()
        print(f"    (SIGTERM -> exit {code} in {time.perf_counter() - t:.2f} s)")
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-install", action="store_true", help="skip (a), the fresh-venv install")
    parser.add_argument("--python", default="python3", help="interpreter for the fresh venv (default python3)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--logins", type=int, default=20)
    args = parser.parse_args()
    print(f"eportal core figures: {os.uname().nodename}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.2f}")
    if not args.skip_install:
        measure_install(args.python)
    measure_server(args.requests, args.logins)


if __name__ == "__main__":
    main()
