#!/usr/bin/env python3
"""Patch serving and patchset import of a real ``eportal serve``, on SQLite and PostgreSQL.

    .venv/bin/python bench/patch_bench.py [--backend sqlite postgresql] [--servers 1000]
        [--duration 8] [--rounds 2] [--threads 8] [--no-pinned] [--skip-load]
        [--import-size-mb 1024] [--import-file-kb 1024] [--bz2]

For each backend: a fresh portal (``eportal init`` + ``eportal serve``, scheduler on, ``--threads``
worker threads), one unlimited key, ``--servers`` servers registered with the simulator, and one
patchset (``.tar.gz``, level 1 with a 512 KiB ``kpatch.bin`` for every kernel of that fleet)
imported and enabled on ``main`` with ``kc.eportal kcare deploy``. Then:

1. serving, with ``eportal-sim`` (a separate process, so client and server do not share a GIL), in
   the same run and alternating, each for ``--duration`` seconds, at 16 then 64 connections: the
   bare route ``GET /admin/ping``; ``GET /<kernel_id>/latest.v2`` for the whole fleet (HTTP Basic
   user = server_id; answer 200 ``1``); ``GET /<kernel_id>/1/kpatch.bin`` (512 KiB, as one
   server); the bundled ``/admin/static/css/eportal.css``; and a 512 KiB file served by the same
   static view (placed in the package's ``static/`` folder for the run, removed afterwards);
   ``--rounds`` times; all of it "shared" (client and server share the CPUs) and "pinned" (portal
   and database on CPU 0, client on CPU 1, with taskset). Every body is read to its end on
   kept-alive connections, and every answer must be a 200 of the expected size.
2. import: a ``.tar.gz`` patchset of ``--import-size-mb`` MiB of incompressible payload
   (``--import-file-kb`` per kernel; written in streaming mode, never held in memory), imported
   and enabled with ``kc.eportal kcare deploy ARCHIVE`` in a subprocess: wall time, CPU time and
   peak RSS (``VmHWM`` of that process, sampled every 20 ms), beside the same command's start-up
   (``kcare list``); with ``--bz2`` also a ``.tar.bz2`` (slow: bzip2 -9 writes ~4 MB/s).

Reported per run: req/s, p50/p99 latency, MiB/s of bodies, the portal's CPU time per request (from
/proc), and the ratio of each run to the bare route at the same connection count. The summary is
printed and written as JSON to ``bench/results/patches-<backend>-<date>.json``.

PostgreSQL here is a throw-away cluster run with fsync=off, synchronous_commit=off and
full_page_writes=off (the test harness' settings): its numbers are flattered.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchlib import (
    BACKENDS,
    VENV_BIN,
    Client,
    all_cpus,
    machine,
    system_busy_seconds,
    today,
    wait_for_quiet,
    write_result,
)
from fleet_bench import Bench as FleetBench
from fleet_bench import run_sim

from eportal_core.testing.patches import kernel_id_of, make_archive
from eportal_sim.client import basic_auth
from eportal_sim.fleet import load_state

KINDS = ("bare", "latest", "kpatch", "static", "static512")
#: (kind, connections) of one round, in the order they run
SEQUENCE = tuple((kind, conns) for conns in (16, 64) for kind in KINDS)
KIB, MIB = 1024, 2**20
PAYLOAD = 512 * KIB
#: the patchset served in part 1, and those imported in part 2 (released later: deployed after it)
SERVED, IMPORTED = "K20240101_01", {"gz": "K20240201_01", "bz2": "K20240301_01"}
#: the bundled file of the static view, and the 512 KiB one placed beside it for the run
STATIC_CSS = "css/eportal.css"
STATIC_BIG = "patch-bench-512k.bin"


def package_static_dir() -> Path:
    """The ``static/`` folder of the eportal_core that ``eportal serve`` imports (this venv's)."""
    out = subprocess.run([str(VENV_BIN / "python"), "-c", "import eportal_core, pathlib; "
                          "print(pathlib.Path(eportal_core.__file__).parent / 'static')"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


class HighWaterMark:
    """The peak RSS of a running process, from ``VmHWM`` in ``/proc/<pid>/status``, read every 20 ms
    until it exits. Not ``wait4``'s ``ru_maxrss``: Linux carries the parent's RSS at fork over into
    the child's ``ru_maxrss`` across exec, so a child of this (large) bench process would report at
    least the bench's own size."""

    def __init__(self, pid: int):
        self.path = f"/proc/{pid}/status"
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with open(self.path) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))
                        return
        except OSError:
            pass

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._read()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Bench(FleetBench):
    """fleet_bench's portal, fleet registration, pinning and per-run accounting, with the patch runs."""

    def __init__(self, backend: str, opts):
        super().__init__(backend, opts)
        shutil.rmtree(self.base, ignore_errors=True)  # the parent's folder, named for the fleet bench
        self.base = Path(tempfile.mkdtemp(prefix=f"eportal-patch-bench-{backend}-"))
        self.state = self.base / "fleet.json"
        self.static_big: Path | None = None
        #: kind -> (eportal-sim arguments, expected body bytes per answer)
        self.runs: dict[str, tuple[list[str], int]] = {}

    def stop(self) -> None:
        try:
            if self.static_big is not None:
                self.static_big.unlink(missing_ok=True)
        finally:
            super().stop()

    def cli(self, *args: str, timeout: float = 600) -> str:
        return self.portal.run_cli("kc.eportal", "--ini", str(self.portal.ini), *args, timeout=timeout).stdout

    # --- set-up ----------------------------------------------------------------------------------

    def prepare_serving(self) -> dict:
        """Patches for every kernel of the fleet, enabled on main; the URLs of the runs, each checked once."""
        servers, _ = load_state(self.state)
        kernels = {s.info.kernel_id: 1 for s in servers}
        archive = make_archive(self.base / "serve", SERVED, "2024-01-01T00:00:00", kernels, payload_size=PAYLOAD,
                               compression="gz", streaming=True)
        self.cli("kcare", "deploy", str(archive.path))
        url = self.portal.url
        agent = servers[0]
        kpatch = f"/{agent.info.kernel_id}/1/kpatch.bin"
        static = package_static_dir()
        self.static_big = static / STATIC_BIG
        self.static_big.write_bytes(os.urandom(PAYLOAD))
        self.runs = {
            "bare": (["bare", "--url", f"{url}/admin/ping"], 2),
            "latest": (["checkin", "--state", str(self.state), "--url", url, "--mode", "latest"], 1),
            "kpatch": (["bare", "--url", url + kpatch, "--basic", agent.server_id], PAYLOAD),
            "static": (["bare", "--url", f"{url}/admin/static/{STATIC_CSS}"], (static / STATIC_CSS).stat().st_size),
            "static512": (["bare", "--url", f"{url}/admin/static/{STATIC_BIG}"], PAYLOAD),
        }
        auth = {"Authorization": basic_auth(agent.server_id)}
        checks = {
            "latest": (f"/{agent.info.kernel_id}/latest.v2", auth, b"1"),
            "kpatch": (kpatch, auth, archive.payload(agent.info.kernel_id)),
            "static": (f"/admin/static/{STATIC_CSS}", {}, (static / STATIC_CSS).read_bytes()),
            "static512": (f"/admin/static/{STATIC_BIG}", {}, self.static_big.read_bytes()),
        }
        client = Client(url, timeout=10)
        try:
            for kind, (path, headers, body) in checks.items():
                status, _, got = client.request("GET", path, headers=headers)
                if (status, got) != (200, body):
                    raise RuntimeError(f"{kind}: GET {path} answered {status} with {len(got)} bytes, "
                                       f"not 200 with the expected {len(body)}")
        finally:
            client.close()
        return {"patchset": SERVED, "kernels": len(kernels), "kpatch_bin_bytes": PAYLOAD,
                "archive_bytes": archive.path.stat().st_size,
                "urls": {"bare": "/admin/ping", "latest": "/<kernel_id>/latest.v2 (each server of the fleet in turn)",
                         "kpatch": kpatch, "static": f"/admin/static/{STATIC_CSS}",
                         "static512": f"/admin/static/{STATIC_BIG}"},
                "static_css_bytes": self.runs["static"][1]}

    # --- runs ------------------------------------------------------------------------------------

    def one(self, kind: str, conns: int, duration: float, client_cpus: str | None) -> dict:
        args, expected = self.runs[kind]
        s0, d0 = self.server_cpu()
        b0 = system_busy_seconds()
        data, client, code = run_sim([*args, "-c", str(conns), "-d", str(duration)], client_cpus=client_cpus,
                                     timeout=duration * 10 + 60)
        busy = system_busy_seconds() - b0
        s1, d1 = self.server_cpu()
        if kind in ("latest", "kpatch"):
            time.sleep(1.5)  # let the check-in flusher write what the run left, outside the next run
        row = self._row(kind, conns, data, client, s1 - s0, d1 - d0, code, busy)
        answered = sum(data["status"].values())
        row["body_bytes"] = data["body_bytes"]
        row["mib_per_s"] = round(data["body_bytes"] / MIB / max(data["elapsed_s"], 0.001), 1)
        # every answer a 200 with the whole body: anything else measures something else
        row["ok"] = (data["status"] == {"200": answered} and not data["errors"] and answered > 0
                     and data["body_bytes"] == answered * expected)
        return row

    def phase(self, name: str, rounds: int, duration: float) -> list[dict]:
        pinned = name == "pinned"
        if pinned:
            if (os.cpu_count() or 1) < 2 or not self.pin_server_side("0"):
                print(f"  [{self.backend}] cannot pin (need taskset and 2 CPUs): phase skipped", flush=True)
                return []
            client_cpus = "1"
        else:
            self.pin_server_side(all_cpus())
            client_cpus = None
        wait_for_quiet(self.opts.wait_quiet)
        for kind in KINDS:  # warm-up: pools, the agent directory, the page cache, the first flushes
            self.one(kind, 16, min(2.0, duration), client_cpus)
        rows = []
        for r in range(1, rounds + 1):
            for kind, conns in SEQUENCE:
                row = self.one(kind, conns, duration, client_cpus)
                row.update(phase=name, round=r)
                rows.append(row)
                print(f"  [{self.backend} {name} r{r}] {kind:<9} c={conns:<3} {row['rps']:8.1f} req/s  "
                      f"p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms  {row['mib_per_s']:7.1f} MiB/s  "
                      f"server {row['server_cpu_us_per_req']:6.0f} us/req  other {row['other_cpus_busy']:.2f} CPUs"
                      f"{'' if row['ok'] else '  UNEXPECTED: status ' + str(row['status']) + ', errors ' + str(row['errors']) + ', bytes ' + str(row['body_bytes'])}",
                      flush=True)
        if pinned:
            self.pin_server_side(all_cpus())
        return rows

    # --- import ----------------------------------------------------------------------------------

    def timed_cli(self, *args: str) -> dict:
        """``kc.eportal --ini INI ARGS`` as a child of its own: wall time, CPU (wait4), peak RSS
        (VmHWM, see HighWaterMark)."""
        out, err = self.base / "cli.out", self.base / "cli.err"
        with open(out, "wb") as fo, open(err, "wb") as fe:
            started = time.perf_counter()
            proc = subprocess.Popen([str(VENV_BIN / "kc.eportal"), "--ini", str(self.portal.ini), *args],
                                    stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=self.portal.env())
            hwm = HighWaterMark(proc.pid)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            hwm.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        return {"exit_code": proc.returncode, "wall_s": round(wall, 2),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "user_s": round(usage.ru_utime, 2),
                "sys_s": round(usage.ru_stime, 2), "peak_rss_mib": round(hwm.peak_kib / KIB, 1),
                "stdout": out.read_text(errors="replace").strip(), "stderr": err.read_text(errors="replace").strip()}

    def import_one(self, compression: str) -> dict:
        size = self.opts.import_size_mb * MIB
        per_file = self.opts.import_file_kb * KIB
        count = max(1, math.ceil(size / per_file))
        # the archive, and its unpacked copy in the data dir, side by side
        need = 2 * count * per_file + 256 * MIB
        free = shutil.disk_usage(self.base).free
        if free < need:
            raise SystemExit(f"not enough room in {self.base} for the import: {need / MIB:.0f} MiB needed, "
                             f"{free / MIB:.0f} MiB free")
        name = IMPORTED[compression]
        kernels = {kernel_id_of(f"Linux version 6.1.0-{i}-bench (patch_bench) #1 SMP\n"): 1 for i in range(count)}
        started = time.perf_counter()
        archive = make_archive(self.base / "import", name, f"{name[1:5]}-{name[5:7]}-{name[7:9]}T00:00:00", kernels,
                               payload_size=per_file, compression=compression, streaming=True)
        written = time.perf_counter() - started
        archive_bytes = archive.path.stat().st_size
        try:
            startup = self.timed_cli("kcare", "list")
            wait_for_quiet(self.opts.wait_quiet)
            run = self.timed_cli("kcare", "deploy", str(archive.path))
        finally:
            archive.path.unlink(missing_ok=True)
        if run["exit_code"] != 0 or f"imported {name}" not in run["stdout"]:
            raise RuntimeError(f"kcare deploy {archive.path.name} exited {run['exit_code']}:\n"
                               f"{run['stdout']}\n{run['stderr']}")
        self.cli("kcare", "unroll", name, "--delete")  # its gigabyte leaves the data dir before the next one
        payload = count * per_file
        return {
            "compression": compression, "archive": archive.path.name, "kernels": count,
            "kpatch_bin_bytes": per_file, "payload_mib": round(payload / MIB, 1),
            "archive_mib": round(archive_bytes / MIB, 1), "archive_written_s": round(written, 1),
            "import_wall_s": run["wall_s"], "import_cpu_s": run["cpu_s"], "import_user_s": run["user_s"],
            "import_sys_s": run["sys_s"], "peak_rss_mib": run["peak_rss_mib"],
            "archive_mib_per_s": round(archive_bytes / MIB / max(run["wall_s"], 0.001), 1),
            "payload_mib_per_s": round(payload / MIB / max(run["wall_s"], 0.001), 1),
            "startup_wall_s": startup["wall_s"], "startup_peak_rss_mib": startup["peak_rss_mib"],
            "output": run["stdout"].splitlines()[:2],
        }


def summarize(rows: list[dict]) -> dict:
    """Per phase: mean req/s, p50, p99, MiB/s and server CPU per (kind, connections); ratios to bare."""
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
                "mib_per_s": round(statistics.mean(r["mib_per_s"] for r in sel), 1),
                "server_cpu_us_per_req": round(statistics.mean(r["server_cpu_us_per_req"] for r in sel), 1),
                "other_cpus_busy": round(statistics.mean(r["other_cpus_busy"] or 0 for r in sel), 2),
                "rounds": len(sel), "all_ok": all(r["ok"] for r in sel),
            }
        ratios = {}
        for conns in (16, 64):
            for kind in KINDS[1:]:
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


