"""Console users and their API tokens."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .meta import Base, utcnow

ROLE_ADMIN = "admin"
ROLE_READONLY = "readonly"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    #: argon2id hash; NULL for users that authenticate elsewhere (LDAP)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    readonly: Mapped[bool] = mapped_column(Boolean, default=False)
    #: "local" or the name of the auth plugin that created the user ("ldap_auth")
    source: Mapped[str] = mapped_column(String(32), default="local")
    description: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login: Mapped[datetime | None] = mapped_column(DateTime)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan", passive_deletes=True)

    @property
    def role(self) -> str:
        return ROLE_READONLY if self.readonly else ROLE_ADMIN


class ApiToken(Base):
    """A REST API token: shown once, stored as a SHA-256 digest, same role as its owner."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    #: first characters of the token, shown in lists so users can tell tokens apart
    prefix: Mapped[str] = mapped_column(String(12))
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires: Mapped[datetime | None] = mapped_column(DateTime)
    last_used: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship(back_populates="tokens")
