"""The patch store (services.patchstore, services.archives): an archive is imported whole, verified
member by member and checksum by checksum, or refused with a one-line reason and nothing left
behind, on disk or in the database; large archives stream with small memory; an interrupted import
leaves only a temporary folder that clean_partial_imports removes."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import func, select

from eportal_core.models import AuditEvent, PatchLevel, Patchset
from eportal_core.plugins import hookimpl, make_plugin_manager
from eportal_core.services import ServiceError
from eportal_core.services.archives import PARTIAL_PREFIX, clean_partial_imports
from eportal_core.services.manifests import valid_patchset_name
from eportal_core.services.patchstore import find_patch_file, has_patches, import_archive, latest_level
from eportal_core.testing.patches import CORRUPTIONS, KERNEL_IDS, PLAN, make_archive

NAME, RELEASED, KERNELS = PLAN[1]
K0, K1, K2 = KERNEL_IDS


def sha256_file(path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def disk(data_dir: Path) -> list[str]:
    """Everything under <data_dir>/patches, as relative paths."""
    root = data_dir / "patches"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []


def counts(db) -> tuple[int, int, int]:
    """(patchsets, levels, audit events)"""
    return tuple(db.scalar(select(func.count()).select_from(table)) for table in (Patchset, PatchLevel, AuditEvent))


class Recorder:
    def __init__(self):
        self.downloaded = []

    @hookimpl
    def eportal_patchset_downloaded(self, patchset):
        self.downloaded.append((patchset.name, patchset.id is not None))


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


# --- a good import ------------------------------------------------------------------------------

def test_import_unpacks_records_and_announces(dbsession, patch_archives, data_dir):
    archive = patch_archives[1]
    recorder = Recorder()
    ps = import_archive(dbsession, archive, data_dir=data_dir, pm=make_plugin_manager(extra={"rec": recorder}),
                        actor="alice")
    dbsession.commit()
    assert recorder.downloaded == [(archive.name, True)]  # fired after the flush: the row has its id
    audit = dbsession.scalars(select(AuditEvent).where(AuditEvent.action == "patchset.import")).all()
    assert [(a.actor, a.target) for a in audit] == [("alice", archive.name)]
    row = dbsession.scalar(select(Patchset).where(Patchset.name == archive.name))
    assert row is ps
    assert row.released == archive.released and row.product == "kernel"
    assert row.downloaded is not None and row.status == "available"
    assert row.size == archive.path.stat().st_size
    assert row.sha256 == sha256_file(archive.path)
    assert row.changelog == archive.member("changelog").decode()
    levels = dict(dbsession.execute(select(PatchLevel.kernel_id, PatchLevel.level).where(PatchLevel.patchset_id == row.id)).all())
    assert levels == archive.kernels
    home = data_dir / "patches" / archive.name
    for kernel_id, level in archive.kernels.items():
        assert (home / "patches" / kernel_id / str(level) / "kpatch.bin").read_bytes() == archive.payload(kernel_id)
        info = (home / "patches" / kernel_id / str(level) / "kpatch.info").read_text()
        assert info.startswith("OS: ") and "kpatch-cve: CVE-" in info
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file()) == \
        sorted(["manifest.json", *archive.files])
    assert not [n for n in os.listdir(data_dir / "patches") if n.startswith(PARTIAL_PREFIX)]


def test_gzip_archives_import_too(dbsession, tmp_path, data_dir):
    archive = make_archive(tmp_path / "in", "K20240615_01", "2024-06-15T08:30:00+02:00", {K0: 7}, compression="gz")
    ps = import_archive(dbsession, archive, data_dir=data_dir)
    assert ps.released.isoformat() == "2024-06-15T06:30:00"  # stored as naive UTC
    assert (data_dir / "patches" / "K20240615_01" / "patches" / K0 / "7" / "kpatch.bin").read_bytes() == archive.payload(K0)


@pytest.mark.parametrize("name,ok", [
    ("K20240101_01", True), ("K01012024_1", True), ("01012024_12", True), ("K31122023_3", True),
    ("K20241301_01", False), ("K20240101_1", False), ("32012024_1", False), ("K2024010_01", False),
    ("k20240101_01", False), ("K20240101_01.tar", False), ("../K20240101_01", False), ("", False),
])
def test_patchset_names(name, ok):
    # K20240101_1: one serial digit is not K<YYYYMMDD>_<NN>, and 20/24/0101 is no DDMMYYYY date
    assert valid_patchset_name(name) is ok


# --- refusals: each with its reason, and nothing left behind -------------------------------------

def expected_message(corrupt: str, name: str) -> str:
    kernel_id, level = next(iter(KERNELS.items()))
    level_dir = f"{name}/patches/{kernel_id}/{level}"
    return {
        "checksum": f"checksum mismatch for {level_dir}/kpatch.bin: sha256 is ",
        "dotdot": f"member '{name}/../evil.txt' climbs out of its folder with '..'",
        "symlink": f"member '{level_dir}/kpatch.link' is a symbolic link",
        "hardlink": f"member '{level_dir}/kpatch.hard' is a hard link",
        "truncated": "the archive is truncated or corrupt",
        "absolute": "member '/tmp/eportal-evil.txt' has an absolute path",
        "unlisted": f"member {level_dir}/notes.txt is not listed in manifest.json",
        "missing": f"{name}/patches/README is listed in manifest.json but missing from the archive",
        "device": f"member '{level_dir}/kpatch.dev' is a device",
        "fifo": f"member '{level_dir}/kpatch.fifo' is a FIFO",
        "outside": f"member 'K20990101_01/evil.txt' is outside {name}/",
    }[corrupt]


@pytest.mark.parametrize("compression", ["bz2", "gz"])
@pytest.mark.parametrize("corrupt", CORRUPTIONS)
def test_corrupt_archives_are_refused_and_leave_nothing(dbsession, tmp_path, data_dir, corrupt, compression):
    archive = make_archive(tmp_path / "in", NAME, RELEASED, KERNELS, corrupt=corrupt, compression=compression,
                           payload_size=300_000)
    recorder = Recorder()
    before = counts(dbsession)
    with pytest.raises(ServiceError) as err:
        import_archive(dbsession, archive, data_dir=data_dir, pm=make_plugin_manager(extra={"rec": recorder}))
    message = str(err.value)
    assert expected_message(corrupt, NAME) in message
    assert "\n" not in message
    assert disk(data_dir) == []  # not even a temporary folder
    assert counts(dbsession) == before
    assert recorder.downloaded == []
    assert not Path("/tmp/eportal-evil.txt").exists() and not (tmp_path / "in" / "evil.txt").exists()


def test_a_checksum_mismatch_names_both_sums(dbsession, tmp_path, data_dir):
    archive = make_archive(tmp_path / "in", NAME, RELEASED, KERNELS, corrupt="checksum")
    kernel_id, level = next(iter(KERNELS.items()))
    actual = archive.files[f"patches/{kernel_id}/{level}/kpatch.bin"]
    with pytest.raises(ServiceError, match=f"sha256 is {actual}, manifest.json says [0-9a-f]{{64}}$"):
        import_archive(dbsession, archive, data_dir=data_dir)


@pytest.mark.parametrize("overrides,message", [
    ({"name": "K20240101_01"}, "manifest.json names the patchset 'K20240101_01' but its folder is 'K01022024_1'"),
    ({"kernels": {"ABCDEF": 1}}, "kernel id 'ABCDEF' is not 40 lowercase hexadecimal digits"),
    ({"kernels": {K0: 0}}, f"the level of kernel {K0} must be a positive whole number"),
    ({"kernels": {K0: "2"}}, f"the level of kernel {K0} must be a positive whole number"),
    ({"kernels": {K0: 9, K1: 2, K2: 1}}, f"manifest.json gives kernel {K0} level 9, not 2"),
    ({"kernels": {K1: 2, K2: 1}}, f"is for kernel {K0}, which manifest.json does not list"),
    ({"released": "last tuesday"}, "released 'last tuesday' is not an ISO time"),
    ({"files": {}}, "files must be a non-empty object"),
])
def test_a_lying_manifest_is_refused(dbsession, tmp_path, data_dir, overrides, message):
    archive = make_archive(tmp_path / "in", NAME, RELEASED, KERNELS, manifest_overrides=overrides)
    with pytest.raises(ServiceError) as err:
        import_archive(dbsession, archive, data_dir=data_dir)
    assert message in str(err.value)
    assert disk(data_dir) == []
    assert counts(dbsession) == (0, 0, 0)


def test_a_file_that_is_no_archive_is_refused(dbsession, tmp_path, data_dir):
    bogus = tmp_path / "K20240101_01.tar.bz2"
    bogus.write_bytes(b"PK\x03\x04 this is a zip file")
    with pytest.raises(ServiceError, match="is not a .tar.bz2 or .tar.gz archive"):
        import_archive(dbsession, bogus, data_dir=data_dir)
    with pytest.raises(ServiceError, match="does not exist"):
        import_archive(dbsession, tmp_path / "K20240102_01.tar.bz2", data_dir=data_dir)
    assert disk(data_dir) == []


# --- names that already exist ---------------------------------------------------------------------

def test_a_second_import_of_a_name_is_refused(dbsession, patch_archives, tmp_path, data_dir):
    archive = patch_archives[0]
    import_archive(dbsession, archive, data_dir=data_dir)
    dbsession.commit()
    before, on_disk = counts(dbsession), disk(data_dir)
    with pytest.raises(ServiceError, match=f"^patchset {archive.name} is already imported \\(downloaded "):
        import_archive(dbsession, archive, data_dir=data_dir)
    # under a name that does not tell: refused after unpacking, the temporary folder removed
    upload = tmp_path / "upload.bin"
    shutil.copy(archive.path, upload)
    with pytest.raises(ServiceError, match=f"^patchset {archive.name} is already imported"):
        import_archive(dbsession, upload, data_dir=data_dir)
    assert counts(dbsession) == before
    assert disk(data_dir) == on_disk


def test_a_patchset_known_upstream_is_filled_in(dbsession, patch_archives, data_dir):
    archive = patch_archives[2]
    known = Patchset(name=archive.name, released=archive.released, status="available",
                     sha256=sha256_file(archive.path), size=archive.path.stat().st_size)
    dbsession.add(known)
    dbsession.flush()
    ps = import_archive(dbsession, archive, data_dir=data_dir)
    assert ps.id == known.id and ps.downloaded is not None
    assert counts(dbsession)[:2] == (1, len(archive.kernels))


def test_an_archive_unlike_the_one_announced_upstream_is_refused(dbsession, patch_archives, data_dir):
    archive = patch_archives[2]
    dbsession.add(Patchset(name=archive.name, released=archive.released, sha256="ab" * 32))
    dbsession.flush()
    with pytest.raises(ServiceError, match=f"archive {archive.name} has sha256 [0-9a-f]{{64}}, but upstream announced abab"):
        import_archive(dbsession, archive, data_dir=data_dir)
    assert disk(data_dir) == []
    assert dbsession.scalar(select(Patchset.downloaded).where(Patchset.name == archive.name)) is None


def test_a_folder_left_by_an_uncommitted_import_is_replaced(dbsession, patch_archives, data_dir):
    archive = patch_archives[3]
    stale = data_dir / "patches" / archive.name
    stale.mkdir(parents=True)
    (stale / "junk").write_text("from an import whose transaction never committed")
    import_archive(dbsession, archive, data_dir=data_dir)
    assert not (stale / "junk").exists()
    assert (stale / "manifest.json").is_file()
    assert not [n for n in os.listdir(data_dir / "patches") if n.startswith(PARTIAL_PREFIX)]


def test_a_rolled_back_import_removes_its_folder(dbsession, patch_archives, data_dir):
    archive = patch_archives[4]
    import_archive(dbsession, archive, data_dir=data_dir)
    assert (data_dir / "patches" / archive.name).is_dir()
    dbsession.rollback()
    assert disk(data_dir) == []
    assert counts(dbsession) == (0, 0, 0)
    # and the same import then works, and survives its commit
    import_archive(dbsession, archive, data_dir=data_dir)
    dbsession.commit()
    assert (data_dir / "patches" / archive.name / "manifest.json").is_file()


# --- interrupted imports ------------------------------------------------------------------------

CRASHING_IMPORT = """
import sys, time
from pathlib import Path
from eportal_core.services import archives
def hang(*args):  # everything is unpacked and verified; the process dies before the rename
    print("unpacked", flush=True)
    time.sleep(600)
