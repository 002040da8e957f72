"""Registered servers (protocol.md §4) and their tags, indexed for fleet-size queries."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String
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
        # a key's server list sorted by check-in, and the per-key counts of the start page
        Index("ix_servers_key_id_checkin", "key_id", "checkin"),
        # a key's server list in the default order, newest registration first (migration 0002)
        Index("ix_servers_key_id_registered", "key_id", "registered"),
        # hostname LIKE 'web-01%' on PostgreSQL whatever the database collation (migration 0002);
        # SQLite gets a range on ix_servers_hostname instead (services.servers.like_conditions)
        Index("ix_servers_hostname_pattern", "hostname",
              postgresql_ops={"hostname": "varchar_pattern_ops"}).ddl_if(dialect="postgresql"),
    )


class ServerTag(Base):
    """One tag of a server: ``name`` alone or ``name:value``."""

    __tablename__ = "server_tags"

    server_pk: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True, default="")

    __table_args__ = (Index("ix_server_tags_name_value", "name", "value"),)

