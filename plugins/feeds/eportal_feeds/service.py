"""Auto update: an auto feed enables each patchset ``deploy_after`` hours after it arrived on this
portal (the ePortal docs, Feed Management; protocol.md §8).

The arrival time is ``Patchset.downloaded``, never the upstream release time: on a clean install
every archive arrives at once, so all of them are deployed together ``deploy_after`` hours later.
A patchset is *due* on a feed when it is downloaded, not blocked, new to the feed (never enabled
or rolled back there) and ``downloaded + deploy_after <= now``. For each product the newest due
patchset is enabled with :func:`services.deploy.enable_upto`, which enables everything before it
in deploy order too (nothing is ever enabled out of order) and never a blocked patchset. A due
patchset that comes after one not downloaded yet waits for it.

Only patchsets new to the feed count, so an admin's rollback on an auto feed stands until a newer
patchset comes due (enabling that one enables the rolled-back ones before it again, in order).
Feeds without auto update are never touched. The clock is a parameter: tests pass ``now``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from eportal_core.api import MAIN_FEED, STATUS_BLOCKED, Feed, FeedPatchset, Patchset, deploy, utcnow

log = logging.getLogger(__name__)

ACTOR = "auto-update"


@dataclass
class FeedUpdate:
    """What one run did on one auto feed."""

    feed: str
    deploy_after: int
    enabled: list[Patchset] = field(default_factory=list)


def _naive_utc(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    return now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo is not None else now


def due_patchsets(db: Session, feed: Feed, now: datetime | None = None) -> list[Patchset]:
    """The newest due patchset of each product on ``feed`` (see the module docstring), by product."""
    cutoff = _naive_utc(now) - timedelta(hours=feed.deploy_after)
    on_feed = select(FeedPatchset.patchset_id).where(FeedPatchset.feed_id == feed.id)
    due = db.scalars(
        select(Patchset)
        .where(Patchset.downloaded.is_not(None), Patchset.downloaded <= cutoff,
               Patchset.status != STATUS_BLOCKED, Patchset.id.not_in(on_feed))
        .order_by(*deploy.DEPLOY_ORDER)).all()
    # never past a patchset that is not downloaded yet (deploy.py: nothing is enabled out of order)
    newest = deploy.newest_before_gap(list(due), deploy.gaps_by_product(db))
    return [newest[product] for product in sorted(newest)]


def run_auto_update(db: Session, now: datetime | None = None, *, pm=None, actor: str = ACTOR) -> list[FeedUpdate]:
    """Enable what is due on every auto feed (``main`` first, then by name); returns one
    :class:`FeedUpdate` per auto feed, with the patchsets this run enabled (oldest first)."""
    now = _naive_utc(now)
    feeds = sorted(db.scalars(select(Feed).where(Feed.auto == true())).all(), key=lambda f: (f.name != MAIN_FEED, f.name))
    results = []
    for feed in feeds:
        update = FeedUpdate(feed.name, feed.deploy_after)
        for target in due_patchsets(db, feed, now):
            update.enabled.extend(deploy.enable_upto(db, feed, target, pm=pm, actor=actor))
        if update.enabled:
            log.info("auto update enabled %s on feed %s", ", ".join(p.name for p in update.enabled), feed.name)
        results.append(update)
    return results
