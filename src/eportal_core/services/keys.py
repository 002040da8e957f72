"""Registration keys: the rules shared by console, REST API and ``kc.eportal key``."""
from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import MAIN_FEED, Feed, Key, Server
from . import ServiceError, audit, whole_number
from .feeds import feed_by_name
from .key_counts import KeyCounts, count_by_key

GENERATED_KEY_LENGTH = 16
KEY_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_NOTE = 1000
MAX_SERVER_LIMIT = 10**9
_ALPHANUM = string.ascii_letters + string.digits


def generate_key() -> str:
    return "".join(secrets.choice(_ALPHANUM) for _ in range(GENERATED_KEY_LENGTH))


def validate_key_name(name: str) -> str:
    if not KEY_NAME_RE.match(name or "") or set(name) == {"."}:  # "." and ".." cannot be a URL path segment
        raise ServiceError(f"invalid key {name!r}: use 1-64 letters, digits, '_', '.' or '-' (or leave it empty for a generated one)",
                           field="key")
    return name


def parse_server_limit(value) -> int:
    """0 = unlimited; a negative or non-numeric limit is refused."""
    return whole_number(value, name="server limit", field="server_limit", high=MAX_SERVER_LIMIT, zero="unlimited")


def key_feed(db: Session, name: str | None) -> Feed:
    """The feed a key is given: ``name``, or ``main`` when empty."""
    return feed_by_name(db, (name or "").strip() or MAIN_FEED)


def get_key(db: Session, name: str) -> Key | None:
    return db.scalar(select(Key).where(Key.key == name))


def require_key(db: Session, name: str) -> Key:
    key = get_key(db, name)
    if key is None:
        raise ServiceError(f"key '{name[:64]}' does not exist", field="key")
    return key


def create_key(db: Session, name: str | None = None, *, note: str = "", server_limit=0, feed: str | None = None,
               actor: str = "cli") -> Key:
    name = (name or "").strip()
    if name:
        validate_key_name(name)
        if get_key(db, name) is not None:
            raise ServiceError(f"key '{name}' already exists", field="key")
    else:
        name = generate_key()
        while get_key(db, name) is not None:  # a collision is astronomically unlikely, but cheap to rule out
            name = generate_key()
    note = _check_note(note)
    key = Key(key=name, note=note, server_limit=parse_server_limit(server_limit), feed=key_feed(db, feed))
    db.add(key)
    db.flush()
    audit.record(db, actor, "key.add", name, f"limit={key.server_limit} feed={key.feed.name}")
    return key


def update_key(db: Session, name: str, *, new_name: str | None = None, note: str | None = None,
               server_limit=None, feed: str | None = None, actor: str = "cli") -> Key:
    key = require_key(db, name)
    if new_name is not None and new_name.strip() and new_name.strip() != key.key:
        new_name = validate_key_name(new_name.strip())
        if get_key(db, new_name) is not None:
            raise ServiceError(f"key '{new_name}' already exists", field="key")
        key.key = new_name
    if note is not None:
        key.note = _check_note(note)
    if server_limit is not None:
        key.server_limit = parse_server_limit(server_limit)
    if feed is not None:
        key.feed = key_feed(db, feed)
    db.flush()
    audit.record(db, actor, "key.edit", key.key, f"limit={key.server_limit} feed={key.feed.name}")
    return key


def delete_key(db: Session, name: str, *, actor: str = "cli", pm=None, request=None) -> int:
    """Remove a key and every server registered with it; returns how many servers went."""
    from .servers import delete_servers_where
    key = require_key(db, name)
    removed = delete_servers_where(db, Server.key_id == key.id, pm=pm, request=request)
    db.delete(key)
    db.flush()
    audit.record(db, actor, "key.delete", name, f"servers={removed}")
    return removed


def _check_note(note: str | None) -> str:
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise ServiceError(f"description is too long: at most {MAX_NOTE} characters", field="note")
    return note


@dataclass(frozen=True)
class KeyRow:
    key: Key
    servers: int
    #: servers of the key that checked in within the inventory's window (key_inventory fills it)
    checked_in: int = 0


def list_keys(db: Session) -> list[KeyRow]:
    """Every key with its number of servers (one grouped query over the key_id index)."""
    counts = dict(db.execute(select(Server.key_id, func.count()).where(Server.key_id.is_not(None)).group_by(Server.key_id)).all())
    keys = db.scalars(select(Key).order_by(Key.created, Key.id)).all()
    return [KeyRow(k, counts.get(k.id, 0)) for k in keys]


def count_servers(db: Session, key: Key) -> int:
    return db.scalar(select(func.count()).select_from(Server).where(Server.key_id == key.id)) or 0


def feed_names(db: Session) -> list[str]:
    """Feed names for a key's feed choice: ``main`` first, then by name."""
    names = db.scalars(select(Feed.name).order_by(Feed.name)).all()
    return sorted(names, key=lambda n: (n != MAIN_FEED, n))


def key_names(db: Session, limit: int = 1000) -> list[str]:
    """Key names in creation order (suggestions for a filter field)."""
    return list(db.scalars(select(Key.key).order_by(Key.created, Key.id).limit(limit)))


@dataclass(frozen=True)
class FeedRow:
    name: str
    keys: int
    servers: int
    checked_in: int


@dataclass(frozen=True)
class Inventory:
    """The start page's numbers: every key with its counts, per-feed sums and fleet totals."""

    keys: list[KeyRow]
    feeds: list[FeedRow]
    total: int
    checked_in: int
    #: servers whose key was removed (key_id NULL)
    no_key: int
    no_key_checked_in: int
    since: datetime
    #: when the servers were counted, and whether for this view (key_counts.KeyCountsCache)
    counted_at: datetime
    live: bool


def key_inventory(db: Session, counts: KeyCounts | None = None) -> Inventory:
    """The start page's numbers from ``counts`` (servers per key; counted now when not given): the
    keys and the feeds are read here, the per-feed sums and totals added up from the counts."""
    counts = counts or count_by_key(db)
    by_key = counts.by_key
    keys = db.scalars(select(Key).order_by(Key.created, Key.id)).all()
    rows = [KeyRow(k, *by_key.get(k.id, (0, 0))) for k in keys]
    per_feed: dict[str, list[int]] = {name: [0, 0, 0] for name in feed_names(db)}
    for row in rows:
        sums = per_feed.setdefault(row.key.feed.name, [0, 0, 0])
        sums[0] += 1
        sums[1] += row.servers
        sums[2] += row.checked_in
    no_key, no_key_recent = by_key.get(None, (0, 0))
    return Inventory(
        keys=rows,
        feeds=[FeedRow(name, *sums) for name, sums in per_feed.items()],
        total=sum(n for n, _ in by_key.values()),
        checked_in=sum(r for _, r in by_key.values()),
        no_key=no_key, no_key_checked_in=no_key_recent, since=counts.since,
        counted_at=counts.counted_at, live=counts.live,
    )
