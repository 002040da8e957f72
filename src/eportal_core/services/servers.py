"""The server inventory: filters, sorting, pages, the §4 record, removal. One place for each rule,
used by the console, the REST API, the CLI and the monitoring endpoints."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, false, func, or_, select
from sqlalchemy.orm import Session

from ..agent import memory as server_memory
from ..models import Feed, Key, Server, utcnow
from . import ServiceError, audit, server_queries
from .events import notify
from .levels import latest_level_subquery, latest_levels, patch_status
from .server_queries import like_conditions
from .tags import apply_tags

TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
MAX_LIMIT = 10000
AGE_RE = re.compile(r"^(-?)(\d{1,6})(h?)$")
#: sortable columns (each indexed, so a sorted page does not scan the table)
SORTS = {
    "registered": Server.registered, "checkin": Server.checkin, "hostname": Server.hostname,
    "ip": Server.ip, "euname": Server.euname, "updated": Server.updated, "id": Server.id,
}
NO_KEY = "(none)"
#: a feed's key ids are sent as a list up to this many keys, as a subquery past it
MAX_LISTED_KEYS = 500
#: the age filters and the time each one is about
AGE_COLUMNS = {"registered_age": Server.registered, "checkin_age": Server.checkin, "updated_age": Server.updated}


@dataclass(frozen=True)
class Age:
    """``checkin_age=2`` means older than 2 days; ``-2`` within 2 days; ``12h`` counts hours."""

    span: timedelta
    within: bool

    @classmethod
    def parse(cls, name: str, text) -> Age | None:
        if text is None or str(text).strip() == "":
            return None
        m = AGE_RE.match(str(text).strip())
        if not m:
            raise ServiceError(f"{name} must be a number of days (or hours with 'h', e.g. 12h); negative means 'within'",
                               field=name)
        sign, number, hours = m.groups()
        span = timedelta(hours=int(number)) if hours else timedelta(days=int(number))
        return cls(span, within=bool(sign))

    def __str__(self) -> str:
        """The filter text that parses back to this age (``-2``, ``36h``): for links to a filtered list."""
        hours = int(self.span / timedelta(hours=1))
        number = f"{hours // 24}" if hours % 24 == 0 else f"{hours}h"
        return ("-" if self.within else "") + number

    def condition(self, column, now: datetime):
        cutoff = now - self.span
        return column >= cutoff if self.within else or_(column < cutoff, column.is_(None))


@dataclass(frozen=True)
class KeyScope:
    """The key and feed filters with their ids looked up, as conditions on a key column:
    ``servers.key_id``, or ``server_tags.key_id`` (which repeats the server's key).

    Ids, not subqueries: PostgreSQL then plans with the key's or feed's real share of the fleet
    (with a subquery, a small key's sorted page walked the whole registered index, and a feed of
    85 % of the fleet was taken for 14 % and joined with a tag row by row). A feed of more than
    MAX_LISTED_KEYS keys stays a subquery."""

    key: str | None
    key_id: int | None
    feed: str | None
    feed_ids: list[int] | None
    feed_keys: Any

    def key_condition(self, column):
        if self.key == NO_KEY:
            # a server without a key has no feed (PostgreSQL scanned the fleet to find none)
            return column.is_(None) if self.feed is None else false()
        if self.key is not None:
            listed = self.feed_ids is not None and len(self.feed_ids) <= MAX_LISTED_KEYS
            if self.key_id is None or (listed and self.key_id not in self.feed_ids):
                return false()  # no such key, or not on the feed asked for
            return column == self.key_id
        return None

    def feed_condition(self, column):
        if self.feed is None or self.key == NO_KEY:
            return None
        if len(self.feed_ids) > MAX_LISTED_KEYS:
            return column.in_(self.feed_keys)
        return column.in_(self.feed_ids) if self.feed_ids else false()

    def conditions(self, column) -> list:
        return [c for c in (self.key_condition(column), self.feed_condition(column)) if c is not None]


@dataclass
class ServerFilter:
    key: str | None = None
    feed: str | None = None
    hostname: str | None = None
    ip: str | None = None
    tag: str | None = None
    kernel: str | None = None
    registered_age: Age | None = None
    checkin_age: Age | None = None
    updated_age: Age | None = None
    is_updated: bool | None = None
    server_id: str | None = None
    extra: list = field(default_factory=list)

    @classmethod
    def from_params(cls, params) -> ServerFilter:
        """Build from request params (query, form or JSON alike); bad values raise ServiceError."""
        def text(name, maxlen=255):
            value = params.get(name)
            if value is None or str(value).strip() == "":
                return None
            value = str(value).strip()
            if len(value) > maxlen:
                raise ServiceError(f"{name} is too long (at most {maxlen} characters)", field=name)
            return value
        is_updated = text("is_updated")
        if is_updated is not None:
            lowered = is_updated.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ServiceError("is_updated must be true or false", field="is_updated")
            is_updated = lowered in ("true", "1", "yes")
        return cls(
            key=text("key", 64), feed=text("feed", 64), hostname=text("hostname"), ip=text("ip", 45),
            tag=text("tag", 400), kernel=text("kernel"), server_id=text("server_id", 16),
            registered_age=Age.parse("registered_age", params.get("registered_age")),
            checkin_age=Age.parse("checkin_age", params.get("checkin_age")),
            updated_age=Age.parse("updated_age", params.get("updated_age")),
            is_updated=is_updated,
        )

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) in (None, []) for f in fields(self))

    def key_scope(self, db: Session) -> KeyScope:
        """The key and feed filters, looked up once (see KeyScope)."""
        key_id = feed_ids = feed_keys = None
        if self.key is not None and self.key != NO_KEY:
            key_id = db.scalar(select(Key.id).where(Key.key == self.key))
        if self.feed is not None:
            feed_keys = select(Key.id).join(Feed, Feed.id == Key.feed_id).where(Feed.name == self.feed)
            feed_ids = db.scalars(feed_keys.order_by(Key.id).limit(MAX_LISTED_KEYS + 1)).all()
        return KeyScope(self.key, key_id, self.feed, feed_ids, feed_keys)

    def ages(self) -> list[tuple[Any, Age]]:
        """(column, age) of each age filter given."""
        return [(column, getattr(self, name)) for name, column in AGE_COLUMNS.items() if getattr(self, name) is not None]

    def conditions(self, db: Session, now: datetime | None = None, *, counting: bool = False) -> list:
        """SQL conditions; ``counting``: for a count, not a page. How each is put to the database
        (index hints, prefix ranges) is server_queries' business, not the filter's."""
        now = now or utcnow()
        cond = list(self.extra)
        shape = server_queries.Shaping(db, self, counting=counting)
        scope = self.key_scope(db)
        key, feed = scope.key_condition(Server.key_id), scope.feed_condition(Server.key_id)
        if key is not None:
            cond.append(shape.key(key))
        if feed is not None:
            cond.append(shape.feed(feed))
        for name, column in (("hostname", Server.hostname), ("ip", Server.ip)):
            value = getattr(self, name)
            if value is not None:
                cond.extend(like_conditions(db, column, value) if "%" in value else [column == value])
        if self.tag is not None:
            cond.append(shape.tag(self.tag))
        if self.kernel is not None:
            if "%" in self.kernel:
                cond.extend(like_conditions(db, Server.euname, self.kernel))
            else:
                cond.append(or_(Server.euname == self.kernel, Server.kernel_id == self.kernel.lower()))
        if self.server_id is not None:
            cond.append(Server.server_id == self.server_id)
        for column, age in self.ages():
            cond.append(age.condition(shape.age_column(column, age), now))
        if self.is_updated is not None:
            # explicit: nested two levels down, auto-correlation would not reach the outer servers row
            feed_of_server = select(Key.feed_id).where(Key.id == Server.key_id).correlate(Server).scalar_subquery()
            latest = latest_level_subquery(feed_of_server, Server.kernel_id)
            updated = and_(latest.is_not(None), Server.patch_level.is_not(None), Server.patch_level >= latest)
            cond.append(updated if self.is_updated else ~updated)
        return cond


@dataclass
class Page:
    rows: list[dict]
    count: int
    limit: int
    offset: int


def parse_paging(params, default_limit: int = 10) -> tuple[int, int]:
    def number(name, default, low, high):
        raw = params.get(name)
        if raw is None or str(raw).strip() == "":
            return default
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ServiceError(f"{name} must be a whole number", field=name) from None
        if not low <= value <= high:
            raise ServiceError(f"{name} must be between {low} and {high}", field=name)
        return value
    return number("limit", default_limit, 1, MAX_LIMIT), number("offset", 0, 0, 10**9)


def count_servers(db: Session, flt: ServerFilter) -> int:
    """How many servers the filter selects (a page's total). server_queries counts some filters by a
    quicker shape for the database at hand; the answer is the same."""
    quick = server_queries.quick_count(db, flt)
    if quick is not None:
        return quick
    return db.scalar(select(func.count()).select_from(Server).where(*flt.conditions(db, counting=True))) or 0


def find_servers(db: Session, flt: ServerFilter, *, sort: str = "id", descending: bool = True,
                 limit: int = 10, offset: int = 0, with_count: bool = True) -> Page:
    """One page of servers as §4 records, plus the total count for the filter."""
    column = SORTS.get(sort, Server.id)
    order = [column.desc(), Server.id.desc()] if descending else [column.asc(), Server.id.asc()]
    conditions = flt.conditions(db)
    servers = db.scalars(select(Server).where(*conditions).order_by(*order).limit(limit).offset(offset)).all()
    count = count_servers(db, flt) if with_count else len(servers)
    return Page(records(db, servers), count, limit, offset)


def records(db: Session, servers: list[Server]) -> list[dict]:
    """§4 records for ``servers``, with key, feed and up-to-date status looked up in two queries."""
    key_ids = {s.key_id for s in servers if s.key_id is not None}
    keys = {k.id: k for k in db.scalars(select(Key).where(Key.id.in_(key_ids)))} if key_ids else {}
    pairs = {(keys[s.key_id].feed_id, s.kernel_id) for s in servers if s.key_id in keys and s.kernel_id}
    latest = latest_levels(db, pairs)
    out = []
    for s in servers:
        key = keys.get(s.key_id)
        level = latest.get((key.feed_id, s.kernel_id)) if key else None
        out.append(record(s, key, level))
    return out


def _ts(value: datetime | None) -> str | None:
    return value.strftime(TIME_FORMAT) if value else None


def record(s: Server, key: Key | None, latest: int | None = None) -> dict:
    """The server record of protocol.md §4 (plus ``status`` and ``latest_level``, ours)."""
    return {
        "id": s.server_id, "ip": s.ip, "hostname": s.hostname,
        "key": key.key if key else None, "feed": key.feed.name if key else None,
        "registered": _ts(s.registered), "checkin": _ts(s.checkin), "updated": _ts(s.updated),
        "euname": s.euname, "release": s.release, "kernel_id": s.kernel_id,
        "patch_level": s.patch_level, "patch_type": s.patch_type, "tags": s.tags,
        "uptime": s.uptime, "version": s.version, "virt": s.virt, "kcare_version": s.kcare_version,
        "distro": s.distro, "distro_version": s.distro_version, "machine": s.machine, "processor": s.processor,
        "status": patch_status(s.patch_level, latest), "latest_level": latest,
    }


def get_server(db: Session, server_id: str) -> Server | None:
    return db.scalar(select(Server).where(Server.server_id == server_id))


def short_id(server_id: str) -> str:
    """A server_id as it may appear in logs and the audit trail: it is the agent's credential."""
    return (server_id or "")[:4] + "…"


def delete_servers_where(db: Session, *conditions, pm=None, request=None, actor: str | None = None,
                         what: str = "") -> int:
    """Delete matching servers (tags go with them); the unregistered event fires when anyone listens.

    With ``actor``, the removal is recorded in the audit trail as ``what`` and the count.
    """
    if pm is not None and pm.hook.eportal_server_unregistered.get_hookimpls():
        for server in db.scalars(select(Server).where(*conditions)):
            notify(pm, "server_unregistered", request=request, server=server)
    statement = delete(Server).where(*conditions).execution_options(synchronize_session=False)
    if server_memory.any_active():
        # this process keeps server ids in memory for check-ins: forget the removed ones at once
        gone = db.scalars(statement.returning(Server.server_id)).all()
        server_memory.forget(gone)
        removed = len(gone)
    else:
        removed = db.execute(statement).rowcount or 0
    if actor is not None:
        audit.record(db, actor, "server.delete", what, f"servers={removed}", ip=_ip(request))
    return removed


def delete_servers(db: Session, server_ids: list[str], *, pm=None, request=None, actor: str | None = None) -> int:
    ids = [s for s in server_ids if s][:10000]
    if not ids:
        return 0
    what = short_id(ids[0]) if len(ids) == 1 else f"{len(ids)} selected"
    return delete_servers_where(db, Server.server_id.in_(ids), pm=pm, request=request, actor=actor, what=what)


def set_server_tags(db: Session, server: Server, text: str | None, *, actor: str, request=None) -> None:
    """Replace a server's tags (console and REST API); validated first, so bad text changes nothing."""
    apply_tags(db, server, text)
    audit.record(db, actor, "server.tags", short_id(server.server_id), server.tags or "", ip=_ip(request))


def _ip(request) -> str:
    if request is None:
        return ""
    from ..web.clientip import client_ip
    return client_ip(request)
