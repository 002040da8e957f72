"""The poll and the deploy steps (``service``), against the test upstream over real HTTP, on SQLite and
PostgreSQL: new patchsets are downloaded and never deployed; blocked upstream means blocked and
disabled everywhere; a corrupted archive is refused with a clear error, leaves nothing behind and
does not stop the others; an interrupted download resumes; failures are recorded, never raised."""
from __future__ import annotations

import shutil

import pytest
from eportal_patch_source import access as access_store
from eportal_patch_source import poll_job, service
from eportal_patch_source.state import FAILED, REFUSED, load_state, poll_lock
from patch_source_helpers import data_dir, downloads, http_access, offer
from sqlalchemy import func, select

from eportal_core.api import MAIN_FEED, AuditEvent, Feed, FeedPatchset, PatchLevel, Patchset, ServiceError, deploy
from eportal_core.testing.patches import make_archive


def configure(env, info) -> None:
    with env.ctx.sessions() as db:
        access_store.save(db, info, pm=env.pm, settings=env.settings, actor="test")


def statuses(env, feed: str = MAIN_FEED) -> dict[str, str]:
    with env.ctx.sessions() as db:
        f = db.scalar(select(Feed).where(Feed.name == feed))
        return {p.name: s for p, s in deploy.status(db, f)}


def add_feed(env, name: str) -> None:
    with env.ctx.sessions() as db:
        db.add(Feed(name=name))


def leftovers(env) -> list[str]:
    """Anything in patches/ that is not a fully imported patchset folder."""
    patches = data_dir(env.settings) / "patches"
    found = [p.name for p in patches.iterdir() if p.name.startswith(".partial-")]
    if downloads(env.settings).exists():
        found += [p.name for p in downloads(env.settings).iterdir() if not p.name.startswith(".poll.lock")]
    return found


def test_not_configured_polls_nothing(ps_env):
    result = service.poll(ps_env.ctx)
    assert (result.configured, result.ok, result.summary()) == (False, True, "no patch source is configured")
    with ps_env.ctx.sessions() as db:
        assert load_state(db).started is None


def test_new_patchsets_are_downloaded_not_deployed(ps_env, upstream, upstream_archives):
    good = upstream_archives.good
    offer(upstream, good[:3])
    configure(ps_env, http_access(upstream))
    result = service.poll(ps_env.ctx)
    assert result.ok and result.new == result.downloaded == [a.name for a in good[:3]]
    assert statuses(ps_env) == {a.name: "undeployed" for a in good[:3]}
    with ps_env.ctx.sessions() as db:
        assert db.scalar(select(func.count()).select_from(FeedPatchset)) == 0  # nothing deployed anywhere
        rows = {p.name: p for p in db.scalars(select(Patchset))}
        assert rows[good[0].name].sha256 == upstream.entries[good[0].name]["sha256"]
        assert "CVE-2024-1086" in rows[good[0].name].changelog
        levels = db.scalars(select(PatchLevel.level).where(PatchLevel.patchset_id == rows[good[2].name].id)).all()
        assert sorted(levels) == sorted(good[2].kernels.values())
        state = load_state(db)
        assert (state.ok, state.trigger, state.listed, state.downloaded) == (True, "scheduler", 3, [a.name for a in good[:3]])
    for archive in good[:3]:
        assert (data_dir(ps_env.settings) / "patches" / archive.name / "manifest.json").is_file()
    assert leftovers(ps_env) == []

    # the next poll finds two more; the known ones are not fetched again
    offer(upstream, good[3:])
    before = len(upstream.hits)
    result = service.poll(ps_env.ctx)
    assert result.new == result.downloaded == [a.name for a in good[3:]]
    assert [h.path.rsplit("/", 1)[1] for h in upstream.hits[before:]] == \
        ["patchsets.json"] + [f"{a.name}.tar.bz2" for a in good[3:]]
    assert set(statuses(ps_env).values()) == {"undeployed"}


def test_without_auto_download_deploy_downloads_what_is_missing(ps_env, upstream, upstream_archives):
    good = upstream_archives.good
    offer(upstream, good)
    configure(ps_env, http_access(upstream))
    result = service.poll(ps_env.ctx, download=False)
    assert result.new == [a.name for a in good] and result.downloaded == []
    assert set(statuses(ps_env).values()) == {"not-downloaded"}
    with ps_env.ctx.sessions() as db:
        main = db.scalar(select(Feed).where(Feed.name == MAIN_FEED))
        third = db.scalar(select(Patchset).where(Patchset.name == good[2].name))
        assert [p.name for p in service.missing_for(db, main, third)] == [a.name for a in good[:3]]
    done = service.deploy_upto(ps_env.ctx, MAIN_FEED, good[2].name)
    assert done.downloaded == done.enabled == [a.name for a in good[:3]]
    assert done.summary() == f"downloaded {', '.join(done.downloaded)}; enabled on main: {', '.join(done.enabled)}"
    assert list(statuses(ps_env).values()) == ["enabled"] * 3 + ["not-downloaded"] * 2
    assert service.rollback(ps_env.ctx, MAIN_FEED, good[1].name) == [a.name for a in good[1:3]]
    assert list(statuses(ps_env).values()) == ["enabled", "disabled", "disabled", "not-downloaded", "not-downloaded"]


