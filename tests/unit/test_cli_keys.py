"""``kc.eportal key`` / ``eportal key`` and ``kc.eportal --list-servers``, as real subprocesses.

Each test gets a data dir of its own (``EPORTAL_DATA_DIR``) next to the checkout's development.ini,
copied from one ``eportal init``-ed site; servers are registered in-process through the services,
against the same SQLite file, like agents would.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import transaction

from eportal_core.db import get_session_factory, get_tm_session, make_engine
from eportal_core.models import Feed, utcnow
from eportal_core.services import agents

ROOT = Path(__file__).resolve().parents[2]
DEV_INI = ROOT / "development.ini"
BIN = Path(sys.executable).parent
EPORTAL = BIN / "eportal"
KC = BIN / "kc.eportal"


def run(script: Path, *args: str, data_dir: Path, expect: int | None = 0) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EPORTAL_", "PYTHONWARNINGS", "COLUMNS"))}
    env.update(EPORTAL_DATA_DIR=str(data_dir), EPORTAL_INI=str(DEV_INI), COLUMNS="100")
    proc = subprocess.run([str(script), *args], env=env, input="", capture_output=True, text=True, timeout=60,
                          start_new_session=True)
    if expect is not None:
        assert proc.returncode == expect, f"{script.name} {args}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def kc(*args, data_dir, **kw):
    return run(KC, *args, data_dir=data_dir, **kw)


def one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def initialized_site(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("keys-site")
    assert run(EPORTAL, "init", data_dir=data_dir).stdout.startswith("admin password: ")
    return data_dir


@pytest.fixture
def site(initialized_site, tmp_path) -> Path:
    data_dir = tmp_path / "data"
    shutil.copytree(initialized_site, data_dir)
    return data_dir


class Fleet:
    """The site's database, in-process: register servers like agents, add feeds, count rows."""

    def __init__(self, data_dir: Path):
        self.engine = make_engine(f"sqlite:///{data_dir}/eportal.sqlite")

    def session(self):
        tm = transaction.TransactionManager(explicit=True)
        return tm, get_tm_session(get_session_factory(self.engine), tm)

    def register(self, key: str, n: int = 1, *, checkin_ago: timedelta | None = None) -> list[str]:
        tm, db = self.session()
        ids = []
        with tm:
            for i in range(n):
                reg = agents.register(db, key, hostname=f"{key}-{i}", ip=f"10.0.0.{i}")
                assert reg.code == agents.REGISTERED, reg
                if checkin_ago is not None:
                    reg.server.checkin = utcnow() - checkin_ago
                ids.append(reg.server.server_id)
        return ids

    def add_feed(self, name: str) -> None:
        tm, db = self.session()
        with tm:
            db.add(Feed(name=name))

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.scalar(sa.text(sql), params)

    def key(self, name: str):
        with self.engine.connect() as conn:
            return conn.execute(sa.text("SELECT k.key, k.note, k.server_limit, f.name FROM keys k JOIN feeds f "
                                        "ON f.id = k.feed_id WHERE k.key = :k"), {"k": name}).first()


@pytest.fixture
def fleet(site):
    f = Fleet(site)
    yield f
    f.engine.dispose()


def test_list_servers_prints_count_and_key_per_key_in_creation_order(site, fleet):
    assert kc("key", "-a", "2shcolu7Y1x6885Q", data_dir=site).stdout == "2shcolu7Y1x6885Q\n"
    assert kc("key", "-a", "6J89aS44j6OmTr05", data_dir=site).stdout == "6J89aS44j6OmTr05\n"
    fleet.register("6J89aS44j6OmTr05", 2)
    out = kc("--list-servers", data_dir=site).stdout
    assert out == "Count Key\n0 2shcolu7Y1x6885Q\n2 6J89aS44j6OmTr05\n"  # exactly the ePortal docs' example


def test_list_servers_on_an_empty_site_and_with_other_actions(site):
    assert kc("--list-servers", data_dir=site).stdout == "Count Key\n"
    proc = kc("--list-servers", "-l", data_dir=site, expect=None)
    assert proc.returncode == 2 and "one action at a time" in proc.stderr


