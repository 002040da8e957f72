"""Deploy rules (services.deploy, protocol.md §8): the enabled patchsets of a feed are always a
prefix of the downloaded, non-blocked ones in (released, name) order; a blocked patchset is never
enabled; latest.v2's level is the highest level among the enabled patchsets. Checked rule by rule,
then by hypothesis over random sequences of deploy actions against a model."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from eportal_core.models import MAIN_FEED, AuditEvent, Feed, PatchLevel, Patchset, utcnow
from eportal_core.plugins import hookimpl, make_plugin_manager
from eportal_core.services import ServiceError, deploy
from eportal_core.services.patchstore import latest_level

K0, K1 = "a" * 40, "b" * 40
START = datetime(2024, 1, 1, 10, 0)


class Events:
    def __init__(self):
        self.seen: list[tuple[str, str, str]] = []

    @hookimpl
    def eportal_patchset_enabled(self, patchset, feed):
        self.seen.append(("enabled", patchset.name, feed.name))

    @hookimpl
    def eportal_patchset_disabled(self, patchset, feed):
        self.seen.append(("disabled", patchset.name, feed.name))


@pytest.fixture
def events():
    recorder = Events()
    return recorder, make_plugin_manager(extra={"events": recorder})


def add_patchset(db, day: int, levels: dict[str, int], *, downloaded: bool = True, blocked: bool = False,
                 product: str = "kernel", released: datetime | None = None, serial: int = 1) -> Patchset:
    ps = Patchset(name=f"K202401{day:02d}_{serial:02d}", product=product,
                  released=released or START + timedelta(days=day), status="blocked" if blocked else "available",
                  downloaded=utcnow() if downloaded else None)
    db.add(ps)
    db.flush()
    db.add_all(PatchLevel(patchset_id=ps.id, kernel_id=k, level=v) for k, v in levels.items())
    db.flush()
    return ps


def main_feed(db) -> Feed:
    return db.scalar(select(Feed).where(Feed.name == MAIN_FEED))


def add_feed(db, name: str) -> Feed:
    feed = Feed(name=name)
    db.add(feed)
    db.flush()
    return feed


def names(patchsets) -> list[str]:
    return [p.name for p in patchsets]


def states(db, feed) -> dict[str, str]:
    return {p.name: s for p, s in deploy.status(db, feed)}


@pytest.fixture
def five(dbsession):
    """Five downloaded patchsets, levels rising for K0; K1 only in some."""
    return [add_patchset(dbsession, d, {K0: d, **({K1: d} if d % 2 else {})}) for d in range(1, 6)]


# --- the rules, one by one ------------------------------------------------------------------------

def test_enable_upto_enables_it_and_all_before_it_once(dbsession, five, events):
    recorder, pm = events
    main = main_feed(dbsession)
    assert names(deploy.enable_upto(dbsession, main, five[2], pm=pm, actor="alice")) == names(five[:3])
    assert recorder.seen == [("enabled", p.name, "main") for p in five[:3]]
    assert names(deploy.enabled_patchsets(dbsession, main)) == names(five[:3])
    assert latest_level(dbsession.connection(), main.id, K0) == 3
    assert latest_level(dbsession.connection(), main.id, K1) == 3
    # enabling what is already enabled changes nothing and fires nothing
    recorder.seen.clear()
    assert deploy.enable_upto(dbsession, main, five[1], pm=pm) == []
    assert recorder.seen == []
    audit = dbsession.scalars(select(AuditEvent).where(AuditEvent.action == "patchset.enable")).all()
    assert [(a.actor, a.target) for a in audit] == [("alice", five[2].name)]


def test_rollback_from_disables_it_and_all_after_it(dbsession, five, events):
    recorder, pm = events
    main = main_feed(dbsession)
    deploy.enable_upto(dbsession, main, five[4])
    assert names(deploy.rollback_from(dbsession, main, five[1], pm=pm)) == names(five[1:])
    assert recorder.seen == [("disabled", p.name, "main") for p in five[1:]]
    assert states(dbsession, main) == {five[0].name: "enabled", **{p.name: "disabled" for p in five[1:]}}
    assert latest_level(dbsession.connection(), main.id, K0) == 1
    recorder.seen.clear()
    assert deploy.rollback_from(dbsession, main, five[3], pm=pm) == []  # already rolled back
    assert recorder.seen == []
    deploy.rollback_from(dbsession, main, five[0])
    assert latest_level(dbsession.connection(), main.id, K0) is None


def test_feeds_are_independent(dbsession, five):
    main, beta = main_feed(dbsession), add_feed(dbsession, "beta")
    deploy.enable_upto(dbsession, main, five[1])
    deploy.enable_upto(dbsession, beta, five[4])
    assert latest_level(dbsession.connection(), main.id, K0) == 2
    assert latest_level(dbsession.connection(), beta.id, K0) == 5
    assert set(states(dbsession, beta).values()) == {"enabled"}
    assert list(states(dbsession, main).values()) == ["enabled", "enabled", "undeployed", "undeployed", "undeployed"]


def test_blocked_and_missing_patchsets_cannot_be_enabled(dbsession, five):
    main = main_feed(dbsession)
    blocked = add_patchset(dbsession, 10, {K0: 10}, blocked=True)
    missing = add_patchset(dbsession, 11, {K0: 11}, downloaded=False)
    with pytest.raises(ServiceError, match=f"^patchset {blocked.name} is blocked upstream and cannot be enabled$"):
        deploy.enable_upto(dbsession, main, blocked)
    with pytest.raises(ServiceError, match=f"^patchset {missing.name} is not downloaded yet"):
        deploy.enable_upto(dbsession, main, missing)
    assert deploy.enabled_patchsets(dbsession, main) == []
    # a later patchset does not jump the missing one (a gap): one rule for console, CLI, API and jobs
    later = add_patchset(dbsession, 12, {K0: 12})
    with pytest.raises(ServiceError, match=f"^patchset {missing.name} comes before {later.name} and is not downloaded yet"):
        deploy.enable_upto(dbsession, main, later)
    assert deploy.enabled_patchsets(dbsession, main) == []
    # up to the gap is fine, and a blocked one is never a gap
    assert names(deploy.enable_upto(dbsession, main, five[-1])) == names(five)
    assert deploy.first_gap(dbsession, "kernel") == missing
    missing.downloaded = utcnow()
    dbsession.flush()
    assert deploy.first_gap(dbsession, "kernel") is None
    assert names(deploy.enable_upto(dbsession, main, later)) == [missing.name, later.name]
    assert states(dbsession, main)[blocked.name] == "blocked"
    assert latest_level(dbsession.connection(), main.id, K0) == 12


def test_newest_before_gap_picks_per_product(dbsession):
    a1 = add_patchset(dbsession, 1, {K0: 1})
    a2 = add_patchset(dbsession, 2, {K0: 2}, downloaded=False)
    a3 = add_patchset(dbsession, 3, {K0: 3})
    b1 = add_patchset(dbsession, 1, {K1: 1}, product="other", serial=2)
    b2 = add_patchset(dbsession, 2, {K1: 2}, product="other", serial=2)
    gaps = deploy.gaps_by_product(dbsession)
    assert gaps == {"kernel": a2}
    newest = deploy.newest_before_gap([a1, a3, b1, b2], gaps)
    assert newest == {"kernel": a1, "other": b2}


def test_block_disables_everywhere_once_per_feed(dbsession, five, events):
    recorder, pm = events
    main, beta, gamma = main_feed(dbsession), add_feed(dbsession, "beta"), add_feed(dbsession, "gamma")
    deploy.enable_upto(dbsession, main, five[4])
    deploy.enable_upto(dbsession, beta, five[2])
    deploy.enable_upto(dbsession, gamma, five[0])
    assert [f.name for f in deploy.block(dbsession, five[2], pm=pm)] == ["beta", "main"]
    assert recorder.seen == [("disabled", five[2].name, "beta"), ("disabled", five[2].name, "main")]
    assert five[2].status == "blocked"
    assert states(dbsession, main)[five[2].name] == "blocked"
    assert latest_level(dbsession.connection(), beta.id, K0) == 2
    assert latest_level(dbsession.connection(), main.id, K0) == 5
    # unblocked upstream: back on where later patchsets are enabled (no gap), else off until enabled
    recorder.seen.clear()
    assert [f.name for f in deploy.unblock(dbsession, five[2], pm=pm)] == ["main"]
    assert recorder.seen == [("enabled", five[2].name, "main")]
    assert set(states(dbsession, main).values()) == {"enabled"}
    assert states(dbsession, beta)[five[2].name] == "disabled"
    deploy.enable_upto(dbsession, beta, five[2])
    assert latest_level(dbsession.connection(), beta.id, K0) == 3


def test_order_is_release_time_then_name_and_products_apart(dbsession):
    same = START + timedelta(days=3)
    b = add_patchset(dbsession, 3, {K0: 2}, released=same, serial=2)
    a = add_patchset(dbsession, 3, {K0: 1}, released=same, serial=1)
    old = add_patchset(dbsession, 9, {K0: 5}, released=START)  # named later, released first
    user = add_patchset(dbsession, 2, {K1: 1}, product="user")
    main = main_feed(dbsession)
    assert names(deploy.ordered_patchsets(dbsession, "kernel")) == [old.name, a.name, b.name]
    assert names(deploy.enable_upto(dbsession, main, a)) == [old.name, a.name]
    assert states(dbsession, main)[user.name] == "undeployed"  # another product's order
    assert names(deploy.rollback_from(dbsession, main, a)) == [a.name]


# --- the rules hold under any sequence of actions --------------------------------------------------

ACTIONS = st.lists(st.tuples(st.sampled_from(["enable_upto", "rollback_from", "block", "unblock"]),
                             st.integers(0, 6), st.integers(0, 1)), max_size=14)
SETUP = st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(0, 3)), min_size=7, max_size=7)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(setup=SETUP, actions=ACTIONS)
def test_enabled_patchsets_are_always_a_prefix_and_latest_is_their_max(dbsession, setup, actions):
    """setup: per patchset (downloaded, blocked, K1 level bump); actions: (action, patchset index, feed
    index), checked against a model of the enabled sets and the events each action must fire."""
    savepoint = dbsession.begin_nested()
    try:
        recorder = Events()
        pm = make_plugin_manager(extra={"events": recorder})
        feeds = [main_feed(dbsession), add_feed(dbsession, "beta")]
        patchsets, k1 = [], 0
        for day, (downloaded, blocked, bump) in enumerate(setup, start=1):
            k1 += bump
            levels = {K0: day, **({K1: k1} if bump else {})}
            patchsets.append(add_patchset(dbsession, day, levels, downloaded=downloaded, blocked=blocked))
        model: list[set[int]] = [set(), set()]  # indexes enabled, per feed
        for action, i, f in actions:
            target, feed = patchsets[i], feeds[f]
            recorder.seen.clear()
            if action == "enable_upto":
                if target.status == "blocked" or target.downloaded is None or gap_before(patchsets, i):
                    with pytest.raises(ServiceError):
                        deploy.enable_upto(dbsession, feed, target, pm=pm)
                    continue
                allowed = {j for j in range(i + 1) if usable(patchsets[j])}
                expected = sorted(allowed - model[f])
                changed = deploy.enable_upto(dbsession, feed, target, pm=pm)
                model[f] |= allowed
                assert recorder.seen == [("enabled", patchsets[j].name, feed.name) for j in expected]
            elif action == "rollback_from":
                expected = sorted(j for j in model[f] if j >= i)
                changed = deploy.rollback_from(dbsession, feed, target, pm=pm)
                model[f] -= set(expected)
                assert recorder.seen == [("disabled", patchsets[j].name, feed.name) for j in expected]
            elif action == "unblock":
                was_blocked = target.status == "blocked"
                expected = sorted(k for k in (0, 1) if was_blocked and target.downloaded is not None
                                  and any(j > i for j in model[k]) and not gap_before(patchsets, i))
                changed_feeds = deploy.unblock(dbsession, target, pm=pm)
                assert sorted(fd.name for fd in changed_feeds) == sorted(feeds[k].name for k in expected)
                for k in expected:
                    model[k].add(i)
                changed = None
            else:
                expected = sorted(k for k in (0, 1) if i in model[k])
                changed_feeds = deploy.block(dbsession, target, pm=pm)
                assert sorted(fd.name for fd in changed_feeds) == sorted(feeds[k].name for k in expected)
                for k in expected:
                    model[k].discard(i)
                changed = None
            if changed is not None:
                assert names(changed) == [patchsets[j].name for j in expected]
            check_invariants(dbsession, feeds, patchsets, model)
    finally:
        savepoint.rollback()


def gap_before(patchsets: list[Patchset], i: int) -> bool:
    """A patchset before ``i`` that is known, not blocked and not downloaded: enabling ``i`` would skip it."""
    return any(p.downloaded is None and p.status != "blocked" for p in patchsets[:i])


def usable(p: Patchset) -> bool:
    return p.downloaded is not None and p.status != "blocked"


def check_invariants(db, feeds, patchsets, model):
    conn = db.connection()
    for f, feed in enumerate(feeds):
        enabled = deploy.enabled_patchsets(db, feed)
        assert names(enabled) == [patchsets[j].name for j in sorted(model[f])]
        order = [p for p in deploy.ordered_patchsets(db) if usable(p)]
        assert names(enabled) == names(order[:len(enabled)]), "the enabled patchsets are not a prefix"
        assert not any(p.status == "blocked" for p in enabled)
        for kernel_id in (K0, K1):
            levels = [lvl for p in enabled for k, lvl in levels_of(db, p) if k == kernel_id]
            assert latest_level(conn, feed.id, kernel_id) == (max(levels) if levels else None)


def levels_of(db, p: Patchset):
    return db.execute(select(PatchLevel.kernel_id, PatchLevel.level).where(PatchLevel.patchset_id == p.id)).all()