def test_a_failed_download_deploys_nothing(ps_env, upstream, upstream_archives):
    good = upstream_archives.good
    offer(upstream, good[:3])
    configure(ps_env, http_access(upstream))
    service.poll(ps_env.ctx, download=False)
    upstream.entries[good[1].name]["sha256"] = "f" * 64  # upstream now announces something else than it serves
    with pytest.raises(ServiceError, match=f"{good[1].name}: checksum mismatch"):
        service.deploy_upto(ps_env.ctx, MAIN_FEED, good[2].name)
    assert "enabled" not in statuses(ps_env).values()


def test_blocked_upstream_is_blocked_and_disabled_everywhere(ps_env, upstream, upstream_archives):
    good = upstream_archives.good
    offer(upstream, good)
    configure(ps_env, http_access(upstream))
    service.poll(ps_env.ctx)
    add_feed(ps_env, "beta")
    service.deploy_upto(ps_env.ctx, MAIN_FEED, good[4].name)
    service.deploy_upto(ps_env.ctx, "beta", good[3].name)

    upstream.block(good[3].name)
    result = service.poll(ps_env.ctx)
    assert result.blocked == [good[3].name] and result.ok
    assert statuses(ps_env)[good[3].name] == statuses(ps_env, "beta")[good[3].name] == "blocked"
    assert statuses(ps_env)[good[4].name] == "enabled"  # the others keep their state
    with pytest.raises(ServiceError, match="blocked upstream and cannot be enabled"):
        service.deploy_upto(ps_env.ctx, "beta", good[3].name)
    with ps_env.ctx.sessions() as db:
        audit = db.scalars(select(AuditEvent).where(AuditEvent.action == "patchset.block")).all()
        assert [(a.target, a.detail) for a in audit] == [(good[3].name, "disabled on beta,main")]

    upstream.unblock(good[3].name)
    result = service.poll(ps_env.ctx)
    assert result.unblocked == [good[3].name]
    # main has a later patchset enabled, so the gap closes there; beta rolls forward only on request
    assert statuses(ps_env)[good[3].name] == "enabled"
    assert statuses(ps_env, "beta")[good[3].name] == "disabled"


def test_a_patchset_blocked_before_download_is_recorded_not_fetched(ps_env, upstream, upstream_archives):
    good = upstream_archives.good
    offer(upstream, good[:2])
    upstream.block(good[1].name)
    configure(ps_env, http_access(upstream))
    result = service.poll(ps_env.ctx)
    assert result.downloaded == [good[0].name]
    assert statuses(ps_env) == {good[0].name: "undeployed", good[1].name: "blocked"}
    assert upstream.archive_hits(good[1].name) == []


def test_corrupted_archives_are_refused_and_the_others_imported(ps_env, upstream, upstream_archives):
    good, corrupt = upstream_archives.good, upstream_archives.corrupt
    offer(upstream, sorted([*good, *corrupt.values()], key=lambda a: a.released))
    configure(ps_env, http_access(upstream))
    result = service.poll(ps_env.ctx)
    assert result.downloaded == [a.name for a in good]
    assert set(result.failures) == {a.name for a in corrupt.values()}
    c = {kind: a.name for kind, a in corrupt.items()}
    assert result.failures[c["checksum"]].startswith(f"{c['checksum']} was refused: checksum mismatch for {c['checksum']}/patches/")
    assert result.failures[c["dotdot"]] == f"{c['dotdot']} was refused: member '{c['dotdot']}/../evil.txt' climbs out of its folder with '..'"
    assert "is a symbolic link: only regular files and folders are accepted" in result.failures[c["symlink"]]
    assert result.failures[c["truncated"]].startswith(f"{c['truncated']} was refused: the archive is truncated or corrupt")
    # nothing of them is left: no folders, no partial imports, no downloads; their rows say "not downloaded"
    patches = data_dir(ps_env.settings) / "patches"
    assert sorted(p.name for p in patches.iterdir() if not p.name.startswith(".")) == sorted(a.name for a in good)
    assert leftovers(ps_env) == []
    assert not (patches.parent / "evil.txt").exists()
    states = statuses(ps_env)
    assert {states[a.name] for a in corrupt.values()} == {"not-downloaded"}
    with ps_env.ctx.sessions() as db:
        state = load_state(db)
        assert set(state.failures) == set(c.values()) and not state.ok
        assert {f["kind"] for f in state.failures.values()} == {REFUSED}

    # the scheduler does not fetch the same bad archives again; "check now" does
    before = len(upstream.hits)
    assert service.poll(ps_env.ctx).failures == {}
    assert len(upstream.hits) == before + 1  # the index only
    with ps_env.ctx.sessions() as db:
        assert set(load_state(db).failures) == set(c.values())  # still shown
    assert set(service.poll(ps_env.ctx, retry_refused=True).failures) == set(c.values())

    # upstream replaces one with a good archive (another sha256): the next scheduled poll fetches it
    bad = corrupt["dotdot"]
    fixed = make_archive(data_dir(ps_env.settings).parent / "fixed", bad.name, bad.released, bad.kernels)
    upstream.add(fixed)
    result = service.poll(ps_env.ctx)
    assert result.downloaded == [bad.name] and result.failures == {}
    assert statuses(ps_env)[bad.name] == "undeployed"
    with ps_env.ctx.sessions() as db:
        assert set(load_state(db).failures) == set(c.values()) - {bad.name}
    # one gone from the index is forgotten too
    upstream.remove(c["symlink"])
    service.poll(ps_env.ctx)
    with ps_env.ctx.sessions() as db:
        assert set(load_state(db).failures) == {c["checksum"], c["truncated"]}