def test_key_add_list_change_delete(site, fleet):
    fleet.add_feed("beta")
    generated = kc("key", "-a", "--note", "web farm", "--server-limit", "5", data_dir=site).stdout.strip()
    assert len(generated) == 16 and generated.isalnum()
    assert kc("key", "--add", "named.key-1", "--feed", "beta", data_dir=site).stdout == "named.key-1\n"
    assert fleet.key(generated) == (generated, "web farm", 5, "main")
    assert fleet.key("named.key-1") == ("named.key-1", "", 0, "beta")

    listing = kc("key", data_dir=site).stdout.splitlines()
    assert listing[0].split() == ["Key", "Feed", "Limit", "Servers", "Description"]
    assert set(listing[1]) <= {"-", " "}
    assert listing[2].split() == [generated, "main", "5", "0", "web", "farm"]
    assert listing[3].split() == ["named.key-1", "beta", "unlimited", "0"]
    # the same command under ``eportal``
    assert run(EPORTAL, "key", data_dir=site).stdout.splitlines() == listing
    # one key only
    assert kc("key", "named.key-1", data_dir=site).stdout.splitlines()[2].split()[0] == "named.key-1"

    out = kc("key", "-c", generated, "--server-limit", "0", "--feed", "beta", data_dir=site).stdout
    assert out == f"Key '{generated}' changed (feed=beta limit=unlimited)\n"
    assert fleet.key(generated) == (generated, "web farm", 0, "beta")  # the note was not given: kept
    kc("key", "--change", generated, "--note", "db farm", data_dir=site)
    assert fleet.key(generated) == (generated, "db farm", 0, "beta")

    fleet.register(generated, 3)
    fleet.register("named.key-1", 1)
    assert kc("key", "-d", generated, data_dir=site).stdout == f"Key '{generated}' deleted with its 3 servers\n"
    assert fleet.key(generated) is None
    assert fleet.scalar("SELECT count(*) FROM servers") == 1
    assert kc("key", "--delete", "named.key-1", data_dir=site).stdout == "Key 'named.key-1' deleted with its 1 server\n"
    assert kc("--list-servers", data_dir=site).stdout == "Count Key\n"


ERRORS = [
    (("key", "-a", "dup"), ("key 'dup' already exists",)),
    (("key", "-a", "bad key!"), ("invalid key 'bad key!'",)),
    (("key", "-a", "x1", "--server-limit", "-3"), ("server limit must be between 0",)),
    (("key", "-a", "x2", "--server-limit", "many"), ("server limit must be a whole number",)),
    (("key", "-a", "x3", "--feed", "nope"), ("feed 'nope' does not exist",)),
    (("key", "-c", "ghost", "--note", "n"), ("key 'ghost' does not exist",)),
    (("key", "-d", "ghost"), ("key 'ghost' does not exist",)),
    (("key", "ghost"), ("key 'ghost' does not exist",)),
]
USAGE_ERRORS = [
    (("key", "-a", "-d", "k"), "one action at a time"),
    (("key", "-c"), "-c needs the KEY"),
    (("key", "-c", "dup"), "-c changes what you give"),
    (("key", "--note", "x"), "go with -a or -c"),
    (("key", "-d", "dup", "--feed", "main"), "-d takes only the KEY"),
]


def test_key_errors_are_one_line_without_traceback_and_change_nothing(site):
    kc("key", "-a", "dup", data_dir=site)
    # independent invocations side by side (each pays ~1 s of imports)
    with ThreadPoolExecutor(max_workers=8) as pool:
        refused = list(pool.map(lambda case: kc(*case[0], data_dir=site, expect=None), ERRORS))
        usage = list(pool.map(lambda case: kc(*case[0], data_dir=site, expect=None), USAGE_ERRORS))
    for (args, fragments), proc in zip(ERRORS, refused):
        assert proc.returncode == 1, args
        assert one_line_error(proc, *fragments).startswith("error: "), args
    for (args, fragment), proc in zip(USAGE_ERRORS, usage):
        assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
    assert kc("--list-servers", data_dir=site).stdout == "Count Key\n0 dup\n"  # nothing else was created