archives.check_layout = hang
archives.unpack(sys.argv[1], Path(sys.argv[2]) / "patches")
"""


def test_a_killed_import_leaves_only_a_partial_folder_that_cleanup_removes(patch_archives, data_dir):
    proc = subprocess.Popen([sys.executable, "-c", CRASHING_IMPORT, str(patch_archives[1].path), str(data_dir)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "unpacked"
        left = os.listdir(data_dir / "patches")
        assert len(left) == 1 and left[0].startswith(PARTIAL_PREFIX) and f"-{proc.pid}-" in left[0]
        assert clean_partial_imports(data_dir) == []  # its process is alive: maybe still importing
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert os.listdir(data_dir / "patches") == left  # a crash leaves the temporary folder, nothing else
    assert clean_partial_imports(data_dir) == left
    assert os.listdir(data_dir / "patches") == []


def test_cleanup_keeps_live_imports_and_patchsets(data_dir):
    patches = data_dir / "patches"
    (patches / "K20240101_01").mkdir(parents=True)
    mine = patches / f"{PARTIAL_PREFIX}{os.getpid()}-0000abcd"
    parent = patches / f"{PARTIAL_PREFIX}{os.getppid()}-0000beef"
    stale = patches / f"{PARTIAL_PREFIX}{os.getppid()}-0000dead"
    odd = patches / f"{PARTIAL_PREFIX}garbage"
    for d in (mine, parent, stale, odd):
        d.mkdir()
        (d / "kpatch.bin").write_bytes(b"x")
    day_ago = time.time() - 25 * 3600
    os.utime(stale, (day_ago, day_ago))
    assert sorted(clean_partial_imports(data_dir)) == sorted([stale.name, odd.name])
    assert sorted(os.listdir(patches)) == sorted(["K20240101_01", mine.name, parent.name])
    assert clean_partial_imports(data_dir / "nowhere") == []


# --- large archives stream ----------------------------------------------------------------------

BIG = 64 * 2**20


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory):
    return make_archive(tmp_path_factory.mktemp("big"), "K20240701_01", "2024-07-01T00:00:00", {K0: 1},
                        payload_size=BIG, compression="gz")


def test_a_64_mb_payload_imports_with_small_peak_memory(dbsession, big_archive, data_dir, record_property):
    tracemalloc.start()
    started = time.perf_counter()
    try:
        import_archive(dbsession, big_archive, data_dir=data_dir)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    record_property("import_seconds", round(elapsed, 2))
    record_property("tracemalloc_peak_bytes", peak)
    print(f"\n64 MB payload: imported in {elapsed:.2f} s, tracemalloc peak {peak / 2**20:.2f} MiB")
    assert peak < 4 * 2**20, f"peak {peak} bytes: the archive was not streamed"
    stored = data_dir / "patches" / big_archive.name / "patches" / K0 / "1" / "kpatch.bin"
    assert stored.stat().st_size == BIG
    assert sha256_file(stored) == big_archive.files[f"patches/{K0}/1/kpatch.bin"]


def test_a_streamed_archive_is_written_without_holding_it_and_imports(dbsession, tmp_path, data_dir):
    kernels = {K0: 3, K1: 1}
    size = 12 * 2**20 + 1  # not a whole number of generator blocks
    tracemalloc.start()
    try:
        archive = make_archive(tmp_path / "in", "K20240801_01", "2024-08-01T00:00:00", kernels,
                               payload_size=size, compression="gz", streaming=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 * 2**20, f"peak {peak} bytes: the payload was held in memory"
    staged = make_archive(tmp_path / "staged", "K20240801_01", "2024-08-01T00:00:00", kernels,
                          payload_size=size, compression="gz")
    def layout(path):
        with tarfile.open(path, "r:*") as tar:
            return [(m.name, m.type, m.size if m.isreg() else 0) for m in tar]
    assert layout(archive) == layout(staged), "the same members, in the same order, as make_archive"
    ps = import_archive(dbsession, archive, data_dir=data_dir)
    assert dict(dbsession.execute(select(PatchLevel.kernel_id, PatchLevel.level)
                                  .where(PatchLevel.patchset_id == ps.id)).all()) == kernels
    stored = data_dir / "patches" / archive.name / "patches" / K0 / "3" / "kpatch.bin"
    assert stored.stat().st_size == size and stored.read_bytes() == archive.payload(K0)
    assert sha256_file(stored) == archive.files[f"patches/{K0}/3/kpatch.bin"]
    with pytest.raises(ValueError, match="streaming"):
        make_archive(tmp_path / "x", "K20240801_02", "2024-08-01T00:00:00", kernels, streaming=True,
                     corrupt="checksum")


# --- lookups the agent endpoints make ---------------------------------------------------------

def test_lookups_refuse_anything_but_validated_ids(dbsession, patch_archives, data_dir):
    from eportal_core.models import MAIN_FEED, Feed
    from eportal_core.services import deploy
    for archive in patch_archives:
        import_archive(dbsession, archive, data_dir=data_dir)
    main = dbsession.scalar(select(Feed).where(Feed.name == MAIN_FEED))
    deploy.enable_upto(dbsession, main, dbsession.scalar(select(Patchset).where(Patchset.name == patch_archives[2].name)))
    conn = dbsession.connection()
    assert latest_level(conn, main.id, K0) == 3
    assert latest_level(conn, main.id, "f" * 40) is None
    assert has_patches(conn, K0) and not has_patches(conn, "f" * 40)
    found = find_patch_file(conn, data_dir, main.id, K0, 3, "kpatch.bin")
    assert found is not None and found.patchset == patch_archives[2].name
    assert found.path.read_bytes() == patch_archives[2].payload(K0)
    for kernel_id, level, filename in [
        (K0, 3, "../manifest.json"), (K0, 3, ".."), (K0, 3, ".hidden"), (K0, 3, "a/b"), (K0, 3, ""),
        (K0, 3, "x" * 129), (K0.upper(), 3, "kpatch.bin"), ("../" + K0[3:], 3, "kpatch.bin"),
        (K0, 0, "kpatch.bin"), (K0, -1, "kpatch.bin"), (K0, True, "kpatch.bin"), (K0, "3", "kpatch.bin"),
        (K0, 4, "kpatch.bin"),  # not enabled
        (K0, 3, "kpatch.missing"),
    ]:
        assert find_patch_file(conn, data_dir, main.id, kernel_id, level, filename) is None, (kernel_id, level, filename)
