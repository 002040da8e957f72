"""Free space (``services.diskspace``) in the patch source, on SQLite and PostgreSQL: a download is
not started when the announced size would not fit in ``.downloads``; an archive that would not fit
unpacked is a recorded poll failure (not a refusal: the archive is fine) that leaves nothing on disk
or in the database, is not downloaded again by scheduled polls until the space is there, and is
imported once it is. ``shutil.disk_usage`` is faked: filling a real disk is not a test."""
from __future__ import annotations

import tarfile
from types import SimpleNamespace

import pytest
from eportal_patch_source import access as access_store
from eportal_patch_source import service
from eportal_patch_source.presenters import poll_summary, rows
from eportal_patch_source.state import FAILED, load_state
from patch_source_helpers import data_dir, downloads, http_access, offer
from patch_source_helpers import http_source as make_http_source
from sqlalchemy import func, select

from eportal_core.api import MAIN_FEED, AuditEvent, Feed, PatchLevel, Patchset, SourceError, diskspace


def fake_free(monkeypatch, free: int) -> None:
    monkeypatch.setattr(diskspace, "disk_usage", lambda path: SimpleNamespace(total=2 * free, used=free, free=free))


def need_of(archive) -> int:
    with tarfile.open(archive.path) as tar:
        return sum(diskspace.on_disk(m.size if m.isfile() else 0) for m in tar.getmembers() if "/" in m.name.rstrip("/"))


def configure(env, info) -> None:
    with env.ctx.sessions() as db:
        access_store.save(db, info, pm=env.pm, settings=env.settings, actor="test")


def leftovers(env) -> list[str]:
    patches = data_dir(env.settings) / "patches"
    found = [p.name for p in patches.iterdir() if p.name != ".downloads"]
    return found + [p.name for p in downloads(env.settings).iterdir() if p.name != ".poll.lock"]


def test_a_download_that_would_not_fit_is_not_started(ps_env, upstream, upstream_archives, monkeypatch):
    archive = upstream_archives.good[0]
    offer(upstream, [archive])
    source = make_http_source(ps_env.settings, ps_env.pm, upstream)
    entry = source.index().entries[0]
    free = entry.size + diskspace.reserve(entry.size) - 1
    fake_free(monkeypatch, free)
    with pytest.raises(SourceError) as caught:
        source.fetch(entry)
    assert str(caught.value) == (f"not enough free space in {downloads(ps_env.settings)}: the download of "
                                 f"{archive.name} needs {diskspace.human(entry.size)} plus a 64 MiB reserve, {diskspace.human(free)} free")
    assert not caught.value.transient and caught.value.space_needed == entry.size + diskspace.reserve(entry.size)
    assert upstream.archive_hits(archive.name) == []  # not a byte asked for
    assert list(downloads(ps_env.settings).iterdir()) == []  # no empty .part either


def test_an_archive_too_big_to_unpack_fails_the_poll_and_leaves_nothing(ps_env, upstream, upstream_archives,
                                                                        monkeypatch):
    archive = upstream_archives.good[0]
    offer(upstream, [archive])
    configure(ps_env, http_access(upstream))
    size, need = archive.path.stat().st_size, need_of(archive)
    free = need + diskspace.reserve(need) - 1  # room for the download, not for it unpacked
    assert size + diskspace.reserve(size) <= free
    fake_free(monkeypatch, free)

    result = service.poll(ps_env.ctx)
    patches = data_dir(ps_env.settings) / "patches"
    expected = (f"{archive.name} was not imported: not enough free space in {patches}: the archive needs "
                f"{diskspace.human(need)} plus a 64 MiB reserve, {diskspace.human(free)} free")
    assert result.failures == {archive.name: expected} and result.downloaded == []
    with ps_env.ctx.sessions() as db:
        failure = load_state(db).failures[archive.name]
        assert (failure["error"], failure["kind"]) == (expected, FAILED)
        assert failure["need"] == need + diskspace.reserve(need) + size  # unpacked, and the download again
        row = db.scalar(select(Patchset).where(Patchset.name == archive.name))
        assert row.downloaded is None  # as the index recorded it: nothing imported
        assert db.scalar(select(func.count()).select_from(PatchLevel)) == 0
        assert db.scalar(select(func.count()).where(AuditEvent.action == "patchset.import")) == 0
        main = db.scalar(select(Feed).where(Feed.name == MAIN_FEED))
        request = SimpleNamespace(route_url=lambda *a, **kw: "")
        assert [r["status_text"] for r in rows(request, db, main, load_state(db))] == ["not enough disk space"]
        assert poll_summary(load_state(db))["failures"][0]["error"] == expected.split(" was not imported: ")[1]
    assert leftovers(ps_env) == []  # no patchset folder, no temporary folder, no download

    # still short: scheduled polls do not download it again; "check now" does
    assert service.poll(ps_env.ctx).failures == {}
    assert len(upstream.archive_hits(archive.name)) == 1
    with ps_env.ctx.sessions() as db:
        assert load_state(db).failures[archive.name]["error"] == expected  # still shown
    assert service.poll(ps_env.ctx, retry_refused=True).failures == {archive.name: expected}
    assert len(upstream.archive_hits(archive.name)) == 2

    # space freed: the next scheduled poll imports it
    fake_free(monkeypatch, 10 * 2**30)
    result = service.poll(ps_env.ctx)
    assert result.ok and result.downloaded == [archive.name]
    assert (patches / archive.name / "manifest.json").is_file()


def test_kcare_deploy_of_an_archive_too_big_is_refused(ps_env, upstream_archives, monkeypatch):
    archive = upstream_archives.good[1]
    fake_free(monkeypatch, 64 * 2**20)
    with pytest.raises(diskspace.NotEnoughSpace, match=rf"^not enough free space in {data_dir(ps_env.settings)}/patches: "
                                             rf"the archive needs [0-9.]+ MiB plus a 64 MiB reserve, 64 MiB free$"):
        service.import_file(ps_env.ctx, archive.path)
    assert [p.name for p in (data_dir(ps_env.settings) / "patches").iterdir()] == []
