"""``kc.eportal feed`` / ``eportal feed`` and ``kc.eportal --auto-update``, as real subprocesses.

Each test gets a data dir of its own (``EPORTAL_DATA_DIR``) next to the checkout's development.ini,
copied from one ``eportal init``-ed site. Archives are imported in-process through the real
importer, into the same SQLite file, as the patch source would.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
import transaction

from eportal_core.api import get_tm_session, import_archive
from eportal_core.testing.core import get_session_factory, make_engine
from eportal_core.testing.patches import KERNEL_IDS, make_archive

ROOT = Path(__file__).resolve().parents[3]
DEV_INI = ROOT / "development.ini"
BIN = Path(sys.executable).parent
EPORTAL = BIN / "eportal"
KC = BIN / "kc.eportal"


def run(script: Path, *args: str, data_dir: Path, ini: Path = DEV_INI, expect: int | None = 0) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EPORTAL_", "PYTHONWARNINGS", "COLUMNS"))}
    env.update(EPORTAL_DATA_DIR=str(data_dir), EPORTAL_INI=str(ini), COLUMNS="100")
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


def table(out: str) -> list[list[str]]:
    """The rows of a feed listing, split on runs of spaces (header and ruler left out)."""
    lines = out.splitlines()
    assert lines[0].split() == ["Name", "Auto", "Deploy", "after", "Keys"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    return [line.split() for line in lines[2:]]


@pytest.fixture(scope="module")
def initialized_site(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("feeds-site")
    assert run(EPORTAL, "init", data_dir=data_dir).stdout.startswith("admin password: ")
    return data_dir


@pytest.fixture
def site(initialized_site, tmp_path) -> Path:
    data_dir = tmp_path / "data"
    shutil.copytree(initialized_site, data_dir)
    return data_dir


def import_archives(site: Path, archives) -> None:
    engine = make_engine(f"sqlite:///{site}/eportal.sqlite")
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        db = get_tm_session(get_session_factory(engine), tm)
        for archive in archives:
            import_archive(db, archive, data_dir=site)
    engine.dispose()


def key_feeds(site: Path) -> dict[str, str]:
    engine = make_engine(f"sqlite:///{site}/eportal.sqlite")
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT k.key, f.name FROM keys k JOIN feeds f ON f.id = k.feed_id")).all())
    engine.dispose()
    return rows


def test_list_create_change_and_delete(site):
    assert table(kc("feed", data_dir=site).stdout) == [["main", "no", "0h", "0"]]
    assert kc("feed", "-a", "beta", "--auto", "--deploy-after", "10", data_dir=site).stdout == \
        "Feed 'beta' created (auto=yes deploy_after=10h)\n"
    assert kc("feed", "--add", "gamma", data_dir=site).stdout == "Feed 'gamma' created (auto=no deploy_after=0h)\n"
    kc("key", "-a", "k1", "--feed", "beta", data_dir=site)
    kc("key", "-a", "k2", "--feed", "beta", data_dir=site)
    assert table(kc("feed", data_dir=site).stdout) == [["main", "no", "0h", "0"], ["beta", "yes", "10h", "2"],
                                                       ["gamma", "no", "0h", "0"]]
    assert table(run(EPORTAL, "feed", "beta", data_dir=site).stdout) == [["beta", "yes", "10h", "2"]]  # the same under eportal
    assert kc("feed", "-c", "beta", "--no-auto", data_dir=site).stdout == "Feed 'beta' changed (auto=no deploy_after=10h)\n"
    assert kc("feed", "-c", "main", "--auto", "--deploy-after", "2", data_dir=site).stdout == \
        "Feed 'main' changed (auto=yes deploy_after=2h)\n"
    assert kc("feed", "-d", "beta", data_dir=site).stdout == "Feed 'beta' deleted; 2 keys moved to main\n"
    assert key_feeds(site) == {"k1": "main", "k2": "main"}
    assert run(EPORTAL, "feed", "--delete", "gamma", data_dir=site).stdout == "Feed 'gamma' deleted; 0 keys moved to main\n"
    assert table(kc("feed", data_dir=site).stdout) == [["main", "yes", "2h", "2"]]


ERRORS = [
    (("feed", "-a", "bad name"), ("invalid feed name 'bad name'",)),
    (("feed", "-a", "main"), ("feed 'main' already exists",)),
    (("feed", "-a", "x1", "--deploy-after", "8761"), ("between 0 (at once) and 8760 hours",)),
    (("feed", "-a", "x2", "--deploy-after", "soon"), ("whole number of hours",)),
    (("feed", "-c", "ghost", "--auto"), ("feed 'ghost' does not exist",)),
    (("feed", "-d", "ghost"), ("feed 'ghost' does not exist",)),
    (("feed", "-d", "main"), ("the main feed cannot be deleted",)),
    (("feed", "ghost"), ("feed 'ghost' does not exist",)),
]
USAGE_ERRORS = [
    (("feed", "-a", "-d", "x"), "use one action at a time (got -a, -d)"),
    (("feed", "-c", "main"), "-c changes what you give"),
    (("feed", "-c"), "-c needs the feed NAME"),
    (("feed", "--auto"), "go with -a or -c"),
    (("feed", "-d", "main", "--deploy-after", "1"), "-d takes only the feed NAME"),
]


def test_errors_are_one_line_without_traceback_and_change_nothing(site):
    with ThreadPoolExecutor(max_workers=8) as pool:
        refused = list(pool.map(lambda case: kc(*case[0], data_dir=site, expect=None), ERRORS))
        usage = list(pool.map(lambda case: kc(*case[0], data_dir=site, expect=None), USAGE_ERRORS))
    for (args, fragments), proc in zip(ERRORS, refused):
        assert proc.returncode == 1, args
        assert one_line_error(proc, *fragments).startswith("error: "), args
    for (args, fragment), proc in zip(USAGE_ERRORS, usage):
        assert proc.returncode == 2, args
        assert one_line_error(proc, fragment).startswith("error: "), args
    assert table(kc("feed", data_dir=site).stdout) == [["main", "no", "0h", "0"]]  # nothing was created


def test_auto_update_flag_prints_what_it_enabled_per_feed(site, tmp_path):
    assert kc("--auto-update", data_dir=site).stdout == "no feed has auto update on\n"
    archives = [make_archive(tmp_path / "archives", "K20240101_01", "2024-01-01T10:00:00", {KERNEL_IDS[0]: 1}),
                make_archive(tmp_path / "archives", "K20240201_01", "2024-02-01T10:00:00", {KERNEL_IDS[0]: 2})]
    import_archives(site, archives)
    kc("feed", "-a", "fast", "--auto", "--deploy-after", "0", data_dir=site)
    kc("feed", "-a", "slow", "--auto", "--deploy-after", "10", data_dir=site)
    kc("feed", "-a", "manual", data_dir=site)
    assert kc("--auto-update", data_dir=site).stdout == (
        "fast: enabled K20240101_01, K20240201_01\n"
        "slow: nothing due (deploy after 10h)\n")
    assert kc("--auto-update", data_dir=site).stdout == (
        "fast: nothing due (deploy after 0h)\n"
        "slow: nothing due (deploy after 10h)\n")
    proc = kc("--auto-update", "-l", data_dir=site, expect=2)
    assert "one action at a time" in proc.stderr and "Traceback" not in proc.stderr


def test_with_the_plugin_disabled_its_commands_are_gone_and_the_core_works(site, tmp_path):
    text = DEV_INI.read_text()
    ini = tmp_path / "disabled.ini"
    ini.write_text(text.replace("[app:main]\n", "[app:main]\neportal.plugins.disabled = feeds\n", 1))
    assert kc("feed", data_dir=site, ini=ini, expect=2).stderr.count("No such command 'feed'") == 1
    assert "No such option '--auto-update'" in kc("--auto-update", data_dir=site, ini=ini, expect=2).stderr
    rows = [line.split() for line in run(EPORTAL, "plugins", data_dir=site, ini=ini).stdout.splitlines()]
    assert ["feeds", "eportal-feeds", "0.1.0", "disabled"] in rows
    assert kc("key", "-a", "k1", data_dir=site, ini=ini).stdout == "k1\n"
    assert key_feeds(site) == {"k1": "main"}
