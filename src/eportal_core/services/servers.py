"""The server inventory: filters, sorting, pages, the §4 record, removal. One place for each rule,
used by the console, the REST API, the CLI and the monitoring endpoints."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, and_, delete, false, func, literal, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from ..agent import memory as server_memory
from ..models import Feed, Key, Server, ServerTag, utcnow
from . import ServiceError, audit
from .events import notify
from .levels import latest_level_subquery, latest_levels, patch_status
from .tags import apply_tags, tag_condition, tag_rows, tag_text_condition

TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
MAX_LIMIT = 10000
AGE_RE = re.compile(r"^(-?)(\d{1,6})(h?)$")
#: sortable columns (each indexed, so a sorted page does not scan the table)
SORTS = {
    "registered": Server.registered, "checkin": Server.checkin, "hostname": Server.hostname,
    "ip": Server.ip, "euname": Server.euname, "updated": Server.updated, "id": Server.id,
}
NO_KEY = "(none)"
#: a tag or feed of at least this many servers is "common": SQLite then reads a page in its sort order
#: (or through another filter's index) and checks the tag or feed per server, instead of collecting
#: and sorting every server that has it (see tag_condition and ServerFilter.conditions)
COMMON_ROWS = 5000
#: filters that SQLite reads through an index of their own (see ServerFilter.conditions)
OWN_INDEX = ("hostname", "ip", "kernel", "server_id")
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

    def conditions(self, db: Session, now: datetime | None = None, *, counting: bool = False) -> list:
        """SQL conditions; ``counting``: for a count, not a page (no sort order to read along)."""
        now = now or utcnow()
        cond = list(self.extra)
        sqlite = db.get_bind().dialect.name == "sqlite"
        keyed = self.key is not None or self.feed is not None
        own_index = any(getattr(self, name) is not None for name in OWN_INDEX)
        # SQLite plans without statistics and needs telling which index to read. A count with no
        # filter of an index of its own reads the key's (or the feed's keys') index, and checks the
        # other filters (check-in age, tag) from that index's entries, not from the table
        # (is_updated and plugins' extra conditions: planned as before)
        by_key = counting and keyed and not own_index and self.is_updated is None and not self.extra
        scope = self.key_scope(db)
        # a feed usually holds most of the fleet: tell SQLite that, so it reads another filter's
        # index or the sort order instead of the feed's keys (1M servers, feed + hostname: 1.5 s -> 1
        # ms; a page of the feed: 175 -> 1 ms). A key, only when another filter has an index (the
        # key's own index reads a page in its order): 1M servers, key + hostname web-01%: 190 -> 2 ms
        for condition, hint in ((scope.key_condition(Server.key_id), own_index),
                                (scope.feed_condition(Server.key_id), True)):
            if condition is None:
                continue
            if sqlite and hint and not by_key and _at_least(db, COMMON_ROWS, Server.__table__, condition):
                condition = func.likely(condition, type_=Boolean)
            cond.append(condition)
        for name, column in (("hostname", Server.hostname), ("ip", Server.ip)):
            value = getattr(self, name)
            if value is not None:
                cond.extend(like_conditions(db, column, value) if "%" in value else [column == value])
        if self.tag is not None:
            if sqlite and by_key:
                # from the tag text in ix_servers_key_id_checkin_tags, not a probe of server_tags per
                # server (1M servers, feed main + env:prod + checked in within 2 days: 1.2 s -> 20 ms)
                cond.append(tag_text_condition(self.tag))
            else:
                # PostgreSQL plans both forms alike from its statistics; SQLite has none and needs telling
                common = sqlite and _at_least(db, COMMON_ROWS, ServerTag.__table__, *tag_rows(self.tag))
                cond.append(tag_condition(self.tag, correlated=common))
        if self.kernel is not None:
            if "%" in self.kernel:
                cond.extend(like_conditions(db, Server.euname, self.kernel))
            else:
                cond.append(or_(Server.euname == self.kernel, Server.kernel_id == self.kernel.lower()))
        if self.server_id is not None:
            cond.append(Server.server_id == self.server_id)
        for name, column in AGE_COLUMNS.items():
            age = getattr(self, name)
            if age is not None:
                if sqlite and by_key and not age.within:
                    # "older than, or never": SQLite answers the OR from the column's own index, one
                    # table row per match for the key (feed main, not in 2 days: 2 s); unary + keeps
                    # it to the key's index, which holds the check-in (~50 ms)
                    column = UnaryExpression(column.expression, operator=custom_op("+"), type_=column.type)
                cond.append(age.condition(column, now))
        if self.is_updated is not None:
            # explicit: nested two levels down, auto-correlation would not reach the outer servers row
            feed_of_server = select(Key.feed_id).where(Key.id == Server.key_id).correlate(Server).scalar_subquery()
            latest = latest_level_subquery(feed_of_server, Server.kernel_id)
            updated = and_(latest.is_not(None), Server.patch_level.is_not(None), Server.patch_level >= latest)
            cond.append(updated if self.is_updated else ~updated)
        return cond


def _at_least(db: Session, n: int, table, *conditions) -> bool:
    """At least ``n`` rows of ``table`` match (reads at most ``n`` index entries)."""
    sample = select(literal(1)).select_from(table).where(*conditions).limit(n).subquery()
    return (db.scalar(select(func.count()).select_from(sample)) or 0) >= n


def like_conditions(db: Session, column, pattern: str) -> list:
    """``column LIKE pattern``; on SQLite also a range on the literal prefix (``web-%`` -> ``>= 'web-'
    AND < 'web.'``) so the column's index is used: SQLite's LIKE is case-insensitive and cannot use it
    alone. The range makes the prefix case-sensitive there, as LIKE is on PostgreSQL anyway."""
    conditions = [column.like(pattern, escape="\\")]
    prefix = re.split(r"[%_]", pattern, maxsplit=1)[0]
    if prefix and "\\" not in prefix and ord(prefix[-1]) < 0x10FFFF and db.get_bind().dialect.name == "sqlite":
        conditions += [column >= prefix, column < prefix[:-1] + chr(ord(prefix[-1]) + 1)]
    return conditions


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
    """How many servers the filter selects (a page's total); the query shape depends on the filters
    and the database, the answer does not."""
    keyed = flt.key is not None or flt.feed is not None
    if flt.tag is not None and all(getattr(flt, f.name) in (None, []) for f in fields(flt)
                                   if f.name not in ("tag", "key", "feed")):
        # a tag alone or within a key or feed: server_tags' own index answers (its rows carry the
        # server's key), without a probe per tagged server (1M servers, a tag on 350k: 0.6 s on SQLite,
        # 0.3 s on PostgreSQL otherwise; within a feed of 850k, 15-30 ms). Tag rows go with their
        # server (ON DELETE CASCADE), and with a value there is one row per server, so rows are servers.
        rows = tag_rows(flt.tag)
        one_per_server = len(rows) == 2
        # a name alone within a key or feed: SQLite counts distinct servers slowly (a temporary B-tree
        # of every match); the tag text of its key index is quicker (conditions, below)
        if one_per_server or not keyed or db.get_bind().dialect.name != "sqlite":
            counted = func.count() if one_per_server else func.count(ServerTag.server_pk.distinct())
            return db.scalar(select(counted).select_from(ServerTag)
                             .where(*rows, *flt.key_scope(db).conditions(ServerTag.key_id))) or 0
    if flt.tag is not None and keyed and db.get_bind().dialect.name == "postgresql":
        # the key's (or feed's) servers that pass the other filters, in id order, then the tag:
        # PostgreSQL merges them with the tag's rows, which its index holds in server order, instead
        # of hashing every row of the tag first (1M servers, feed main + env:prod + checked in within
        # 2 days: 150 -> 80 ms). The sort is spent either way, so it still picks a hash join or a
        # loop when they are cheaper.
        others = replace(flt, tag=None).conditions(db, counting=True)
        servers = select(Server.id).where(*others).order_by(Server.id).subquery()
        return db.scalar(select(func.count()).select_from(servers)
                         .where(servers.c.id.in_(select(ServerTag.server_pk).where(*tag_rows(flt.tag))))) or 0
    alone = [f.name for f in fields(flt) if getattr(flt, f.name) not in (None, [])]
    if len(alone) == 1 and alone[0] in AGE_COLUMNS and not getattr(flt, alone[0]).within:
        # "older than N, or never" is most of a fleet: all servers minus those within N, each from
        # an index, in one statement (one snapshot). 1M servers, not checked in for 2 days (800k):
        # SQLite 135-170 -> ~25 ms (it read 800k index entries through a MULTI-INDEX OR)
        within = replace(getattr(flt, alone[0]), within=True).condition(AGE_COLUMNS[alone[0]], utcnow())
        everyone = select(func.count()).select_from(Server).scalar_subquery()
        recent = select(func.count()).select_from(Server).where(within).scalar_subquery()
        return db.scalar(select(everyone - recent)) or 0
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
