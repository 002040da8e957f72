"""Patchsets, the kernel levels each one carries, and their state on each feed."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .meta import Base, utcnow

STATUS_AVAILABLE = "available"
STATUS_BLOCKED = "blocked"


class Patchset(Base):
    __tablename__ = "patchsets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    product: Mapped[str] = mapped_column(String(64), default="kernel")
    #: release time upstream; (released, name) is the deploy order
    released: Mapped[datetime] = mapped_column(DateTime)
    #: upstream status: available or blocked
    status: Mapped[str] = mapped_column(String(16), default=STATUS_AVAILABLE)
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    changelog: Mapped[str] = mapped_column(Text, default="")
    #: when the archive arrived on this portal (NULL = known upstream, not downloaded)
    downloaded: Mapped[datetime | None] = mapped_column(DateTime)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_patchsets_released_name", "released", "name"),)


class PatchLevel(Base):
    """Patchset P carries level L for kernel K (from its manifest)."""

    __tablename__ = "patch_levels"

    patchset_id: Mapped[int] = mapped_column(ForeignKey("patchsets.id", ondelete="CASCADE"), primary_key=True)
    kernel_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    level: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_patch_levels_kernel_id_level", "kernel_id", "level"),)


class FeedPatchset(Base):
    """The state of one patchset on one feed."""

    __tablename__ = "feed_patchsets"

    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True)
    patchset_id: Mapped[int] = mapped_column(ForeignKey("patchsets.id", ondelete="CASCADE"), primary_key=True, index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    changed: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
