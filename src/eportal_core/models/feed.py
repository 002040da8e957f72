"""Feeds: named channels of patchsets; ``main`` always exists."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .meta import Base, utcnow

MAIN_FEED = "main"


class Feed(Base):
    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    auto: Mapped[bool] = mapped_column(Boolean, default=False)
    deploy_after: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str] = mapped_column(String(64), default="")
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
