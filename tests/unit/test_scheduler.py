"""The site scheduler's lease (one leader per site) and job running, on SQLite and PostgreSQL."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from pyramid.registry import Registry
from sqlalchemy import delete, select, update

from eportal_core.health import scheduler_check
from eportal_core.models import SchedulerLease, utcnow
from eportal_core.plugins import hookimpl, make_plugin_manager
from eportal_core.scheduler import LEASE_NAME, Job, SiteScheduler

SETTINGS = {"eportal.scheduler.lease_seconds": 60, "eportal.scheduler": True}
# These tests count jobs: the ones plugins installed from plugins/* contribute (a poll, an
# auto-update) would run here too, so every plugin manager here is made with load_entrypoints=False.


@pytest.fixture
def lease_db(engine):
    """The shared migrated database with no lease row before and after the test."""
    def clear():
        with engine.begin() as conn:
            conn.execute(delete(SchedulerLease))
    clear()
    yield engine
    clear()


def lease_row(engine):
    with engine.connect() as conn:
        return conn.execute(select(SchedulerLease.holder, SchedulerLease.expires)
                            .where(SchedulerLease.name == LEASE_NAME)).one_or_none()


def expire_lease(engine):
    with engine.begin() as conn:
        conn.execute(update(SchedulerLease).values(expires=utcnow() - timedelta(seconds=1)))


def scheduler(engine, pm=None, **settings):
    return SiteScheduler(dict(SETTINGS, **settings), engine, pm or make_plugin_manager(load_entrypoints=False))


def registry_with(sched) -> Registry:
    registry = Registry()
    registry.settings = dict(SETTINGS)
    registry["scheduler"] = sched
    return registry


def test_exactly_one_becomes_leader(lease_db):
    a, b = scheduler(lease_db), scheduler(lease_db)
    assert a.holder != b.holder
    assert a.renew_lease() is True
    assert b.renew_lease() is False
    assert (a.is_leader, b.is_leader) == (True, False)
    holder, expires = lease_row(lease_db)
    assert holder == a.holder
    assert expires > utcnow() + timedelta(seconds=50)  # lease_seconds ahead
    # renewing keeps it where it is
    assert a.renew_lease() is True
    assert b.renew_lease() is False
    assert lease_row(lease_db).holder == a.holder


def test_the_lease_length_comes_from_the_settings(lease_db):
    a = scheduler(lease_db, **{"eportal.scheduler.lease_seconds": 600})
    a.renew_lease()
    expires = lease_row(lease_db).expires
    assert utcnow() + timedelta(seconds=590) < expires <= utcnow() + timedelta(seconds=600)


def test_the_other_takes_over_once_the_lease_expired(lease_db):
    a, b = scheduler(lease_db), scheduler(lease_db)
    assert a.renew_lease() and not b.renew_lease()
    expire_lease(lease_db)  # a died and did not renew in time
    assert b.renew_lease() is True
    assert lease_row(lease_db).holder == b.holder
    # a comes back: it must not grab the lease again, and stops being leader
    assert a.renew_lease() is False
    assert a.is_leader is False


def test_release_lease_lets_the_other_take_over_at_once(lease_db):
    a, b = scheduler(lease_db), scheduler(lease_db)
    a.renew_lease()
    b.renew_lease()
    a.release_lease()
    assert a.is_leader is False
    assert lease_row(lease_db).expires <= utcnow()
    assert b.renew_lease() is True
    assert lease_row(lease_db).holder == b.holder


def test_release_by_a_non_leader_does_not_touch_the_lease(lease_db):
    a, b = scheduler(lease_db), scheduler(lease_db)
    a.renew_lease()
    b.renew_lease()
    before = lease_row(lease_db)
    b.release_lease()
    assert lease_row(lease_db) == before
    assert b.renew_lease() is False


def test_run_job_on_a_non_leader_does_nothing(lease_db):
    calls = []
    job = Job("test.count", lambda ctx: calls.append(ctx), seconds=60, description="count")
    a, b = scheduler(lease_db), scheduler(lease_db)
    a.renew_lease()
    b.renew_lease()
    b.run_job(job)
    assert calls == []
    assert "test.count" not in b.status
    a.run_job(job)
    assert calls == [a.ctx]
    assert a.status["test.count"].runs == 1
    assert a.status["test.count"].failures == 0
    assert a.status["test.count"].last_run is not None


def test_a_raising_job_is_caught_counted_and_reported(lease_db):
    def boom(ctx):
        raise RuntimeError("patch server unreachable")

    job = Job("test.boom", boom, seconds=60, description="fails")
    a = scheduler(lease_db)
    a.renew_lease()
    a.run_job(job)  # does not raise
    a.run_job(job)
    status = a.status["test.boom"]
    assert (status.runs, status.failures) == (2, 2)
    assert status.last_error == "RuntimeError: patch server unreachable"

    a.running = True  # as after start(): scheduler_check reports a stopped scheduler as failing anyway
    check, info = scheduler_check(registry_with(a))
    assert check.ok is False
    assert check.detail == "failing jobs: test.boom"
    assert info["jobs"]["test.boom"]["failures"] == 2

    # a later success clears the error (the failure count stays)
    a.run_job(Job("test.boom", lambda ctx: None, seconds=60))
    assert a.status["test.boom"].last_error is None
    assert a.status["test.boom"].failures == 2
    check, _ = scheduler_check(registry_with(a))
    assert (check.ok, check.detail) == (True, "leader")


def test_job_context_session_commits(lease_db):
    """A job writes through ctx.dbsession(): committed at the end of the block."""
    from eportal_core.models import SiteSetting

    def write(ctx):
        with ctx.dbsession() as db:
            db.merge(SiteSetting(name="test.scheduler", value="ran"))

    a = scheduler(lease_db)
    a.renew_lease()
    a.run_job(Job("test.write", write, seconds=60))
    try:
        with lease_db.connect() as conn:
            assert conn.scalar(select(SiteSetting.value).where(SiteSetting.name == "test.scheduler")) == "ran"
    finally:
        with lease_db.begin() as conn:
            conn.execute(delete(SiteSetting).where(SiteSetting.name == "test.scheduler"))


class DupJobs:
    @hookimpl
    def eportal_scheduled_jobs(self, settings):
        return [Job("core.housekeeping", lambda ctx: None, seconds=10)]


def test_duplicate_job_ids_are_refused(lease_db):
    pm = make_plugin_manager(extra={"dup": DupJobs()}, load_entrypoints=False)
    a = scheduler(lease_db, pm)
    with pytest.raises(ValueError, match="same id: core.housekeeping"):
        a.collect_jobs()
    with pytest.raises(ValueError, match="same id"):
        a.start()
    assert a.running is False and a._scheduler is None


def test_unreachable_database_means_no_leadership(lease_db, tmp_path):
    from eportal_core.db import make_engine
    broken = make_engine(f"sqlite:///{tmp_path}/missing-dir/x.sqlite")
    a = scheduler(broken)
    assert a.renew_lease() is False
    a.is_leader = True  # it was leader, then the database went away
    assert a.renew_lease() is False
    assert a.is_leader is False


def test_health_check_without_a_scheduler():
    registry = Registry()
    registry.settings = {"eportal.scheduler": False}
    check, info = scheduler_check(registry)
    assert check.ok is True
    assert info == {"running": False, "enabled": False}


class Probe:
    def __init__(self):
        self.runs = 0

    @hookimpl
    def eportal_scheduled_jobs(self, settings):
        def tick(ctx):
            self.runs += 1

        def boom(ctx):
            raise RuntimeError("always fails")
        return [Job("probe.tick", tick, seconds=0.1, description="counts"),
                Job("probe.boom", boom, seconds=0.1, description="fails")]


def test_real_start_and_shutdown(lease_db):
    probe = Probe()
    a = scheduler(lease_db, make_plugin_manager(extra={"probe": probe}, load_entrypoints=False))
    a.start()
    try:
        assert a.running and a.is_leader
        assert lease_row(lease_db).holder == a.holder
        assert set(a.status) == {"core.housekeeping", "probe.tick", "probe.boom"}
        deadline = time.monotonic() + 10
        while (probe.runs < 2 or a.status["probe.boom"].failures < 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert probe.runs >= 2  # APScheduler threads really ran the job, more than once
        assert a.status["probe.boom"].failures >= 1
        check, info = scheduler_check(registry_with(a))
        assert (check.ok, check.detail) == (False, "failing jobs: probe.boom")
        assert info["running"] is True and info["leader"] is True
        # a second process on the same site stands by
        b = scheduler(lease_db)
        assert b.renew_lease() is False
    finally:
        a.shutdown()
    assert a.running is False and a.is_leader is False
    assert lease_row(lease_db).expires <= utcnow()  # released, not left to expire
    runs = probe.runs
    time.sleep(0.3)
    assert probe.runs == runs  # no job runs after shutdown
    check, _ = scheduler_check(registry_with(a))
    assert (check.ok, check.detail) == (False, "stopped")
    assert b.renew_lease() is True