def print_table(backend: str, register: dict | None, serving: dict | None, summary: dict, imports: list[dict]) -> None:
    print(f"\n=== {backend}")
    if register is not None:
        print(f"    registration: {register['rps']:.1f} servers/s at 16 connections; "
              f"{serving['kernels']} kernels with a {serving['kpatch_bin_bytes'] // KIB} KiB kpatch.bin each")
    for phase, data in summary.items():
        print(f"--- {phase} ({'portal+db on CPU 0, client on CPU 1' if phase == 'pinned' else 'client and server share the CPUs'})")
        print(f"    {'run':<14} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'MiB/s':>8} {'server us/req':>14}")
        for name, c in data["cells"].items():
            print(f"    {name:<14} {c['rps']:>9.1f} {c['p50_ms']:>8.2f} {c['p99_ms']:>8.2f} {c['mib_per_s']:>8.1f} "
                  f"{c['server_cpu_us_per_req']:>14.0f}{'' if c['all_ok'] else '  (unexpected answers)'}")
        for name, ratio in data["ratios"].items():
            print(f"    ratio {name:<20} {100 * ratio['mean']:6.1f}%  (per round: "
                  f"{', '.join(f'{100 * x:.1f}%' for x in ratio['rounds'])})")
    for imp in imports:
        print(f"--- import of {imp['archive']} ({imp['archive_mib']:.0f} MiB archive, {imp['payload_mib']:.0f} MiB payload "
              f"in {imp['kernels']} kernels of {imp['kpatch_bin_bytes'] // KIB} KiB; written in {imp['archive_written_s']:.0f} s)")
        print(f"    kcare deploy: {imp['import_wall_s']:.1f} s wall ({imp['archive_mib_per_s']:.0f} MiB/s of archive), "
              f"{imp['import_cpu_s']:.1f} s CPU, peak RSS {imp['peak_rss_mib']:.0f} MiB "
              f"(the command's start-up alone: {imp['startup_wall_s']:.1f} s, {imp['startup_peak_rss_mib']:.0f} MiB)")


