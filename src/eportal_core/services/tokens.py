"""REST API tokens: shown once, stored as SHA-256, optional expiry, same role as their owner."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import ApiToken, User, utcnow
from . import ServiceError, audit

TOKEN_PREFIX = "ept_"
MAX_NAME = 128
#: last_used is written at most this often, so API reads do not each write
TOUCH_EVERY = timedelta(minutes=1)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def create_token(db: Session, user: User, name: str, *, expires_days: int | None = None, actor: str | None = None) -> tuple[str, ApiToken]:
    """Return ``(token, row)``; the token text exists only in this return value."""
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME:
        raise ServiceError(f"give the token a name of 1 to {MAX_NAME} characters", field="name")
    if expires_days is not None and not 1 <= expires_days <= 3650:
        raise ServiceError("expiry must be between 1 and 3650 days (or empty for none)", field="expires_days")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, digest=digest(token), prefix=token[:12],
                   expires=utcnow() + timedelta(days=expires_days) if expires_days else None)
    db.add(row)
    db.flush()
    audit.record(db, actor or user.username, "token.add", f"{user.username}/{name}")
    return token, row


def verify_token(db: Session, token: str) -> User | None:
    """The owner of a valid, unexpired token, else ``None``."""
    if not token or len(token) > 200:
        return None
    wanted = digest(token)
    row = db.scalar(select(ApiToken).where(ApiToken.digest == wanted))
    if row is None or not hmac.compare_digest(row.digest, wanted):
        return None
    now = utcnow()
    if row.expires is not None and row.expires <= now:
        return None
    if row.last_used is None or now - row.last_used > TOUCH_EVERY:
        row.last_used = now
    return row.user


def list_tokens(db: Session, user: User | None = None) -> list[ApiToken]:
    stmt = select(ApiToken).order_by(ApiToken.created.desc(), ApiToken.id.desc())
    if user is not None:
        stmt = stmt.where(ApiToken.user_id == user.id)
    return list(db.scalars(stmt))


def revoke_token(db: Session, token_id: int, *, actor: User) -> ApiToken:
    """Admins may revoke any token; others only their own (readonly users cannot reach this)."""
    row = db.get(ApiToken, token_id)
    if row is None or (row.user_id != actor.id and actor.readonly):
        raise ServiceError("no such token")
    db.delete(row)
    audit.record(db, actor.username, "token.revoke", f"{row.user.username}/{row.name}")
    return row
