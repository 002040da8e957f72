#!/usr/bin/env python3
"""Agent-path throughput of a real ``eportal serve``, driven by ``eportal-sim``, on SQLite and PostgreSQL.

    .venv/bin/python bench/fleet_bench.py [--backend sqlite postgresql] [--servers 5000]
        [--duration 10] [--rounds 2] [--threads 8] [--no-pinned]

For each backend: a fresh portal (``eportal init`` + ``eportal serve``, scheduler on, ``--threads``
worker threads), one unlimited key, then with the simulator (a separate process, so client and
server do not share a GIL):

1. registration rate: ``eportal-sim register -n SERVERS -c 16``;
2. in the same run, alternating, each for ``--duration`` seconds:
   ``GET /admin/ping`` (the bare text route: no database, no session) at 16 connections,
   check-ins (``POST /admin/api/kcare/checkin``) at 16, the bare route at 64, check-ins at 64, and
   ``GET /<kernel_id>/latest.v2`` (HTTP Basic user = server_id) at 64; ``--rounds`` times;
3. all of 2 twice: with client and server sharing the machine's CPUs as the scheduler pleases
   ("shared"), and pinned with taskset: portal and database on CPU 0, the client on CPU 1 ("pinned").

Reported per run: req/s, p50/p99 latency, the portal's CPU time per request (from /proc: what a
request costs the server, whatever the client's speed), and the ratio check-in / bare at the same
connection count (the issue's target: >= 70% at 64 connections). The summary is printed and
written as JSON to ``bench/results/fleet-<backend>-<date>.json``.

PostgreSQL here is a throw-away cluster run with fsync=off, synchronous_commit=off and
full_page_writes=off (the test harness' settings): its numbers are flattered.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import (
    BACKENDS,
    VENV_BIN,
    Portal,
    ThrowAwayPostgres,
    all_cpus,
    cpu_seconds,
    machine,
    pin,
    system_busy_seconds,
    today,
    tree_cpu_seconds,
    wait_for_quiet,
    write_result,
)

#: (kind, connections) of one round, in the order they run
SEQUENCE = (("bare", 16), ("checkin", 16), ("bare", 64), ("checkin", 64), ("latest", 64))
TARGET_RATIO = 0.70


def child_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_sim(args: list[str], *, client_cpus: str | None, timeout: float) -> tuple[dict, float, int]:
    """``eportal-sim ARGS --json --no-progress`` -> (its JSON summary, its CPU seconds, exit code)."""
    cmd = [str(VENV_BIN / "eportal-sim"), *args, "--json", "--no-progress"]
    if client_cpus is not None:
        cmd = ["taskset", "-c", client_cpus, *cmd]
    before = child_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    used = child_cpu() - before
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"eportal-sim {' '.join(args)} exited {proc.returncode} without a summary:\n"
                           f"{proc.stdout}{proc.stderr}") from None
    return data, used, proc.returncode


class Bench:
    def __init__(self, backend: str, opts):
        self.backend = backend
        self.opts = opts
        self.base = Path(tempfile.mkdtemp(prefix=f"eportal-fleet-bench-{backend}-"))
        self.pg: ThrowAwayPostgres | None = None
        self.portal: Portal | None = None
        self.state = self.base / "fleet.json"

    # --- set-up ----------------------------------------------------------------------------------

    def start(self) -> dict:
        url = None
        info = {}
        if self.backend == "postgresql":
            self.pg = ThrowAwayPostgres()
            url = self.pg.start()
            info = {"postgresql": self.pg.version(), "postgresql_settings": ThrowAwayPostgres.SETTINGS}
        self.portal = Portal(self.base / "portal", sqlalchemy_url=url, threads=self.opts.threads,
                             settings={"eportal.scheduler": "true"})
        self.portal.start()
        self.portal.run_cli("eportal", "--ini", str(self.portal.ini), "key", "-a", "bench",
                            "--server-limit", "0", "--note", "fleet_bench")
        return info

    def stop(self) -> None:
        if self.portal is not None:
            self.portal.stop()
        if self.pg is not None:
            self.pg.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    # --- pinning ---------------------------------------------------------------------------------

    def pin_server_side(self, cpus: str) -> bool:
        ok = pin(self.portal.process.pid, cpus)
        if self.pg is not None and self.pg.postmaster_pid:
            ok &= pin(self.pg.postmaster_pid, cpus, tree=True)
        return ok

    def server_cpu(self) -> tuple[float, float]:
        db = tree_cpu_seconds(self.pg.postmaster_pid) if self.pg is not None and self.pg.postmaster_pid else 0.0
        return cpu_seconds(self.portal.process.pid), db

    # --- runs ------------------------------------------------------------------------------------

    def register(self) -> dict:
        n = self.opts.servers
        s0, d0 = self.server_cpu()
        data, client, code = run_sim(["register", "--url", self.portal.url, "--key", "bench", "-n", str(n),
                                      "-c", "16", "--state", str(self.state)], client_cpus=None, timeout=3600)
        s1, d1 = self.server_cpu()
        if data.get("registered") != n:
            raise RuntimeError(f"registered {data.get('registered')} of {n}: {data}")
        return self._row("register", 16, data, client, s1 - s0, d1 - d0, code)

    def one(self, kind: str, conns: int, duration: float, client_cpus: str | None) -> dict:
        if kind == "bare":
            args = ["bare", "--url", f"{self.portal.url}/admin/ping"]
        else:
            args = ["checkin", "--state", str(self.state), "--url", self.portal.url, "--mode", kind]
        s0, d0 = self.server_cpu()
        b0 = system_busy_seconds()
        data, client, code = run_sim([*args, "-c", str(conns), "-d", str(duration)], client_cpus=client_cpus,
                                     timeout=duration * 10 + 60)
        busy = system_busy_seconds() - b0
        s1, d1 = self.server_cpu()
        if kind != "bare":
            time.sleep(1.5)  # let the check-in flusher write what the run left, outside the next run
        return self._row(kind, conns, data, client, s1 - s0, d1 - d0, code, busy)

    def _row(self, kind, conns, data, client_cpu, server_cpu, db_cpu, code, busy=None) -> dict:
        n = max(1, data["requests"])
        other = None
        if busy is not None:  # CPU the rest of the machine used meanwhile (other jobs distort the figures)
            other = round(max(0.0, busy - server_cpu - db_cpu - client_cpu) / max(data["elapsed_s"], 0.001), 2)
        return {
            "other_cpus_busy": other,
            "kind": kind, "connections": conns, "requests": data["requests"], "rps": data["rps"],
            "p50_ms": data["latency_ms"]["p50"], "p99_ms": data["latency_ms"]["p99"],
            "status": data["status"], "errors": data["errors"], "exit_code": code,
            "elapsed_s": data["elapsed_s"],
            "server_cpu_s": round(server_cpu, 2), "server_cpu_us_per_req": round(server_cpu / n * 1e6, 1),
            "db_cpu_s": round(db_cpu, 2), "client_cpu_s": round(client_cpu, 2),
        }

    def phase(self, name: str, rounds: int, duration: float) -> list[dict]:
        pinned = name == "pinned"
        ncpu = __import__("os").cpu_count() or 1
        if pinned:
            if ncpu < 2 or not self.pin_server_side("0"):
                print(f"  [{self.backend}] cannot pin (need taskset and 2 CPUs): phase skipped", flush=True)
                return []
            client_cpus = "1"
        else:
            self.pin_server_side(all_cpus())
            client_cpus = None
        wait_for_quiet(self.opts.wait_quiet)
        # warm-up: templates, pools, the first flushes
        self.one("bare", 16, 2, client_cpus)
        self.one("checkin", 16, 2, client_cpus)
        rows = []
        for r in range(1, rounds + 1):
            for kind, conns in SEQUENCE:
                row = self.one(kind, conns, duration, client_cpus)
                row.update(phase=name, round=r)
                rows.append(row)
                print(f"  [{self.backend} {name} r{r}] {kind:<8} c={conns:<3} {row['rps']:8.1f} req/s  "
                      f"p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms  "
                      f"server {row['server_cpu_us_per_req']:6.0f} us/req  other {row['other_cpus_busy']:.2f} CPUs  "
                      f"status {row['status']}"
                      f"{'  errors ' + str(row['errors']) if row['errors'] else ''}", flush=True)
        if pinned:
            self.pin_server_side(all_cpus())
        return rows


def summarize(rows: list[dict]) -> dict:
    """Per phase: mean req/s, p50, p99 and server CPU per (kind, connections), and the ratios."""
    out = {}
    for phase in sorted({r["phase"] for r in rows}):
        cells = {}
        for kind, conns in SEQUENCE:
            sel = [r for r in rows if r["phase"] == phase and r["kind"] == kind and r["connections"] == conns]
            if not sel:
                continue
            cells[f"{kind}@{conns}"] = {
                "rps": round(statistics.mean(r["rps"] for r in sel), 1),
                "p50_ms": round(statistics.mean(r["p50_ms"] for r in sel), 2),
                "p99_ms": round(statistics.mean(r["p99_ms"] for r in sel), 2),
                "server_cpu_us_per_req": round(statistics.mean(r["server_cpu_us_per_req"] for r in sel), 1),
                "other_cpus_busy": round(statistics.mean(r["other_cpus_busy"] or 0 for r in sel), 2),
                "rounds": len(sel),
            }
        ratios = {}
        for conns in (16, 64):
            for kind in ("checkin", "latest"):
                per_round = []
                for rnd in sorted({r["round"] for r in rows if r["phase"] == phase}):
                    pick = {(r["kind"], r["connections"]): r for r in rows if r["phase"] == phase and r["round"] == rnd}
                    if (kind, conns) in pick and ("bare", conns) in pick and pick[("bare", conns)]["rps"]:
                        per_round.append(pick[(kind, conns)]["rps"] / pick[("bare", conns)]["rps"])
                if per_round:
                    ratios[f"{kind}/bare@{conns}"] = {"mean": round(statistics.mean(per_round), 3),
                                                      "rounds": [round(x, 3) for x in per_round]}
        out[phase] = {"cells": cells, "ratios": ratios}
    return out


def print_table(backend: str, register: dict, summary: dict) -> None:
    print(f"\n=== {backend}: registration {register['rps']:.1f} servers/s at 16 connections "
          f"(p50 {register['p50_ms']:.1f} ms, p99 {register['p99_ms']:.1f} ms, "
          f"{register['server_cpu_us_per_req']:.0f} us server CPU per registration)")
    for phase, data in summary.items():
        print(f"--- {phase} ({'portal+db on CPU 0, client on CPU 1' if phase == 'pinned' else 'client and server share both CPUs'})")
        print(f"    {'run':<12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'server us/req':>14}")
        for name, c in data["cells"].items():
            print(f"    {name:<12} {c['rps']:>9.1f} {c['p50_ms']:>8.2f} {c['p99_ms']:>8.2f} {c['server_cpu_us_per_req']:>14.0f}")
        for name, ratio in data["ratios"].items():
            verdict = ""
            if name == "checkin/bare@64":
                verdict = "  target >= 70%: " + ("MET" if ratio["mean"] >= TARGET_RATIO else "MISSED")
            print(f"    ratio {name:<18} {100 * ratio['mean']:5.1f}%  (per round: "
                  f"{', '.join(f'{100 * x:.1f}%' for x in ratio['rounds'])}){verdict}")


def run_backend(backend: str, opts) -> dict:
    bench = Bench(backend, opts)
    started = time.time()
    try:
        info = bench.start()
        print(f"[{backend}] portal at {bench.portal.url} ({opts.threads} threads, scheduler on)"
              + (f"; {info['postgresql']} with {info['postgresql_settings']}" if info else ""), flush=True)
        wait_for_quiet(opts.wait_quiet)
        register = bench.register()
        print(f"  [{backend}] registered {opts.servers} servers: {register['rps']:.1f}/s", flush=True)
        rows = []
        for phase in ("shared",) + (() if opts.no_pinned else ("pinned",)):
            rows += bench.phase(phase, opts.rounds, opts.duration)
        time.sleep(2)
        health = bench.portal.health()
        summary = summarize(rows)
        print_table(backend, register, summary)
        print(f"    check-ins written by the portal: {health['checkins'].get('flushed')} "
              f"(flush errors {health['checkins'].get('errors')}, pending {health['checkins'].get('pending')})")
        result = {
            "bench": "fleet", "date": today(), "backend": backend, "machine": machine(), **info,
            "notes": [
                "client (eportal-sim, a separate process) and server run on the same machine; "
                f"with {__import__('os').cpu_count()} CPUs they compete in the 'shared' phase; "
                "'pinned' puts portal and database on CPU 0 and the client on CPU 1 (taskset)",
                "bare = GET /admin/ping (text/plain, no database, no session) of the same app, same run",
                "latest = GET /<kernel_id>/latest.v2 with Basic user=server_id; 404 answers are expected",
            ] + (["PostgreSQL ran with fsync=off, synchronous_commit=off, full_page_writes=off: flattered"]
                 if backend == "postgresql" else []),
            "options": {"servers": opts.servers, "duration_s": opts.duration, "rounds": opts.rounds,
                        "threads": opts.threads},
            "register": register, "runs": rows, "summary": summary,
            "checkins_after": health.get("checkins"), "wall_s": round(time.time() - started, 1),
        }
        path = write_result(f"fleet-{backend}-{today()}.json", result)
        print(f"    written to {path}")
        return result
    except Exception:
        if bench.portal is not None:
            print(bench.portal.log_tail(30), file=sys.stderr)
        raise
    finally:
        bench.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--servers", type=int, default=5000, help="servers to register (default 5000)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the alternating sequence per phase (default 2)")
    parser.add_argument("--threads", type=int, default=8, help="waitress worker threads (default 8, as eportal serve)")
    parser.add_argument("--no-pinned", action="store_true", help="skip the pinned phase")
    parser.add_argument("--wait-quiet", type=float, default=600,
                        help="wait up to S seconds for other processes to go quiet before each phase (default 600)")
    opts = parser.parse_args()
    m = machine()
    print(f"fleet bench: {m['host']}, {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, load {m['load_average_at_start']}")
    for backend in opts.backend:
        run_backend(backend, opts)


if __name__ == "__main__":
    main()
