"""Registration keys."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .feed import Feed
from .meta import Base, utcnow


class Key(Base):
    __tablename__ = "keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    note: Mapped[str] = mapped_column(Text, default="")
    #: 0 = unlimited
    server_limit: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id"), index=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    feed: Mapped[Feed] = relationship(lazy="joined")
