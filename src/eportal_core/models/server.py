"""Registered servers (protocol.md §4) and their tags, indexed for fleet-size queries."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .key import Key
from .meta import Base, utcnow


class Server(Base):
    __tablename__ = "servers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    server_id: Mapped[str] = mapped_column(String(16), unique=True)
    #: NULL once the key is gone (the all-servers page shows such servers)
    key_id: Mapped[int | None] = mapped_column(ForeignKey("keys.id", ondelete="SET NULL"))
    ip: Mapped[str] = mapped_column(String(45), default="", index=True)
    hostname: Mapped[str] = mapped_column(String(255), default="", index=True)
    registered: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    checkin: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    #: last time the patch level changed
    updated: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    euname: Mapped[str] = mapped_column(String(255), default="", index=True)
    release: Mapped[str] = mapped_column(String(255), default="")
    kernel_id: Mapped[str] = mapped_column(String(40), default="", index=True)
    patch_level: Mapped[int | None] = mapped_column(Integer)
    patch_type: Mapped[str] = mapped_column(String(16), default="default")
    #: the agent's tag string as sent ("env:prod;ubuntu"); ServerTag holds it split for filtering
    tags: Mapped[str | None] = mapped_column(String(1024))
    uptime: Mapped[int | None] = mapped_column(BigInteger)
    version: Mapped[str] = mapped_column(String(255), default="")
    virt: Mapped[str] = mapped_column(String(64), default="")
    kcare_version: Mapped[str] = mapped_column(String(64), default="")
    distro: Mapped[str] = mapped_column(String(64), default="")
    distro_version: Mapped[str] = mapped_column(String(64), default="")
    machine: Mapped[str] = mapped_column(String(64), default="")
    processor: Mapped[str] = mapped_column(String(128), default="")

    key: Mapped[Key | None] = relationship(lazy="raise")
    tag_rows: Mapped[list[ServerTag]] = relationship(cascade="all, delete-orphan", passive_deletes=True, lazy="raise")

    __table_args__ = (
        # a key's server list sorted by check-in, and the per-key counts of the start page; on
        # PostgreSQL with the id (migration 0003), so a key or feed with a check-in age is joined with
        # a tag's rows from the index alone (SQLite indexes carry the row id anyway)
        Index("ix_servers_key_id_checkin", "key_id", "checkin", postgresql_include=["id"]),
        # SQLite only (migration 0003): tagged servers by key and check-in, with the tag text, so a
        # count by key or feed, check-in age and tag reads one index range, with no probe per server
        # (services.servers); SQLite has no hash join, and the tag text may exceed PostgreSQL's
        # B-tree entry size, so PostgreSQL joins server_tags instead
        Index("ix_servers_key_id_checkin_tags", "key_id", "checkin", "tags",
              sqlite_where=text("tags IS NOT NULL")).ddl_if(dialect="sqlite"),
        # a key's server list in the default order, newest registration first (migration 0002)
        Index("ix_servers_key_id_registered", "key_id", "registered"),
        # hostname LIKE 'web-01%' on PostgreSQL whatever the database collation (migration 0002);
        # SQLite gets a range on ix_servers_hostname instead (services.servers.like_conditions)
        Index("ix_servers_hostname_pattern", "hostname",
              postgresql_ops={"hostname": "varchar_pattern_ops"}).ddl_if(dialect="postgresql"),
    )


class ServerTag(Base):
    """One tag of a server: ``name`` alone or ``name:value``, with the server's key.

    ``key_id`` repeats ``servers.key_id`` (set from the server when the row is written, and set NULL
    with it when the key goes), so a tag within a key or feed is counted from this table's index
    alone (migration 0003). A server's key never changes otherwise.
    """

    __tablename__ = "server_tags"

    server_pk: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True, default="")
    key_id: Mapped[int | None] = mapped_column(ForeignKey("keys.id", ondelete="SET NULL"))

    __table_args__ = (
        # a tag's servers in server order (PostgreSQL merges them with a key's or feed's servers), and
        # counted within a key or a feed's keys, from the index alone (migration 0003)
        Index("ix_server_tags_name_value_server_pk_key_id", "name", "value", "server_pk", "key_id"),
        # PostgreSQL only since migration 0003: it stores each (name, value) once with the list of its
        # rows (B-tree deduplication, ~10 MB for 1.6M rows), so a tag alone is counted twice as fast
        # from it; on SQLite the index above is as quick and this one only cost writes
        Index("ix_server_tags_name_value", "name", "value").ddl_if(dialect="postgresql"),
    )

