"""How the server filters of ``services.servers`` are put to each database, at fleet scale.

The filters say which servers; this module says how to ask for them quickly. PostgreSQL plans
from its statistics; SQLite has none, so it is told which index to read (``likely()``, a unary
``+`` that keeps it off an index, a range beside ``LIKE``). Counting has shapes of its own (a
tag's rows, a merge in server order, "all minus the recent ones"). Every shape gives the answer
the plain conditions give (tests/unit/test_server_queries.py, tests/functional/
test_servers_filter_combinations.py); the timings are those of bench/pages_bench.py.
"""
from __future__ import annotations

import re
from dataclasses import fields, replace

from sqlalchemy import Boolean, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from ..models import Server, ServerTag, utcnow
from .tags import tag_condition, tag_rows, tag_text_condition

#: a tag or feed of at least this many servers is "common": SQLite then reads a page in its sort order
#: (or through another filter's index) and checks the tag or feed per server, instead of collecting
#: and sorting every server that has it (see tag_condition and Shaping)
COMMON_ROWS = 5000
#: filters that SQLite reads through an index of their own (see Shaping)
OWN_INDEX = ("hostname", "ip", "kernel", "server_id")


def is_sqlite(db: Session) -> bool:
    return db.get_bind().dialect.name == "sqlite"


class Shaping:
    """The hints for one filter's conditions (``flt``: a ServerFilter); ``counting``: for a count,
    not a page (no sort order to read along)."""

    def __init__(self, db: Session, flt, *, counting: bool = False):
        self.db = db
        self.sqlite = is_sqlite(db)
        keyed = flt.key is not None or flt.feed is not None
        self.own_index = any(getattr(flt, name) is not None for name in OWN_INDEX)
        # A count with no filter of an index of its own reads the key's (or the feed's keys') index,
        # and checks the other filters (check-in age, tag) from that index's entries, not from the
        # table (is_updated and plugins' extra conditions: planned as before)
        self.by_key = counting and keyed and not self.own_index and flt.is_updated is None and not flt.extra

    def key(self, condition):
        # a key, only when another filter has an index (the key's own index reads a page in its
        # order): 1M servers, key + hostname web-01%: 190 -> 2 ms
        return self._likely(condition) if self.own_index else condition

    def feed(self, condition):
        # a feed usually holds most of the fleet: tell SQLite that, so it reads another filter's
        # index or the sort order instead of the feed's keys (1M servers, feed + hostname: 1.5 s -> 1
        # ms; a page of the feed: 175 -> 1 ms)
        return self._likely(condition)

    def _likely(self, condition):
        if self.sqlite and not self.by_key and at_least(self.db, COMMON_ROWS, Server.__table__, condition):
            return func.likely(condition, type_=Boolean)
        return condition

    def tag(self, text: str):
        if self.sqlite and self.by_key:
            # from the tag text in ix_servers_key_id_checkin_tags, not a probe of server_tags per
            # server (1M servers, feed main + env:prod + checked in within 2 days: 1.2 s -> 20 ms)
            return tag_text_condition(text)
        # PostgreSQL plans both forms alike from its statistics; SQLite has none and needs telling
        common = self.sqlite and at_least(self.db, COMMON_ROWS, ServerTag.__table__, *tag_rows(text))
        return tag_condition(text, correlated=common)

    def age_column(self, column, age):
        if self.sqlite and self.by_key and not age.within:
            # "older than, or never": SQLite answers the OR from the column's own index, one table
            # row per match for the key (feed main, not in 2 days: 2 s); unary + keeps it to the
            # key's index, which holds the check-in (~50 ms)
            return UnaryExpression(column.expression, operator=custom_op("+"), type_=column.type)
        return column


def at_least(db: Session, n: int, table, *conditions) -> bool:
    """At least ``n`` rows of ``table`` match (reads at most ``n`` index entries)."""
    sample = select(literal(1)).select_from(table).where(*conditions).limit(n).subquery()
    return (db.scalar(select(func.count()).select_from(sample)) or 0) >= n


def like_conditions(db: Session, column, pattern: str) -> list:
    """``column LIKE pattern``; on SQLite also a range on the literal prefix (``web-%`` -> ``>= 'web-'
    AND < 'web.'``) so the column's index is used: SQLite's LIKE is case-insensitive and cannot use it
    alone. The range makes the prefix case-sensitive there, as LIKE is on PostgreSQL anyway."""
    conditions = [column.like(pattern, escape="\\")]
    prefix = re.split(r"[%_]", pattern, maxsplit=1)[0]
    if prefix and "\\" not in prefix and ord(prefix[-1]) < 0x10FFFF and is_sqlite(db):
        conditions += [column >= prefix, column < prefix[:-1] + chr(ord(prefix[-1]) + 1)]
    return conditions


def quick_count(db: Session, flt) -> int | None:
    """The count of ``flt`` (a ServerFilter) by a quicker shape, or None when the plain count is the one."""
    given = [f.name for f in fields(flt) if getattr(flt, f.name) not in (None, [])]
    keyed = flt.key is not None or flt.feed is not None
    if flt.tag is not None and set(given) <= {"tag", "key", "feed"}:
        # a tag alone or within a key or feed: server_tags' own index answers (its rows carry the
        # server's key), without a probe per tagged server (1M servers, a tag on 350k: 0.6 s on SQLite,
        # 0.3 s on PostgreSQL otherwise; within a feed of 850k, 15-30 ms). Tag rows go with their
        # server (ON DELETE CASCADE), and with a value there is one row per server, so rows are servers.
        rows = tag_rows(flt.tag)
        one_per_server = len(rows) == 2
        # a name alone within a key or feed: SQLite counts distinct servers slowly (a temporary B-tree
        # of every match); the tag text of its key index is quicker (Shaping.tag)
        if one_per_server or not keyed or not is_sqlite(db):
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
    ages = flt.ages()
    if len(given) == 1 and len(ages) == 1 and not ages[0][1].within:
        # "older than N, or never" is most of a fleet: all servers minus those within N, each from
        # an index, in one statement (one snapshot). 1M servers, not checked in for 2 days (800k):
        # SQLite 135-170 -> ~25 ms (it read 800k index entries through a MULTI-INDEX OR)
        column, age = ages[0]
        within = replace(age, within=True).condition(column, utcnow())
        everyone = select(func.count()).select_from(Server).scalar_subquery()
        recent = select(func.count()).select_from(Server).where(within).scalar_subquery()
        return db.scalar(select(everyone - recent)) or 0
    return None
