#!/usr/bin/env python3
"""Console and API page times at fleet scale (100k and 1M servers) on SQLite and PostgreSQL.

    .venv/bin/python bench/pages_bench.py [--backend sqlite postgresql] [--sizes 100000 1000000]
        [--requests 20] [--warmup 2] [--explain-over 50] [--keep DIR]

For each backend: a fresh database (``eportal init``), then for each size, growing the same
database: servers bulk-inserted straight into it (SQLAlchemy Core ``executemany`` in chunks on
SQLite, ``COPY`` on PostgreSQL) with realistic values: the simulator's ``generate_fleet`` (varied
distros, kernels, hostnames, patch levels, tags on half of them, split into ``server_tags`` with
each server's key),
36 keys of very different sizes over 3 feeds, registrations spread over two years and the last
check-ins over the past 10 days. Then a real ``eportal serve`` on that database, a console login
as ``admin``, and each page requested ``--warmup`` times, then ``--requests`` times in a row on
one kept-alive loopback connection: median and p95 wall time (the client is on the same machine,
so that is the server's time plus well under a millisecond). Target: 150 ms at 1M servers.
From 100k servers on (``eportal.start_page.live_count_under``) the start page shows the counts of
a background refresh (services/key_counts.py); what each refresh costs is timed and printed
separately ("start page counts (background refresh)").

Then each page once more inside this process (the same app on the same database, through WebTest)
with every SQL statement timed; statements slower than ``--explain-over`` ms are printed with their
plan (SQLite: ``EXPLAIN QUERY PLAN``; PostgreSQL: ``EXPLAIN (ANALYZE, BUFFERS)``).

After seeding, PostgreSQL gets ``VACUUM ANALYZE`` (what autovacuum does shortly after a bulk load),
repeated until the visibility map covers each table;
SQLite gets nothing (eportal never runs ``ANALYZE`` there, so the planner works without statistics,
as it would on a real install). PostgreSQL runs with fsync=off (the test harness' throw-away cluster).
Results: printed, and written as JSON to ``bench/results/pages-<backend>-<date>.json``.
"""
from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from benchlib import (
    BACKENDS,
    Client,
    Portal,
    ThrowAwayPostgres,
    machine,
    percentile,
    today,
    wait_for_quiet,
    write_result,
)
from sqlalchemy import insert, select

from eportal_core.db import make_engine
from eportal_core.models import Feed, Key, utcnow
from eportal_core.services.tags import format_tags, parse_tags
from eportal_sim.fleet import generate_fleet

TARGET_MS = 150.0
FEEDS = ("main", "canary", "frozen")
N_KEYS = 36
#: share of servers whose key was removed (key_id NULL)
NO_KEY_SHARE = 0.003
SERVER_COLUMNS = ("id", "server_id", "key_id", "ip", "hostname", "registered", "checkin", "updated", "euname",
                  "release", "kernel_id", "patch_level", "patch_type", "tags", "uptime", "version", "virt",
                  "kcare_version", "distro", "distro_version", "machine", "processor")
#: how SQLAlchemy stores a DateTime in SQLite
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


# --- seeding -------------------------------------------------------------------------------------

