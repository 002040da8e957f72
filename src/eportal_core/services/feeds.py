"""Feeds: named channels of patchsets (protocol.md §8), and the rules the console, REST API and CLI share.

``main`` is the default feed: it always exists and is never deleted or renamed (its auto update and
its delay may change). Deleting any other feed first moves its keys to ``main`` (the ePortal docs:
"When removing a feed all keys attached to this feed will be moved to the default feed"). Which
patchsets a feed has enabled is decided by ``services.deploy`` alone.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, func, select, true
from sqlalchemy.orm import Session

from ..models import MAIN_FEED, Feed, FeedPatchset, Key, Patchset
from . import ServiceError, audit, whole_number
from .deploy import DEPLOY_ORDER

FEED_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
#: one year, in hours
MAX_DEPLOY_AFTER = 8760
MAX_CHANNEL = 64


def validate_feed_name(name: str | None) -> str:
    name = (name or "").strip()
    if not FEED_NAME_RE.match(name) or set(name) == {"."}:  # "." and ".." cannot be a URL path segment
        raise ServiceError(f"invalid feed name {name[:80]!r}: use 1-64 letters, digits, '_', '.' or '-'",
                           field="name")
    return name


def parse_deploy_after(value) -> int:
    """Hours between a patchset's arrival on this portal and its deployment on an auto feed (0 = at once)."""
    return whole_number(value, name="deploy after", field="deploy_after", high=MAX_DEPLOY_AFTER, zero="at once",
                        unit="hours")


def parse_channel(value) -> str:
    channel = (value or "").strip()
    if len(channel) > MAX_CHANNEL or any(ord(c) < 32 or ord(c) == 127 for c in channel):
        raise ServiceError(f"channel must be at most {MAX_CHANNEL} printable characters", field="channel")
    return channel


def get_feed(db: Session, name: str) -> Feed | None:
    return db.scalar(select(Feed).where(Feed.name == name))


def feed_by_name(db: Session, name: str) -> Feed:
    """The feed named ``name``; the one place that refuses a feed that does not exist (every caller:
    keys, the REST API, the CLI, the patch source)."""
    feed = get_feed(db, name)
    if feed is None:
        raise ServiceError(f"feed '{(name or '')[:64]}' does not exist", field="feed")
    return feed


def main_feed(db: Session) -> Feed:
    return feed_by_name(db, MAIN_FEED)


def create_feed(db: Session, name: str, *, auto: bool = False, deploy_after=0, channel: str = "",
                actor: str = "cli") -> Feed:
    name = validate_feed_name(name)
    if get_feed(db, name) is not None:
        raise ServiceError(f"feed '{name}' already exists", field="name")
    feed = Feed(name=name, auto=bool(auto), deploy_after=parse_deploy_after(deploy_after),
                channel=parse_channel(channel))
    db.add(feed)
    db.flush()
    audit.record(db, actor, "feed.add", name, _summary(feed))
    return feed


def update_feed(db: Session, name: str, *, new_name: str | None = None, auto: bool | None = None,
                deploy_after=None, channel: str | None = None, actor: str = "cli") -> Feed:
    """Change what is given (``None`` keeps it). ``main`` keeps its name."""
    feed = feed_by_name(db, name)
    if new_name is not None and new_name.strip() != feed.name:
        if feed.name == MAIN_FEED:
            raise ServiceError("the main feed cannot be renamed", field="name")
        new_name = validate_feed_name(new_name)
        if get_feed(db, new_name) is not None:
            raise ServiceError(f"feed '{new_name}' already exists", field="name")
        feed.name = new_name
    if auto is not None:
        feed.auto = bool(auto)
    if deploy_after is not None:
        feed.deploy_after = parse_deploy_after(deploy_after)
    if channel is not None:
        feed.channel = parse_channel(channel)
    db.flush()
    renamed = f" (was {name})" if feed.name != name else ""
    audit.record(db, actor, "feed.edit", feed.name, _summary(feed) + renamed)
    return feed


def save_feed(db: Session, name: str, *, auto: bool | None = None, deploy_after=None, channel: str | None = None,
              actor: str = "cli") -> tuple[Feed, bool]:
    """Create the feed, or update it if it exists (the REST API is idempotent). Returns (feed, created)."""
    name = validate_feed_name(name)
    if get_feed(db, name) is None:
        return create_feed(db, name, auto=bool(auto), deploy_after=deploy_after or 0, channel=channel or "",
                           actor=actor), True
    return update_feed(db, name, auto=auto, deploy_after=deploy_after, channel=channel, actor=actor), False


def delete_feed(db: Session, name: str, *, actor: str = "cli") -> int:
    """Delete the feed after moving its keys to ``main``; returns how many keys moved."""
    feed = feed_by_name(db, name)
    if feed.name == MAIN_FEED:
        raise ServiceError("the main feed cannot be deleted")
    main = main_feed(db)
    keys = db.scalars(select(Key).where(Key.feed_id == feed.id)).all()
    for key in keys:
        key.feed = main
    db.flush()
    db.execute(delete(FeedPatchset).where(FeedPatchset.feed_id == feed.id))
    db.delete(feed)
    db.flush()
    audit.record(db, actor, "feed.delete", name, f"keys moved to {MAIN_FEED}={len(keys)}")
    return len(keys)


def count_keys(db: Session, feed: Feed) -> int:
    return db.scalar(select(func.count()).select_from(Key).where(Key.feed_id == feed.id)) or 0


@dataclass(frozen=True)
class FeedSummary:
    feed: Feed
    keys: int
    #: how many patchsets are enabled on it, and the newest of them (None: none)
    enabled: int
    latest: str | None


def list_feeds(db: Session) -> list[FeedSummary]:
    """Every feed (``main`` first, then by name) with its key count and enabled patchsets, in three queries."""
    feeds = sorted(db.scalars(select(Feed)).all(), key=lambda f: (f.name != MAIN_FEED, f.name))
    keys = dict(db.execute(select(Key.feed_id, func.count()).group_by(Key.feed_id)).all())
    enabled: dict[int, list[str]] = {}
    rows = db.execute(select(FeedPatchset.feed_id, Patchset.name)
                      .join(Patchset, Patchset.id == FeedPatchset.patchset_id)
                      .where(FeedPatchset.enabled == true())
                      .order_by(*DEPLOY_ORDER))
    for feed_id, patchset in rows:
        enabled.setdefault(feed_id, []).append(patchset)
    return [FeedSummary(f, keys.get(f.id, 0), len(enabled.get(f.id, [])), (enabled.get(f.id) or [None])[-1])
            for f in feeds]


def _summary(feed: Feed) -> str:
    return f"auto={'on' if feed.auto else 'off'} deploy_after={feed.deploy_after}h" + \
        (f" channel={feed.channel}" if feed.channel else "")
