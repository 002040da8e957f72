#!/usr/bin/env python3
"""What keeping every server's id in memory costs (server_memory.py, PostgreSQL's default).

    .venv/bin/python bench/directory_bench.py [--servers 1000000]

A throw-away PostgreSQL cluster, the schema at head, ``--servers`` rows in ``servers`` (COPY, with
16-character server ids like the real ones), then in this process: the background load of
``ServerMemory`` timed, and its memory measured as the growth of this process' RSS (VmRSS) and
as the size of the dict with its keys (sys.getsizeof). Then 1M lookups of known and unknown ids.
Printed, and written as JSON to ``bench/results/directory-postgresql-<date>.json``.
"""
from __future__ import annotations

import argparse
import random
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import ThrowAwayPostgres, machine, today, write_result  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=1_000_000)
    opts = parser.parse_args()

    from eportal_core.agent.memory import ServerMemory
    from eportal_core.db import make_engine
    from eportal_core.migrate import upgrade

    pg = ThrowAwayPostgres()
    url = pg.start()
    try:
        engine = make_engine(url)
        upgrade(engine)
        alphabet = string.ascii_letters + string.digits
        rng = random.Random(7)
        ids = ["".join([rng.choice(string.ascii_letters)] + rng.choices(alphabet, k=15)) for _ in range(opts.servers)]
        t0 = time.perf_counter()
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cur, cur.copy("COPY servers (server_id, ip, hostname, registered, euname, release, "
                                               "kernel_id, patch_type, version, virt, kcare_version, distro, "
                                               "distro_version, machine, processor) FROM STDIN") as copy:
                for sid in ids:
                    copy.write_row((sid, "10.0.0.1", "h", "2026-01-01", "", "", "", "default", "", "", "", "", "", "", ""))
            raw.commit()
        finally:
            raw.close()
        seeded = time.perf_counter() - t0
        print(f"seeded {opts.servers:,} servers in {seeded:.1f} s", flush=True)

        before = rss_mib()
        memory = ServerMemory(engine)
        t0 = time.perf_counter()
        memory.start_loading()
        memory._loader.join()
        load_s = time.perf_counter() - t0
        after = rss_mib()
        dict_mib = (sys.getsizeof(memory.pks) + sum(sys.getsizeof(k) for k in memory.pks)) / 2**20
        assert memory.loaded and len(memory.pks) == opts.servers
        unknown = ["Z" + sid[1:] for sid in ids[:1000]]
        probes = [ids[i % len(ids)] for i in range(0, 1_000_000 * 7, 7)] + unknown
        t0 = time.perf_counter()
        found = sum(1 for sid in probes if memory.pks.get(sid) is not None)
        lookup_ns = (time.perf_counter() - t0) / len(probes) * 1e9
        result = {"bench": "directory", "date": today(), "backend": "postgresql", "machine": machine(),
                  "postgresql": pg.version(), "servers": opts.servers, "load_s": round(load_s, 2),
                  "rss_growth_mib": round(after - before, 1), "dict_and_keys_mib": round(dict_mib, 1),
                  "bytes_per_server": round((after - before) * 2**20 / opts.servers),
                  "lookup_ns": round(lookup_ns), "found": found}
        print(f"loaded {opts.servers:,} server ids in {load_s:.2f} s; RSS +{after - before:.0f} MiB "
              f"({result['bytes_per_server']} bytes a server; dict and keys {dict_mib:.0f} MiB); "
              f"a lookup {lookup_ns:.0f} ns", flush=True)
        path = write_result(f"directory-postgresql-{today()}.json", result)
        print(f"written to {path}")
        engine.dispose()
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