def run_backend(backend: str, opts) -> dict:
    bench = Bench(backend, opts)
    started = time.time()
    try:
        info = bench.start()
        print(f"[{backend}] portal at {bench.portal.url} ({opts.threads} threads, scheduler on)"
              + (f"; {info['postgresql']} with {info['postgresql_settings']}" if info else ""), flush=True)
        register = serving = None
        rows: list[dict] = []
        if not opts.skip_load:
            register = bench.register()
            serving = bench.prepare_serving()
            print(f"  [{backend}] registered {opts.servers} servers; {serving['patchset']} enabled on main: "
                  f"{serving['kernels']} kernels, kpatch.bin of {PAYLOAD // KIB} KiB", flush=True)
            for phase in ("shared",) + (() if opts.no_pinned else ("pinned",)):
                rows += bench.phase(phase, opts.rounds, opts.duration)
        imports = []
        if opts.import_size_mb > 0:
            for compression in ("gz",) + (("bz2",) if opts.bz2 else ()):
                print(f"  [{backend}] writing a {opts.import_size_mb} MiB .tar.{compression} patchset, then "
                      "kcare deploy", flush=True)
                imports.append(bench.import_one(compression))
        summary = summarize(rows)
        print_table(backend, register, serving, summary, imports)
        result = {
            "bench": "patches", "date": today(), "backend": backend, "machine": machine(), **info,
            "notes": [
                "client (eportal-sim, a separate process) and server run on the same machine; 'pinned' puts "
                "portal and database on CPU 0 and the client on CPU 1 (taskset)",
                "bare = GET /admin/ping; latest = GET /<kernel_id>/latest.v2 over the fleet (Basic user = "
                "server_id, 200 '1'); kpatch = GET /<kernel_id>/1/kpatch.bin (512 KiB) as one server; "
                "static = the bundled eportal.css; static512 = a 512 KiB file put in the package's static/ "
                "folder for the run, served by the same static view",
                "import: kc.eportal kcare deploy in a subprocess; peak RSS = its VmHWM sampled every 20 ms; the "
                "archive was just written, so it is read from the page cache",
            ] + (["PostgreSQL ran with fsync=off, synchronous_commit=off, full_page_writes=off: flattered"]
                 if backend == "postgresql" else []),
            "options": {"servers": opts.servers, "duration_s": opts.duration, "rounds": opts.rounds,
                        "threads": opts.threads, "import_size_mb": opts.import_size_mb,
                        "import_file_kb": opts.import_file_kb, "bz2": opts.bz2, "skip_load": opts.skip_load},
            "register": register, "serving": serving, "runs": rows, "summary": summary, "imports": imports,
            "wall_s": round(time.time() - started, 1),
        }
        path = write_result(f"patches-{backend}-{today()}.json", result)
        print(f"    written to {path} ({result['wall_s']:.0f} s)")
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
    parser.add_argument("--servers", type=int, default=1000, help="servers to register (default 1000)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measured run (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the alternating sequence per phase (default 2)")
    parser.add_argument("--threads", type=int, default=8, help="waitress worker threads (default 8, as eportal serve)")
    parser.add_argument("--no-pinned", action="store_true", help="skip the pinned phase")
    parser.add_argument("--skip-load", action="store_true", help="only the import (part 2)")
    parser.add_argument("--import-size-mb", type=int, default=1024,
                        help="payload of the imported archive in MiB (default 1024; 0 skips the import)")
    parser.add_argument("--import-file-kb", type=int, default=1024,
                        help="kpatch.bin size per kernel of the imported archive in KiB (default 1024)")
    parser.add_argument("--bz2", action="store_true", help="also import a .tar.bz2 of that size (slow: ~7 min per "
                        "GiB to write and import)")
    parser.add_argument("--wait-quiet", type=float, default=600,
                        help="wait up to S seconds for other processes to go quiet before each phase (default 600)")
    opts = parser.parse_args()
    if opts.import_file_kb < 1 or opts.import_size_mb < 0:
        parser.error("--import-file-kb must be >= 1 and --import-size-mb >= 0")
    m = machine()
    print(f"patch bench: {m['host']}, {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, load {m['load_average_at_start']}")
    for backend in opts.backend:
        run_backend(backend, opts)


if __name__ == "__main__":
    main()
