"""Auto update follows the ePortal docs (Feed Management): an auto feed enables each patchset
``deploy_after`` hours after it arrived on this portal, in deploy order; the clean-install case; a
blocked patchset is skipped and never enabled; feeds without auto update are untouched. The clock
is injected (``now``): nothing sleeps. Patchsets come from real archives through the real importer."""
from __future__ import annotations

from contextlib import nullcontext
from datetime import timedelta
from types import SimpleNamespace

import pytest
from eportal_feeds import JOB_ID
from eportal_feeds.jobs import auto_update_job, health_check
from eportal_feeds.service import due_patchsets, run_auto_update
from feeds_testing import add_feed, arrive, enabled, feed, states

from eportal_core.api import MAIN_FEED, AuditEvent, SettingsError, deploy, hookimpl, import_archive, utcnow
from eportal_core.testing import make_test_settings
from eportal_core.testing.core import JobStatus, SiteScheduler, load_settings, make_plugin_manager
from eportal_core.testing.patches import KERNEL_IDS, make_archive

ARRIVAL = utcnow().replace(microsecond=0) - timedelta(days=3)


def names(patchsets) -> list[str]:
    return [p.name for p in patchsets]


def run(db, now, **kw) -> dict[str, list[str]]:
    return {r.feed: names(r.enabled) for r in run_auto_update(db, now, **kw)}


def test_deploy_after_ten_hours_nothing_at_9h59_everything_at_10h(dbsession, imported):
    arrive(dbsession, imported, ARRIVAL)
    add_feed(dbsession, "slow", auto=True, deploy_after=10)
    assert run(dbsession, ARRIVAL + timedelta(hours=9, minutes=59)) == {"slow": []}
    assert set(states(dbsession, "slow").values()) == {deploy.UNDEPLOYED}
    assert run(dbsession, ARRIVAL + timedelta(hours=10)) == {"slow": names(imported)}  # oldest first
    assert enabled(dbsession, "slow") == names(imported)
    assert run(dbsession, ARRIVAL + timedelta(hours=11)) == {"slow": []}  # nothing twice


def test_deploy_after_zero_enables_at_once(dbsession, imported):
    add_feed(dbsession, "fast", auto=True, deploy_after=0)
    # the archives were imported a moment ago: with 0 hours they are due right away
    assert run(dbsession, utcnow()) == {"fast": names(imported)}
    assert enabled(dbsession, "fast") == names(imported)


def test_each_patchset_waits_for_its_own_arrival(dbsession, imported):
    arrive(dbsession, imported[:3], ARRIVAL)
    arrive(dbsession, imported[3:], ARRIVAL + timedelta(hours=24))
    add_feed(dbsession, "slow", auto=True, deploy_after=10)
    assert run(dbsession, ARRIVAL + timedelta(hours=10)) == {"slow": names(imported[:3])}
    assert run(dbsession, ARRIVAL + timedelta(hours=33, minutes=59, seconds=59)) == {"slow": []}
    assert run(dbsession, ARRIVAL + timedelta(hours=34)) == {"slow": names(imported[3:])}


def test_the_delay_is_counted_from_the_arrival_not_the_release(dbsession, imported):
    # released in 2024, arrived an hour ago: a 10-hour feed still waits nine hours
    now = utcnow()
    arrive(dbsession, imported, now - timedelta(hours=1))
    add_feed(dbsession, "slow", auto=True, deploy_after=10)
    assert all(p.released < now - timedelta(days=300) for p in imported)
    assert run(dbsession, now) == {"slow": []}
    assert run(dbsession, now + timedelta(hours=9)) == {"slow": names(imported)}


def test_clean_install_deploys_everything_together_after_the_delay(dbsession, patch_archives, tmp_path):
    """A new portal downloads every archive at once; a feed created right away with deploy after 6
    hours gets all of them, oldest to latest, 6 hours later, not the old ones at once."""
    rows = [import_archive(dbsession, a, data_dir=tmp_path / "store") for a in patch_archives]
    add_feed(dbsession, "late", auto=True, deploy_after=6)
    first, last = min(p.downloaded for p in rows), max(p.downloaded for p in rows)
    assert last - first < timedelta(minutes=1)  # one arrival time, as the job sees it
    assert run(dbsession, last) == {"late": []}
    assert run(dbsession, first + timedelta(hours=6) - timedelta(seconds=1)) == {"late": []}
    assert run(dbsession, last + timedelta(hours=6)) == {"late": names(rows)}  # all in one run
    assert enabled(dbsession, "late") == names(rows)


