"""``services.deploy.preview``: the "are you sure?" lists are exactly what enable_upto and rollback_from
then do, checked against the real functions (run in a savepoint and undone) over random histories."""
from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from eportal_core.models import MAIN_FEED, Feed, Patchset, utcnow
from eportal_core.services import deploy

START = datetime(2024, 1, 1, 10, 0)


def add(db, day: int, *, product: str = "kernel", downloaded: bool = True, blocked: bool = False) -> Patchset:
    p = Patchset(name=f"K202401{day:02d}_01" if product == "kernel" else f"K202402{day:02d}_01", product=product,
                 released=START + timedelta(days=day), status="blocked" if blocked else "available",
                 downloaded=utcnow() if downloaded else None)
    db.add(p)
    db.flush()
    return p


def names(items) -> list[str]:
    return [p.name for p in items]


def actual(db, feed, patchset, action) -> list[str]:
    """What the real rule does, undone afterwards."""
    with db.begin_nested() as savepoint:
        done = action(db, feed, patchset)
        savepoint.rollback()
    return names(done)


@pytest.mark.parametrize("seed", range(6))
def test_preview_matches_what_the_rules_do(dbsession, seed):
    rng = random.Random(seed)
    db = dbsession
    main = db.scalar(select(Feed).where(Feed.name == MAIN_FEED))
    beta = Feed(name="beta")
    db.add(beta)
    db.flush()
    patchsets = [add(db, d, product=rng.choice(["kernel", "kernel", "libcare"])) for d in range(1, 10)]
    for _ in range(12):  # a random history of deploys, rollbacks and blocks
        p, feed = rng.choice(patchsets), rng.choice([main, beta])
        roll = rng.random()
        if roll < 0.5 and p.status != "blocked":
            deploy.enable_upto(db, feed, p)
        elif roll < 0.85:
            deploy.rollback_from(db, feed, p)
        else:
            deploy.block(db, p)
    compared = 0
    for feed in (main, beta):
        plans = deploy.preview(db, feed)
        compared += sum(bool(enable) + bool(disable) for enable, disable in plans.values())
        for p in patchsets:
            enable, disable = plans[p.id]
            if p.status == "blocked":
                assert enable == []
            else:
                assert names(enable) == actual(db, feed, p, deploy.enable_upto), (feed.name, p.name)
            assert names(disable) == actual(db, feed, p, deploy.rollback_from), (feed.name, p.name)
    assert compared > 10  # the history left real work to preview, not just empty lists


def test_not_downloaded_ones_count_as_if_downloaded(dbsession):
    db = dbsession
    main = db.scalar(select(Feed).where(Feed.name == MAIN_FEED))
    a, b, c = add(db, 1), add(db, 2, downloaded=False), add(db, 3, downloaded=False)
    blocked = add(db, 4, blocked=True)
    plans = deploy.preview(db, main)
    assert names(plans[c.id][0]) == [a.name, b.name, c.name]
    assert plans[blocked.id] == ([], [])
    deploy.enable_upto(db, main, a)
    plans = deploy.preview(db, main)
    assert names(plans[c.id][0]) == [b.name, c.name]
    assert names(plans[a.id][1]) == [a.name] and plans[b.id][1] == []