def test_an_interrupted_download_resumes_at_the_next_poll(ps_env, ps_settings, test_sessions, upstream, upstream_archives):
    settings, pm = ps_settings(**{"patch_source.retries": "0"})
    ctx = service.Context(sessions=test_sessions, settings=settings, pm=pm, actor="test")
    archive = upstream_archives.good[4]
    offer(upstream, [archive])
    with ctx.sessions() as db:
        access_store.save(db, http_access(upstream), pm=pm, settings=settings)
    size = archive.path.stat().st_size
    upstream.drop_once(archive.name, size // 2)
    result = service.poll(ctx)
    assert f"broke off after {size // 2} of {size} bytes" in result.failures[archive.name]
    with ctx.sessions() as db:
        assert load_state(db).failures[archive.name]["kind"] == FAILED
    assert (downloads(settings) / f"{archive.name}.tar.bz2.part").stat().st_size == size // 2
    result = service.poll(ctx)
    assert result.ok and result.downloaded == [archive.name]
    assert upstream.archive_hits(archive.name)[-1].range == f"bytes={size // 2}-"
    with ctx.sessions() as db:
        assert load_state(db).failures == {}
    assert list(downloads(settings).glob("*.tar.bz2*")) == []


def test_a_failed_index_is_recorded_never_raised(ps_env, upstream, upstream_archives):
    offer(upstream, upstream_archives.good[:1])
    configure(ps_env, http_access(upstream, password="Wrong-Secret-7"))
    job_ctx = type("JobCtx", (), {"dbsession": staticmethod(ps_env.ctx.sessions), "settings": ps_env.settings,
                                  "pm": ps_env.pm})()
    poll_job(job_ctx)  # the scheduled job: records, never raises
    with ps_env.ctx.sessions() as db:
        state = load_state(db)
    assert state.error.startswith("the source refused the login (HTTP 401") and not state.ok
    assert "Wrong-Secret-7" not in repr(state)
    assert statuses(ps_env) == {}


def test_one_poll_at_a_time(ps_env, upstream):
    configure(ps_env, http_access(upstream))
    with poll_lock(ps_env.settings):
        with pytest.raises(ServiceError, match="another poll of the patch source is running"):
            service.poll(ps_env.ctx)


def test_directory_source_poll_imports_what_is_carried_in(ps_env, upstream_archives, tmp_path):
    folder = tmp_path / "usb"
    folder.mkdir()
    for archive in upstream_archives.good[:2]:
        shutil.copy(archive.path, folder)
    configure(ps_env, access_store.AccessInfo("directory", path=str(folder)))
    result = service.poll(ps_env.ctx)
    assert result.downloaded == [a.name for a in upstream_archives.good[:2]]
    shutil.copy(upstream_archives.good[2].path, folder)
    result = service.poll(ps_env.ctx)
    assert result.new == result.downloaded == [upstream_archives.good[2].name]
    assert sorted(p.name for p in folder.iterdir()) == sorted(a.path.name for a in upstream_archives.good[:3])  # left as they were


def test_import_file_unroll_and_delete(ps_env, upstream, upstream_archives):
    good = upstream_archives.good
    for archive in good[:3]:
        name, enabled = service.import_file(ps_env.ctx, archive.path)
        assert (name, enabled) == (archive.name, [archive.name])
    name, enabled = service.import_file(ps_env.ctx, good[3].path, None)
    assert enabled == [] and statuses(ps_env)[good[3].name] == "undeployed"
    with pytest.raises(ServiceError, match="already imported"):
        service.import_file(ps_env.ctx, good[0].path)
    with pytest.raises(ServiceError, match="feed 'nope' does not exist"):
        service.import_file(ps_env.ctx, good[4].path, "nope")
    add_feed(ps_env, "beta")
    service.deploy_upto(ps_env.ctx, "beta", good[1].name)
    assert service.unroll_everywhere(ps_env.ctx, good[1].name) == {
        "beta": [good[1].name], "main": [a.name for a in good[1:3]]}
    assert service.unroll_everywhere(ps_env.ctx, good[2].name, remove=True) == {}
    assert good[2].name not in statuses(ps_env)
    assert not (data_dir(ps_env.settings) / "patches" / good[2].name).exists()
    # a deleted patchset is not fetched again by polls
    offer(upstream, good[:3])
    configure(ps_env, http_access(upstream))
    result = service.poll(ps_env.ctx)
    assert good[2].name not in result.new and upstream.archive_hits(good[2].name) == []
    # importing it by hand brings it back
    service.import_file(ps_env.ctx, good[2].path, None)
    assert statuses(ps_env)[good[2].name] == "undeployed"


def test_get_latest_downloads_and_deploys_the_newest_to_main(ps_env, upstream, upstream_archives):
    good = upstream_archives.good
    offer(upstream, good[:2])
    configure(ps_env, http_access(upstream))
    result = service.get_latest(ps_env.ctx)
    assert result.poll.downloaded == [a.name for a in good[:2]]
    assert result.deployed == {"kernel": (good[1].name, [a.name for a in good[:2]])}
    offer(upstream, good[2:])
    result = service.get_latest(ps_env.ctx)
    assert result.deployed == {"kernel": (good[4].name, [a.name for a in good[2:]])}
    assert set(statuses(ps_env).values()) == {"enabled"}
    assert service.get_latest(ps_env.ctx).deployed == {"kernel": (good[4].name, [])}


def test_get_latest_never_deploys_past_a_patchset_it_could_not_download(ps_env, upstream, upstream_archives):
    """One rule with the console and the API: nothing is enabled past a gap (deploy.py)."""
    good = upstream_archives.good
    offer(upstream, good[:3])
    real_sha256 = upstream.entries[good[1].name]["sha256"]
    upstream.entries[good[1].name]["sha256"] = "f" * 64  # the 2nd cannot be downloaded
    configure(ps_env, http_access(upstream))
    result = service.get_latest(ps_env.ctx)
    assert result.poll.downloaded == [good[0].name, good[2].name]
    assert set(result.poll.failures) == {good[1].name}
    assert result.deployed == {"kernel": (good[0].name, [good[0].name])}
    assert result.held == {"kernel": (good[1].name, [good[2].name])}
    assert list(statuses(ps_env).values()) == ["enabled", "not-downloaded", "undeployed"]
    # once upstream serves it right, the next run closes the gap and deploys the newest
    upstream.entries[good[1].name]["sha256"] = real_sha256
    result = service.get_latest(ps_env.ctx)
    assert result.deployed == {"kernel": (good[2].name, [good[1].name, good[2].name])} and result.held == {}


def test_import_file_keeps_the_import_when_enabling_would_skip_a_patchset(ps_env, upstream, upstream_archives):
    good = upstream_archives.good
    offer(upstream, good[:3])
    configure(ps_env, http_access(upstream))
    service.poll(ps_env.ctx, download=False)  # all three known here, none downloaded
    assert service.import_file(ps_env.ctx, good[0].path) == (good[0].name, [good[0].name])
    with pytest.raises(ServiceError, match=f"^imported {good[2].name}, but did not enable it on main: "
                                           f"patchset {good[1].name} comes before {good[2].name}"):
        service.import_file(ps_env.ctx, good[2].path)
    assert list(statuses(ps_env).values()) == ["enabled", "not-downloaded", "undeployed"]
    assert (data_dir(ps_env.settings) / "patches" / good[2].name).is_dir()


def test_an_announcement_withdrawn_before_download_is_forgotten(ps_env, upstream, upstream_archives):
    """Otherwise it would stay a gap holding every later patchset back, with nothing to download."""
    good = upstream_archives.good
    offer(upstream, good[:3])
    configure(ps_env, http_access(upstream))
    service.poll(ps_env.ctx, download=False)
    upstream.remove(good[1].name)
    service.poll(ps_env.ctx)
    assert statuses(ps_env) == {good[0].name: "undeployed", good[2].name: "undeployed"}
    assert service.get_latest(ps_env.ctx).deployed == {"kernel": (good[2].name, [good[0].name, good[2].name])}
    with ps_env.ctx.sessions() as db:
        assert db.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "patch_source.withdrawn", AuditEvent.target == good[1].name)) == 1