def test_a_blocked_patchset_is_skipped_and_never_enabled(dbsession, imported):
    arrive(dbsession, imported, ARRIVAL)
    deploy.block(dbsession, imported[2], actor="test")
    add_feed(dbsession, "auto", auto=True, deploy_after=0)
    assert run(dbsession, ARRIVAL) == {"auto": names(imported[:2] + imported[3:])}
    assert states(dbsession, "auto")[imported[2].name] == deploy.BLOCKED
    assert run(dbsession, ARRIVAL + timedelta(days=30)) == {"auto": []}
    assert states(dbsession, "auto")[imported[2].name] == deploy.BLOCKED


def test_a_blocked_newest_patchset_stops_the_feed_below_it(dbsession, imported):
    arrive(dbsession, imported, ARRIVAL)
    deploy.block(dbsession, imported[4], actor="test")
    add_feed(dbsession, "auto", auto=True, deploy_after=0)
    assert run(dbsession, ARRIVAL) == {"auto": names(imported[:4])}
    assert states(dbsession, "auto")[imported[4].name] == deploy.BLOCKED


def test_feeds_without_auto_update_are_untouched(dbsession, imported):
    arrive(dbsession, imported, ARRIVAL)
    add_feed(dbsession, "manual", auto=False, deploy_after=0)
    add_feed(dbsession, "auto", auto=True, deploy_after=0)
    assert run(dbsession, ARRIVAL + timedelta(days=365)) == {"auto": names(imported)}
    assert enabled(dbsession, "manual") == [] and enabled(dbsession, MAIN_FEED) == []


def test_main_follows_the_rules_when_its_auto_update_is_on(dbsession, imported):
    arrive(dbsession, imported, ARRIVAL)
    feed(dbsession, MAIN_FEED).auto, feed(dbsession, MAIN_FEED).deploy_after = True, 2
    add_feed(dbsession, "b-feed", auto=True, deploy_after=0)
    # main first, then by name
    assert list(run(dbsession, ARRIVAL + timedelta(hours=1))) == [MAIN_FEED, "b-feed"]
    assert enabled(dbsession, MAIN_FEED) == []
    assert run(dbsession, ARRIVAL + timedelta(hours=2))[MAIN_FEED] == names(imported)


def test_a_rollback_on_an_auto_feed_stands_until_a_newer_patchset_is_due(dbsession, imported, tmp_path):
    arrive(dbsession, imported, ARRIVAL)
    add_feed(dbsession, "auto", auto=True, deploy_after=1)
    run(dbsession, ARRIVAL + timedelta(hours=1))
    deploy.rollback_from(dbsession, feed(dbsession, "auto"), imported[3], actor="test")
    assert run(dbsession, ARRIVAL + timedelta(days=2)) == {"auto": []}  # the admin's rollback holds
    assert enabled(dbsession, "auto") == names(imported[:3])
    newer = make_archive(tmp_path / "new", "K20240601_01", "2024-06-01T10:00:00", {KERNEL_IDS[0]: 6})
    p6 = import_archive(dbsession, newer, data_dir=tmp_path / "store")
    arrive(dbsession, [p6], ARRIVAL + timedelta(days=3))
    assert run(dbsession, ARRIVAL + timedelta(days=3, minutes=59)) == {"auto": []}
    # the newer one comes due: it is enabled in order, with the rolled-back ones before it
    assert run(dbsession, ARRIVAL + timedelta(days=3, hours=1)) == {"auto": names(imported[3:]) + ["K20240601_01"]}


def test_a_late_arriving_older_patchset_fills_its_place_in_order(dbsession, imported):
    arrive(dbsession, imported, ARRIVAL)
    arrive(dbsession, [imported[1]], ARRIVAL + timedelta(hours=5))  # released second, arrived last
    add_feed(dbsession, "auto", auto=True, deploy_after=1)
    # the newest due patchset is enabled, so everything before it in deploy order comes along
    assert run(dbsession, ARRIVAL + timedelta(hours=1)) == {"auto": names(imported)}


def test_products_are_updated_each_in_its_own_order(dbsession, imported, tmp_path):
    arrive(dbsession, imported, ARRIVAL)
    other = make_archive(tmp_path / "other", "K20230101_01", "2023-01-01T10:00:00", {KERNEL_IDS[2]: 1},
                         product="kernel-rt")
    rt = import_archive(dbsession, other, data_dir=tmp_path / "store")
    arrive(dbsession, [rt], ARRIVAL + timedelta(hours=3))
    add_feed(dbsession, "auto", auto=True, deploy_after=2)
    assert [p.name for p in due_patchsets(dbsession, feed(dbsession, "auto"), ARRIVAL + timedelta(hours=5))] == \
        [imported[-1].name, rt.name]  # the newest due one per product, by product
    assert run(dbsession, ARRIVAL + timedelta(hours=2)) == {"auto": names(imported)}
    assert run(dbsession, ARRIVAL + timedelta(hours=5)) == {"auto": [rt.name]}


