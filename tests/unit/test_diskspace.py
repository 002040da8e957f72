"""Free space before an import (services.diskspace, checked by services.archives member by member):
an archive that would not fit, with the reserve left free, is refused in one sentence naming the
folder, what it needs and what is free, before the member that would not fit is written, and leaves
nothing behind. ``shutil.disk_usage`` is faked: filling a real disk is not a unit test."""
from __future__ import annotations

import tarfile
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from eportal_core.models import AuditEvent, PatchLevel, Patchset
from eportal_core.plugins import hookimpl, make_plugin_manager
from eportal_core.services import archives, diskspace
from eportal_core.services.diskspace import NotEnoughSpace, human, on_disk, reserve
from eportal_core.services.patchstore import import_archive
from eportal_core.testing.patches import PLAN, make_archive

NAME, RELEASED, KERNELS = PLAN[1]
MiB = 2**20


class Recorder:
    def __init__(self):
        self.downloaded = []

    @hookimpl
    def eportal_patchset_downloaded(self, patchset):
        self.downloaded.append(patchset.name)


def fake_free(monkeypatch, free: int) -> list:
    """Make every disk_usage report ``free`` bytes free; returns the folders asked about."""
    asked = []

    def disk_usage(path):
        asked.append(path)
        return SimpleNamespace(total=10 * free, used=9 * free, free=free)
    monkeypatch.setattr(diskspace, "disk_usage", disk_usage)
    return asked


def need_of(archive) -> int:
    """What the importer counts: every member below ``<NAME>/`` in whole 4 KiB blocks."""
    with tarfile.open(archive.path) as tar:
        return sum(on_disk(m.size if m.isfile() else 0) for m in tar.getmembers() if "/" in m.name.rstrip("/"))


def counts(db) -> tuple[int, int, int]:
    return tuple(db.scalar(select(func.count()).select_from(t)) for t in (Patchset, PatchLevel, AuditEvent))


def disk(data_dir) -> list[str]:
    root = data_dir / "patches"
    return sorted(p.name for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize("size, text", [
    (int(1.2 * 2**30), "1.2 GiB"), (300 * MiB, "300 MiB"), (int(4.5 * MiB), "4.5 MiB"), (0, "0.0 MiB"),
    (2**30, "1.0 GiB"),
])
def test_sizes_read_as_mib_or_gib(size, text):
    assert human(size) == text


def test_the_reserve_is_64_mib_or_5_percent():
    assert reserve(0) == reserve(1000 * MiB) == 64 * MiB
    assert reserve(2 * 2**30) == int(2 * 2**30 * 0.05)
    assert on_disk(0) == on_disk(1) == on_disk(4096) == 4096 and on_disk(4097) == 8192


@pytest.mark.parametrize("compression", ["bz2", "gz"])
def test_an_archive_that_does_not_fit_is_refused_and_leaves_nothing(dbsession, tmp_path, monkeypatch, compression):
    archive = make_archive(tmp_path / "in", NAME, RELEASED, KERNELS, payload_size=300_000, compression=compression)
    data_dir = tmp_path / "data"
    need = need_of(archive)
    free = need + reserve(need) - 1
    fake_free(monkeypatch, free)
    recorder = Recorder()
    before = counts(dbsession)
    with pytest.raises(NotEnoughSpace) as caught:
        import_archive(dbsession, archive, data_dir=data_dir, pm=make_plugin_manager(extra={"rec": recorder}))
    assert str(caught.value) == (f"not enough free space in {data_dir / 'patches'}: the archive needs {human(need)} "
                                 f"plus a 64 MiB reserve, {human(free)} free")
    assert (caught.value.need, caught.value.free) == (need + reserve(need), free)
    assert disk(data_dir) == []  # not even the temporary folder
    assert counts(dbsession) == before and recorder.downloaded == []


def test_just_enough_space_imports(dbsession, tmp_path, monkeypatch):
    archive = make_archive(tmp_path / "in", NAME, RELEASED, KERNELS, payload_size=300_000)
    need = need_of(archive)
    fake_free(monkeypatch, need + reserve(need))
    assert import_archive(dbsession, archive, data_dir=tmp_path / "data").name == NAME


def test_writing_stops_at_the_member_that_does_not_fit(dbsession, tmp_path, monkeypatch):
    """Room for the small members only: the big ones are never written, yet the refusal names the
    whole archive's need (the remaining headers are counted, not unpacked)."""
    archive = make_archive(tmp_path / "in", NAME, RELEASED, KERNELS, payload_size=3 * MiB)
    need = need_of(archive)
    free = 64 * MiB + 256 * 1024
    fake_free(monkeypatch, free)
    written = []
    real_stream = archives._stream_file
    monkeypatch.setattr(archives, "_stream_file", lambda tar, member, target: (written.append(member.size),
                                                                                real_stream(tar, member, target))[1])
    with pytest.raises(NotEnoughSpace, match=f"the archive needs {human(need)} plus a 64 MiB reserve, 64 MiB free$"):
        import_archive(dbsession, archive, data_dir=tmp_path / "data")
    assert written and max(written) < 3 * MiB  # only small files went to disk before the refusal
    assert disk(tmp_path / "data") == []


def test_a_truncated_archive_without_space_needs_at_least(dbsession, tmp_path, monkeypatch):
    archive = make_archive(tmp_path / "in", NAME, RELEASED, KERNELS, payload_size=3 * MiB, corrupt="truncated")
    fake_free(monkeypatch, 64 * MiB + 64 * 1024)
    with pytest.raises(NotEnoughSpace, match=r"^not enough free space in .*/patches: the archive needs at least "
                                             r"[0-9.]+ MiB plus a 64 MiB reserve, 64 MiB free$"):
        import_archive(dbsession, archive, data_dir=tmp_path / "data")
    assert disk(tmp_path / "data") == []


def test_the_check_asks_about_the_patches_folder(dbsession, tmp_path, monkeypatch, patch_archives):
    data_dir = tmp_path / "data"
    (data_dir / "patches").mkdir(parents=True)
    asked = fake_free(monkeypatch, 10 * 2**30)
    import_archive(dbsession, patch_archives[0], data_dir=data_dir)
    assert asked == [data_dir / "patches"]