class Seeder:
    """Grows the ``servers`` and ``server_tags`` tables of one database to a given size."""

    def __init__(self, url: str, fleet_seed: int = 7):
        self.url = url
        self.engine = make_engine(url)
        self.backend = self.engine.dialect.name
        self.fleet_seed = fleet_seed
        self.fleet = []
        self.keys: list[tuple[int, str, str]] = []   # (id, name, feed)
        self.rng = random.Random(fleet_seed)
        self.now = utcnow().replace(microsecond=0)
        self.seen_ids: set[str] = set()

    def setup_keys(self) -> None:
        """The feeds and 36 keys (most on ``main``), through SQLAlchemy Core; kept when already there."""
        with self.engine.begin() as conn:
            if conn.execute(select(Key.id).where(Key.note.like("bench key %")).limit(1)).first() is None:
                self._add_keys(conn)
            found = conn.execute(select(Key.id, Key.key, Feed.name).join(Feed, Feed.id == Key.feed_id)
                                 .order_by(Key.id)).all()
        self.keys = [tuple(r) for r in found]

    def _add_keys(self, conn) -> None:
        teams = ("platform", "payments", "data", "search", "identity", "infra", "mobile", "edge", "ml")
        feed_ids = dict(conn.execute(select(Feed.name, Feed.id)).all())
        for name in FEEDS:
            if name not in feed_ids:
                feed_ids[name] = conn.execute(insert(Feed).values(name=name, auto=False, deploy_after=0, channel="",
                                                                  created=self.now).returning(Feed.id)).scalar_one()
        rows = []
        for i in range(N_KEYS):
            feed = FEEDS[0] if i % 3 != 2 or i < 3 else FEEDS[1 + (i // 3) % 2]
            rows.append({"key": f"{teams[i % len(teams)]}-{('prod', 'stage', 'dev', 'lab')[i % 4]}-{i:02d}",
                         "note": f"bench key {i}", "server_limit": 0, "enabled": True, "feed_id": feed_ids[feed],
                         "created": self.now - timedelta(days=800 - i)})
        conn.execute(insert(Key), rows)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.exec_driver_sql("SELECT count(*) FROM servers").scalar()

    def _server_id(self) -> str:
        rng = self.rng
        while True:
            sid = rng.choice(ID_CHARS[:52]) + "".join(rng.choices(ID_CHARS, k=15))
            if sid not in self.seen_ids:
                self.seen_ids.add(sid)
                return sid

    def rows(self, start: int, end: int, total_planned: int):
        """Rows for servers ``start..end-1`` (ids start+1..end), in registration order."""
        rng = self.rng
        key_ids = [k[0] for k in self.keys]
        weights = [1 / (i + 1) ** 1.1 for i in range(len(key_ids))]   # a few big keys, many small ones
        cum = []
        acc = 0.0
        for w in weights:
            acc += w
            cum.append(acc)
        first = self.now - timedelta(days=730)
        span = (self.now - timedelta(days=1) - first).total_seconds()
        ten_days = 10 * 86400
        for i in range(start, end):
            info = self.fleet[i]
            registered = first + timedelta(seconds=span * i / total_planned + rng.random() * 30)
            checkin = max(registered, self.now - timedelta(seconds=rng.random() * ten_days))
            level = info.patch_level if info.patch_level >= 0 else None
            updated = None
            if level is not None and rng.random() < 0.7:
                updated = registered + (checkin - registered) * rng.random()
            key_id = None if rng.random() < NO_KEY_SHARE else rng.choices(key_ids, cum_weights=cum)[0]
            tags = parse_tags(info.tags) if info.tags else []
            yield (i + 1, self._server_id(), key_id, f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
                   info.hostname, registered, checkin, updated, info.euname, info.release, info.kernel_id, level,
                   info.patch_type, format_tags(tags), info.uptime, info.version, info.virt, info.kcare_version,
                   info.distro, info.distro_version, info.machine, info.processor), tags

    def grow(self, size: int, total_planned: int, chunk: int = 20000) -> dict:
        """Add servers until there are ``size``; returns timings."""
        have = self.count()
        if have >= size:
            return {"added": 0, "seconds": 0.0}
        t0 = time.perf_counter()
        if len(self.fleet) < size:
            self.fleet = generate_fleet(total_planned, self.fleet_seed, tags_ratio=0.5)
        t_gen = time.perf_counter() - t0
        t1 = time.perf_counter()
        added = tag_rows = 0
        raw = self.engine.raw_connection()
        try:
            if self.backend == "sqlite":
                added, tag_rows = self._insert_sqlite(raw, have, size, total_planned, chunk)
            else:
                added, tag_rows = self._copy_pg(raw, have, size, total_planned)
            raw.commit()
        finally:
            raw.close()
        t_insert = time.perf_counter() - t1
        t2 = time.perf_counter()
        if self.backend == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in ("servers", "server_tags"):
                    self._vacuum(conn, table)
                conn.exec_driver_sql("ANALYZE keys")
                conn.exec_driver_sql("ANALYZE feeds")
        t_analyze = time.perf_counter() - t2
        return {"added": added, "tag_rows": tag_rows, "generate_s": round(t_gen, 1), "insert_s": round(t_insert, 1),
                "analyze_s": round(t_analyze, 1), "seconds": round(time.perf_counter() - t0, 1)}

    @staticmethod
    def _vacuum(conn, table: str, tries: int = 60) -> None:
        """VACUUM ANALYZE ``table`` until its visibility map covers it, as autovacuum leaves a table
        that is no longer written. A VACUUM right after the bulk load often left the map of one of
        the two tables empty (seen on this cluster, which commits asynchronously); index-only scans
        then read the heap until autovacuum came by, so the figures depended on how long the bench
        had waited for a quiet machine."""
        for _ in range(tries):
            conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
            pages, visible = conn.exec_driver_sql(
                "SELECT relpages, relallvisible FROM pg_class WHERE relname = %(t)s", {"t": table}).one()
            if visible >= 0.99 * pages:
                return
            time.sleep(1)

    def _insert_sqlite(self, raw, have, size, total_planned, chunk):
        cur = raw.cursor()
        cur.execute("PRAGMA synchronous=OFF")
        cur.execute("PRAGMA cache_size=-262144")   # 256 MiB for the load only
        cur.execute("BEGIN IMMEDIATE")
        sql = f"INSERT INTO servers ({', '.join(SERVER_COLUMNS)}) VALUES ({', '.join('?' * len(SERVER_COLUMNS))})"
        tag_sql = "INSERT INTO server_tags (server_pk, name, value, key_id) VALUES (?, ?, ?, ?)"
        added = tag_rows = 0
        batch, tbatch = [], []
        for row, tags in self.rows(have, size, total_planned):
            batch.append(tuple(v.strftime(SQLITE_TIME) if isinstance(v, datetime) else v for v in row))
            tbatch.extend((row[0], n, v, row[2]) for n, v in tags)   # a tag row carries its server's key
            if len(batch) >= chunk:
                cur.executemany(sql, batch)
                cur.executemany(tag_sql, tbatch)
                added += len(batch)
                tag_rows += len(tbatch)
                batch, tbatch = [], []
        if batch:
            cur.executemany(sql, batch)
            cur.executemany(tag_sql, tbatch)
            added += len(batch)
            tag_rows += len(tbatch)
        cur.execute("COMMIT")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()
        return added, tag_rows

    def _copy_pg(self, raw, have, size, total_planned):
        dbapi = raw.driver_connection
        added = tag_rows = 0
        tag_buf = []
        with dbapi.cursor() as cur:
            with cur.copy(f"COPY servers ({', '.join(SERVER_COLUMNS)}) FROM STDIN") as copy:
                for row, tags in self.rows(have, size, total_planned):
                    copy.write_row(row)
                    tag_buf.extend((row[0], n, v, row[2]) for n, v in tags)
                    added += 1
            with cur.copy("COPY server_tags (server_pk, name, value, key_id) FROM STDIN") as copy:
                for trow in tag_buf:
                    copy.write_row(trow)
            tag_rows = len(tag_buf)
            cur.execute("SELECT setval(pg_get_serial_sequence('servers', 'id'), (SELECT max(id) FROM servers))")
        dbapi.commit()
        return added, tag_rows

    def facts(self) -> dict:
        """Key sizes etc., to pick realistic filter values."""
        with self.engine.connect() as conn:
            sizes = conn.exec_driver_sql("SELECT key_id, count(*) FROM servers GROUP BY key_id").all()
        by_key = {k: n for k, n in sizes}
        named = sorted(((by_key.get(kid, 0), name) for kid, name, _ in self.keys), reverse=True)
        return {"largest_key": named[0][1], "largest_key_servers": named[0][0],
                "small_key": named[-1][1], "small_key_servers": named[-1][0]}


# --- the pages -----------------------------------------------------------------------------------

def pages(facts: dict) -> list[tuple[str, str]]:
    big, small = facts["largest_key"], facts["small_key"]
    return [
        ("start page /admin/", "/admin/"),
        ("server list, unfiltered", "/admin/kcserver/"),
        (f"list: key (largest, {facts['largest_key_servers']:,})", f"/admin/kcserver/?key={big}"),
        (f"list: key (small, {facts['small_key_servers']:,})", f"/admin/kcserver/?key={small}"),
        ("list: tag env:prod", "/admin/kcserver/?tag=env%3Aprod"),
        ("list: hostname web-01%", "/admin/kcserver/?hostname=web-01%25"),
        ("list: not checked in 48 h", "/admin/kcserver/?checkin_age=2"),
        ("list: checked in within 48 h", "/admin/kcserver/?checkin_age=-2"),
        ("list: sorted by check-in", "/admin/kcserver/?sort=checkin&dir=desc"),
        ("list: page 200", "/admin/kcserver/?page=200"),
        ("list: key + tag, by check-in", f"/admin/kcserver/?key={big}&tag=env%3Aprod&sort=checkin&dir=desc"),
        ("list: feed canary", "/admin/kcserver/?feed=canary"),
        ("API count feed=main", "/admin/api/servers?limit=50&feed=main&only_count=1"),
        ("API count feed+hostname", "/admin/api/servers?limit=50&feed=main&hostname=web-01%25&only_count=1"),
        ("API count feed+not in 48 h", "/admin/api/servers?limit=50&feed=main&checkin_age=2&only_count=1"),
        ("API count feed+tag", "/admin/api/servers?limit=50&feed=main&tag=env%3Aprod&only_count=1"),
        ("API count feed+tag+age", "/admin/api/servers?limit=50&feed=main&tag=env%3Aprod&checkin_age=-2&only_count=1"),
        ("API list feed=main", "/admin/api/servers?limit=50&feed=main"),
        ("API list feed+hostname", "/admin/api/servers?limit=50&feed=main&hostname=web-0%25"),
        ("API list key, offset 5000", f"/admin/api/servers?limit=50&key={big}&offset=5000"),
    ]


def time_pages(portal: Portal, page_list, requests: int, warmup: int) -> list[dict]:
    client = Client(portal.url)
    client.login("admin", portal.admin_password)
    out = []
    for name, path in page_list:
        status = size = None
        for _ in range(warmup):
            client.get(path)
        times = []
        for _ in range(requests):
            t0 = time.perf_counter()
            status, _, body = client.get(path)
            times.append((time.perf_counter() - t0) * 1000)
            size = len(body)
        med, p95 = statistics.median(times), percentile(times, 95)
        out.append({"page": name, "path": path, "status": status, "bytes": size, "median_ms": round(med, 1),
                    "p95_ms": round(p95, 1), "max_ms": round(max(times), 1), "n": len(times),
                    "meets_target": p95 <= TARGET_MS})
        print(f"    {name:<36} {status} median {med:8.1f} ms  p95 {p95:8.1f} ms  "
              f"{'ok' if p95 <= TARGET_MS else 'MISSES 150 ms'}", flush=True)
    client.close()
    return out


# --- statement profile and plans ----------------------------------------------------------------

def profile_statements(url: str, data_dir: Path, password: str, page_list, explain_over: float) -> list[dict]:
    """Each page once in-process, every SQL statement timed; plans of the slow ones."""
    import webtest
    from sqlalchemy import event

    from eportal_core import make_app
    from eportal_core.settings import load_settings
    from eportal_core.testing import login, make_test_settings

    engine = make_engine(url)
    settings, pm = load_settings(make_test_settings(data_dir, url))
    app = make_app(settings, pm, engine=engine)
    client = webtest.TestApp(app, extra_environ={"HTTP_HOST": "bench.test", "REMOTE_ADDR": "127.0.0.1"})
    login(client, "admin", password)
    current: list = []

    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info["t0"] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        current.append((statement, parameters, (time.perf_counter() - conn.info.pop("t0")) * 1000))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    out = []
    try:
        for name, path in page_list:
            client.get(path, status="*")          # warm (plans, templates)
            current.clear()
            t0 = time.perf_counter()
            client.get(path, status="*")
            total = (time.perf_counter() - t0) * 1000
            stmts = [s for s in current if not s[0].lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK"))]
            # the cursor events see SQLite's statements only up to their first row (a streamed GROUP BY
            # or a scan does the rest while the rows are fetched): time each SELECT again, rows and all
            timed = [(st, params, run_timed(engine, st, params) if _is_select(st) else ms) for st, params, ms in stmts]
            sql_ms = sum(t[2] for t in timed)
            slow = []
            for statement, params, ms in sorted(timed, key=lambda s: -s[2]):
                if ms < explain_over:
                    break
                if not _is_select(statement):
                    continue
                slow.append({"ms": round(ms, 1), "sql": _inline(statement, params),
                             "plan": explain(engine, statement, params)})
            out.append({"page": name, "path": path, "in_process_ms": round(total, 1), "statements": len(stmts),
                        "sql_ms": round(sql_ms, 1), "slow": slow})
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
        app.registry["key_counts"].stop()
        engine.dispose()
    return out


def time_key_counts(url: str, repeat: int = 5) -> dict:
    """The start page's count of servers per key (services/key_counts.py): what each background
    refresh costs the database at this size (the page itself reads the last refresh past 100k)."""
    from eportal_core.services.key_counts import count_by_key

    engine = make_engine(url)
    times = []
    try:
        with engine.connect() as conn:
            count_by_key(conn)  # warm
            for _ in range(repeat):
                t0 = time.perf_counter()
                count_by_key(conn)
                times.append((time.perf_counter() - t0) * 1000)
    finally:
        engine.dispose()
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1), "runs": repeat}


def _is_select(statement: str) -> bool:
    return statement.lstrip().upper().startswith(("SELECT", "WITH"))


def run_timed(engine, statement: str, params, repeat: int = 2) -> float:
    """The best of ``repeat`` runs of a SELECT with all its rows fetched, in ms."""
    best = None
    raw = engine.raw_connection()
    try:
        for _ in range(repeat):
            cur = raw.cursor()
            t0 = time.perf_counter()
            cur.execute(statement, params)
            cur.fetchall()
            ms = (time.perf_counter() - t0) * 1000
            cur.close()
            best = ms if best is None else min(best, ms)
        raw.rollback()
    finally:
        raw.close()
    return best


def _inline(statement: str, params) -> str:
    text = re.sub(r"\s+", " ", statement).strip()
    return f"{text}  -- params {params!r}"[:3000]


def explain(engine, statement: str, params) -> str:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if engine.dialect.name == "sqlite":
            cur.execute("EXPLAIN QUERY PLAN " + statement, params)
            rows = cur.fetchall()
            text = "\n".join(f"{'  ' * _depth(rows, r)}{r[3]}" for r in rows)
        else:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            text = "\n".join(r[0] for r in cur.fetchall())
        cur.close()
        raw.rollback()
        return text
    finally:
        raw.close()


def _depth(rows, row) -> int:
    parents = {r[0]: r[1] for r in rows}
    depth, parent = 0, row[1]
    while parent:
        depth += 1
        parent = parents.get(parent, 0)
    return depth


# --- driver --------------------------------------------------------------------------------------

def run_backend(backend: str, opts) -> dict:
    base = Path(opts.keep or tempfile.mkdtemp(prefix=f"eportal-pages-bench-{backend}-"))
    base.mkdir(parents=True, exist_ok=True)
    pg = None
    portal = None
    result = {"bench": "pages", "date": today(), "backend": backend, "machine": machine(), "target_ms": TARGET_MS,
              "options": {"sizes": opts.sizes, "requests": opts.requests, "warmup": opts.warmup}, "sizes": []}
    try:
        if backend == "postgresql":
            pg = ThrowAwayPostgres()
            url = pg.start()
            result.update(postgresql=pg.version(), postgresql_settings=ThrowAwayPostgres.SETTINGS,
                          notes=["PostgreSQL ran with fsync=off, synchronous_commit=off, full_page_writes=off"])
        else:
            url = f"sqlite:///{base / 'eportal.sqlite'}"
        portal = Portal(base / "portal", sqlalchemy_url=url, settings={"eportal.scheduler": "true"}).prepare()
        seeder = Seeder(url)
        seeder.setup_keys()
        total = max(opts.sizes)
        for size in sorted(opts.sizes):
            print(f"[{backend}] seeding to {size:,} servers ...", flush=True)
            seeded = seeder.grow(size, total)
            facts = seeder.facts()
            print(f"[{backend}] seeded {seeded}", flush=True)
            page_list = pages(facts)
            portal.serve()
            wait_for_quiet(opts.wait_quiet)
            print(f"[{backend}] {size:,} servers: page times (warm-up {opts.warmup}, then {opts.requests} each)", flush=True)
            timed = time_pages(portal, page_list, opts.requests, opts.warmup)
            portal.stop()
            profile = profile_statements(url, portal.data_dir, portal.admin_password, page_list, opts.explain_over)
            for p in profile:
                for s in p["slow"]:
                    print(f"      slow SQL on '{p['page']}': {s['ms']} ms\n        {s['sql'][:600]}\n"
                          + "\n".join("        | " + line for line in s["plan"].splitlines()), flush=True)
            refresh = time_key_counts(url)
            print(f"      start page counts (background refresh, every 30 s): median {refresh['median_ms']} ms, "
                  f"max {refresh['max_ms']} ms of {refresh['runs']}", flush=True)
            result["sizes"].append({"servers": size, "seeding": seeded, "facts": facts, "pages": timed,
                                    "statements": profile, "key_counts_refresh": refresh})
        path = write_result(f"pages-{backend}-{today()}.json", result)
        print(f"[{backend}] written to {path}")
        return result
    except Exception:
        if portal is not None:
            print(portal.log_tail(30), file=sys.stderr)
        raise
    finally:
        if portal is not None:
            portal.stop()
        if pg is not None:
            pg.stop()
        if not opts.keep:
            shutil.rmtree(base, ignore_errors=True)


def print_summary(results: list[dict]) -> None:
    for res in results:
        for size in res["sizes"]:
            print(f"\n=== {res['backend']}, {size['servers']:,} servers (target: p95 <= {TARGET_MS:.0f} ms)")
            print(f"    {'page':<36} {'median':>9} {'p95':>9}  sql(in-process)  verdict")
            prof = {p["page"]: p for p in size["statements"]}
            for p in size["pages"]:
                sp = prof.get(p["page"], {})
                print(f"    {p['page']:<36} {p['median_ms']:>7.1f}ms {p['p95_ms']:>7.1f}ms  "
                      f"{sp.get('sql_ms', 0):>8.1f} ms/{sp.get('statements', 0):<3} "
                      f"{'ok' if p['meets_target'] else 'MISSES'}")
            if "key_counts_refresh" in size:
                r = size["key_counts_refresh"]
                print(f"    (start page counts, background refresh: median {r['median_ms']} ms, max {r['max_ms']} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--explain-over", type=float, default=50.0, help="plan statements slower than this (ms)")
    parser.add_argument("--keep", metavar="DIR", help="keep the database and portal in DIR (one backend)")
    parser.add_argument("--wait-quiet", type=float, default=600,
                        help="wait up to S seconds for other processes to go quiet before timing (default 600)")
    opts = parser.parse_args()
    m = machine()
    print(f"pages bench: {m['host']}, {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, load {m['load_average_at_start']}")
    results = [run_backend(b, opts) for b in opts.backend]
    print_summary(results)


if __name__ == "__main__":
    main()