def test_a_timezone_aware_clock_is_read_as_utc(dbsession, imported):
    from datetime import UTC, timezone
    arrive(dbsession, imported, ARRIVAL)
    add_feed(dbsession, "slow", auto=True, deploy_after=10)
    plus_two = timezone(timedelta(hours=2))
    at_9h = (ARRIVAL + timedelta(hours=9)).replace(tzinfo=UTC).astimezone(plus_two)
    assert run(dbsession, at_9h) == {"slow": []}
    assert run(dbsession, at_9h + timedelta(hours=1)) == {"slow": names(imported)}


class Events:
    def __init__(self):
        self.seen = []

    @hookimpl
    def eportal_patchset_enabled(self, patchset, feed):
        self.seen.append((patchset.name, feed.name))


def test_events_fire_and_the_audit_trail_names_the_auto_update(dbsession, imported):
    recorder = Events()
    pm = make_plugin_manager(extra={"events": recorder})
    arrive(dbsession, imported, ARRIVAL)
    add_feed(dbsession, "auto", auto=True, deploy_after=0)
    run(dbsession, ARRIVAL, pm=pm)
    assert recorder.seen == [(p.name, "auto") for p in imported]
    actors = {e.actor for e in dbsession.query(AuditEvent).filter(AuditEvent.action == "patchset.enable")}
    assert actors == {"auto-update"}


# --- the scheduled job ---------------------------------------------------------------------------

def test_the_job_is_contributed_with_its_interval_setting(tmp_path):
    settings, pm = load_settings(make_test_settings(tmp_path, f"sqlite:///{tmp_path}/x.sqlite"))
    jobs = {j.id: j for j in SiteScheduler(settings, None, pm).collect_jobs()}
    assert jobs[JOB_ID].seconds == 60
    settings, pm = load_settings(make_test_settings(tmp_path, f"sqlite:///{tmp_path}/x.sqlite",
                                                    **{"feeds.auto_update_seconds": "120"}))
    assert {j.id: j for j in SiteScheduler(settings, None, pm).collect_jobs()}[JOB_ID].seconds == 120
    with pytest.raises(SettingsError, match="feeds.auto_update_seconds"):
        load_settings(make_test_settings(tmp_path, f"sqlite:///{tmp_path}/x.sqlite", **{"feeds.auto_update_seconds": "0"}))
    with pytest.raises(SettingsError, match="feeds.auto_update_secs"):
        load_settings(make_test_settings(tmp_path, f"sqlite:///{tmp_path}/x.sqlite", **{"feeds.auto_update_secs": "5"}))


def test_the_job_runs_the_rules_and_reports_its_health(dbsession, imported):
    add_feed(dbsession, "fast", auto=True, deploy_after=0)
    ctx = SimpleNamespace(dbsession=lambda: nullcontext(dbsession), pm=make_plugin_manager(), settings={})
    scheduler = SimpleNamespace(status={JOB_ID: JobStatus("auto update", 60)})
    registry = {"scheduler": scheduler}
    assert health_check(registry).detail == "not run yet"
    auto_update_job(ctx)
    scheduler.status[JOB_ID].last_run = "2025-01-01 10:00:00"
    assert enabled(dbsession, "fast") == names(imported)
    check = health_check(registry)
    assert check.ok and "5 patchset(s) enabled" in check.detail and "1 auto feed(s)" in check.detail
    scheduler.status[JOB_ID].last_error = "OperationalError: database is locked"
    check = health_check(registry)
    assert not check.ok
    assert check.detail.endswith("failed: OperationalError")  # only the type for strangers
    assert check.private == "database is locked"  # the message for logged-in users
    assert health_check({}) is None  # no scheduler in this process: the core's check says so


def test_an_auto_feed_waits_for_a_patchset_not_downloaded_yet(dbsession, imported):
    """A due patchset after one that is known but not here yet waits for it (deploy.py's one rule)."""
    arrive(dbsession, imported, ARRIVAL)
    imported[2].downloaded = None  # known upstream, not downloaded
    dbsession.flush()
    add_feed(dbsession, "fast", auto=True, deploy_after=0)
    assert run(dbsession, ARRIVAL + timedelta(hours=1)) == {"fast": names(imported[:2])}
    assert run(dbsession, ARRIVAL + timedelta(hours=2)) == {"fast": []}
    arrive(dbsession, [imported[2]], ARRIVAL + timedelta(hours=2))
    assert run(dbsession, ARRIVAL + timedelta(hours=2)) == {"fast": names(imported[2:])}
