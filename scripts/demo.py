#!/usr/bin/env python3
"""Fill a fresh data dir with a living console: patchsets, feeds, keys, a fleet and a patch source.

    EPORTAL_DATA_DIR=var-demo .venv/bin/python scripts/demo.py [--force]

(``make demo`` runs this, then serves the result.) What a newcomer then sees:

- seven generated patchset archives (three kernels, rising levels): five imported; ``main`` runs up
  to the 4th, ``beta`` up to the 5th, ``stable`` up to the 2nd;
- the two newest waiting in ``<data dir>/incoming/``, which is the configured patch source (a folder
  source, as air-gapped sites use): **Check now** on the Patch Source page imports them;
- keys for each feed and 60 servers on them: most up to date, some behind, a few that stopped
  checking in, one kernel without patches.

Everything goes through the same services the console and the CLI call.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
from datetime import timedelta
from pathlib import Path

KERNELS = {  # kernel release -> (distro, version)
    "5.14.0-362.8.1.el9_3.x86_64": ("rhel", "9.3"),
    "4.18.0-513.5.1.el8_9.x86_64": ("rhel", "8.9"),
    "5.15.0-91-generic": ("ubuntu", "22.04"),
}
PLAN = [  # name, released, level per kernel (by position in KERNELS)
    ("K20240105_01", "2024-01-05T09:00:00", (1, 1, None)),
    ("K20240202_01", "2024-02-02T09:00:00", (2, 2, 1)),
    ("K20240301_01", "2024-03-01T09:00:00", (3, None, 2)),
    ("K20240404_01", "2024-04-04T09:00:00", (4, 3, 3)),
    ("K20240502_01", "2024-05-02T09:00:00", (5, 4, None)),
    ("K20240603_01", "2024-06-03T09:00:00", (6, 5, 4)),
    ("K20240701_01", "2024-07-01T09:00:00", (7, None, 5)),
]
FEEDS = {"main": 4, "beta": 5, "stable": 2}  # feed -> patchsets enabled
KEYS = [("prod-web", "main", "web tier", 0), ("beta-lab", "beta", "canary hosts", 20),
        ("db-stable", "stable", "databases: slow lane", 0)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="wipe the data dir first if it holds a database")
    args = parser.parse_args(argv)
    data_dir = os.environ.get("EPORTAL_DATA_DIR")
    if not data_dir:
        print("demo.py: set EPORTAL_DATA_DIR to the (fresh) data dir to fill", file=sys.stderr)
        return 2
    root = Path(data_dir).resolve()
    if (root / "eportal.sqlite").exists():
        if not args.force:
            print(f"demo.py: {root} holds a database already (use --force to start over)", file=sys.stderr)
            return 1
        shutil.rmtree(root)

    from eportal_core import migrate
    from eportal_core.cli.env import CliEnv
    from eportal_core.services.bootstrap import ensure_first_admin

    env = CliEnv()
    migrate.upgrade(env.engine)
    with env.dbsession() as db:
        password = ensure_first_admin(db, env.settings["eportal.data_dir"])
    archives = make_archives(root)
    deploy_patchsets(env, archives)
    fleet = make_fleet(env, archives)
    configure_source(env, root / "incoming", archives[5:])
    print(f"demo data in {root}: {len(archives)} patchsets ({len(archives) - 2} imported, 2 waiting in "
          f"{root / 'incoming'}), feeds {', '.join(FEEDS)}, {len(KEYS)} keys, {fleet} servers")
    if password:
        print(f"admin password: {password}")
    return 0


def kernel_ids() -> dict[str, str]:
    """kernel id (sha1 of /proc/version, as the agent computes it) -> kernel release"""
    from eportal_core.testing.patches import kernel_id_of
    return {kernel_id_of(f"Linux version {release} (demo@builder) #1 SMP"): release for release in KERNELS}


def make_archives(root: Path) -> list:
    from eportal_core.testing.patches import make_archive
    out = []
    for i, (name, released, levels) in enumerate(PLAN):
        kernels = {k: lvl for k, lvl in zip(kernel_ids(), levels) if lvl}
        out.append(make_archive(root / "demo-archives", name, released, kernels, payload_size=24_000 + 4_000 * i, seed=i))
    return out


def deploy_patchsets(env, archives) -> None:
    from sqlalchemy import select

    from eportal_core.models import Feed, Patchset
    from eportal_core.services import deploy
    from eportal_core.services.patchstore import import_archive
    for archive in archives[:5]:
        with env.dbsession() as db:
            import_archive(db, archive.path, data_dir=env.settings["eportal.data_dir"], pm=env.pm, actor="demo")
    with env.dbsession() as db:
        for name, upto in FEEDS.items():
            feed = db.scalar(select(Feed).where(Feed.name == name))
            if feed is None:
                feed = Feed(name=name, auto=name == "beta", deploy_after=0 if name == "beta" else 48)
                db.add(feed)
                db.flush()
            patchset = db.scalar(select(Patchset).where(Patchset.name == archives[upto - 1].name))
            deploy.enable_upto(db, feed, patchset, pm=env.pm, actor="demo")


def make_fleet(env, archives) -> int:
    from sqlalchemy import select

    from eportal_core.models import Server, utcnow
    from eportal_core.services.agents import register
    from eportal_core.services.keys import create_key
    rng = random.Random(7)
    releases = kernel_ids()
    count = 0
    now = utcnow()
    with env.dbsession() as db:
        for key, feed, note, limit in KEYS:
            create_key(db, key, note=note, server_limit=limit, feed=feed, actor="demo")
        for i in range(60):
            key, feed, _, _ = KEYS[i % len(KEYS)]
            kernel_id = rng.choice(list(releases))
            release = releases[kernel_id]
            distro, version = KERNELS[release]
            enabled = archives[:FEEDS[feed]]
            levels = [a.kernels[kernel_id] for a in enabled if kernel_id in a.kernels]
            top = max(levels) if levels else None
            level = top if top is None or rng.random() < 0.75 else max(1, top - rng.randint(1, 2))
            role = ("web", "db", "cache", "batch")[i % 4]
            info = {"kernel_id": kernel_id, "euname": release, "release": release, "patch_level": level,
                    "distro": distro, "distro_version": version, "machine": "x86_64", "virt": rng.choice(["kvm", "none"]),
                    "kcare_version": "2.87-1", "uptime": rng.randint(3600, 90 * 86400),
                    "tags": f"env:{'prod' if feed == 'main' else feed};{role}"}
            reg = register(db, key, hostname=f"{role}-{feed}-{i:02d}.example.lan", ip=f"10.20.{i // 50}.{10 + i % 200}",
                           info=info, actor="demo")
            count += reg.server is not None
        servers = list(db.scalars(select(Server).order_by(Server.id)))
        for i, server in enumerate(servers):
            quiet = i % 17 == 5  # a few stopped checking in days ago
            server.registered = now - timedelta(days=rng.randint(5, 200))
            server.checkin = now - (timedelta(days=rng.randint(3, 20)) if quiet else timedelta(minutes=rng.randint(1, 230)))
            server.updated = server.checkin - timedelta(hours=rng.randint(1, 72))
        # one server whose kernel has no patches at all
        reg = register(db, KEYS[0][0], hostname="legacy-01.example.lan", ip="10.20.9.9",
                       info={"kernel_id": "0" * 40, "euname": "3.10.0-1160.el7.x86_64", "distro": "centos",
                             "distro_version": "7"}, actor="demo")
        count += reg.server is not None
    return count


def configure_source(env, incoming: Path, waiting) -> None:
    from eportal_patch_source import access
    incoming.mkdir(parents=True, exist_ok=True)
    for archive in waiting:
        shutil.copy(archive.path, incoming / archive.path.name)
    with env.dbsession() as db:
        access.save(db, access.AccessInfo("directory", path=str(incoming)), pm=env.pm, settings=env.settings,
                    actor="demo")


if __name__ == "__main__":
    sys.exit(main())
