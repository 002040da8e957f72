"""Local users: the rules shared by the console, the REST API and ``kc.eportal``."""
from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import User, WebSession, utcnow
from . import ServiceError, audit
from .passwords import check_policy, hash_password

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
DEFAULT_MIN_LENGTH = 10


def validate_username(username: str) -> str:
    if not USERNAME_RE.match(username or ""):
        raise ServiceError(
            f"invalid user name {username!r}: use 1-128 letters, digits, '_', '.', '@' or '-', starting with a letter or digit",
            field="username")
    return username


def list_users(dbsession: Session) -> list[User]:
    return list(dbsession.scalars(select(User).order_by(User.id)))


def get_user(dbsession: Session, username: str) -> User | None:
    return dbsession.scalar(select(User).where(User.username == username))


def require_user(dbsession: Session, username: str) -> User:
    user = get_user(dbsession, username)
    if user is None:
        raise ServiceError(f"user '{username}' does not exist", field="username")
    return user


def count_users(dbsession: Session) -> int:
    return dbsession.scalar(select(func.count()).select_from(User)) or 0


def add_user(dbsession: Session, username: str, password: str, *, readonly: bool = False,
             min_length: int = DEFAULT_MIN_LENGTH, actor: str = "cli", description: str = "") -> User:
    validate_username(username)
    if get_user(dbsession, username) is not None:
        raise ServiceError(f"user '{username}' already exists", field="username")
    check_policy(username, password, min_length)
    user = User(username=username, password_hash=hash_password(password), readonly=readonly,
                source="local", description=description)
    dbsession.add(user)
    dbsession.flush()
    audit.record(dbsession, actor, "user.add", username, "readonly" if readonly else "admin")
    return user


def change_password(dbsession: Session, username: str, password: str, *,
                    min_length: int = DEFAULT_MIN_LENGTH, actor: str = "cli", keep_session: str | None = None) -> User:
    user = require_user(dbsession, username)
    check_policy(username, password, min_length)
    user.password_hash = hash_password(password)
    user.source = "local"
    # a new password ends every open console session of that user (but the one making the change)
    dbsession.query(WebSession).filter(WebSession.user_id == user.id, WebSession.digest != (keep_session or "")) \
        .delete(synchronize_session=False)
    audit.record(dbsession, actor, "user.password", username)
    return user


def set_readonly(dbsession: Session, username: str, readonly: bool = True, *, actor: str = "cli") -> User:
    user = require_user(dbsession, username)
    if not readonly:
        user.readonly = False
    elif not user.readonly:
        _refuse_last_admin(dbsession, user, "make read-only")
        user.readonly = True
    audit.record(dbsession, actor, "user.role", username, user.role)
    return user


def delete_user(dbsession: Session, username: str, *, actor: str = "cli") -> None:
    user = require_user(dbsession, username)
    if not user.readonly:
        _refuse_last_admin(dbsession, user, "delete")
    dbsession.delete(user)
    audit.record(dbsession, actor, "user.delete", username)


def _refuse_last_admin(dbsession: Session, user: User, verb: str) -> None:
    admins = dbsession.scalar(select(func.count()).select_from(User).where(User.readonly.is_(False))) or 0
    if admins <= 1:
        raise ServiceError(f"cannot {verb} '{user.username}': it is the last admin user (add another admin first)")


def touch_login(user: User) -> None:
    user.last_login = utcnow()


# --- users of an external directory (auth plugins) --------------------------------------------------

SOURCE_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def sync_external_user(dbsession: Session, username: str, *, source: str, readonly: bool, description: str = "",
                       ip: str = "") -> User:
    """The local row of a user an auth plugin has just authenticated against its directory: created on
    the first login, its role brought in line with the directory's on every later one, each change in
    the audit trail (actor ``<source>``). Such users have no password here (``password_hash`` NULL), so
    local auth never accepts them. A local user of the same name is refused, never taken over: an
    entry in a directory must not become an account an admin created here."""
    validate_username(username)
    if not SOURCE_RE.match(source or "") or source == "local":
        raise ServiceError(f"invalid user source {source!r}: a plugin name like 'ldap', not 'local'")
    user = get_user(dbsession, username)
    role = "readonly" if readonly else "admin"
    if user is None:
        user = User(username=username, password_hash=None, readonly=readonly, source=source,
                    description=description[:1000])
        dbsession.add(user)
        dbsession.flush()
        audit.record(dbsession, source, "user.add", username, f"{role}, from {source}", ip=ip)
        return user
    if user.source != source:
        raise ServiceError(f"user '{username}' exists here as a {user.source} user; "
                           f"remove it (or rename it in {source}) before it can log in through {source}")
    if user.readonly != readonly:
        user.readonly = readonly
        audit.record(dbsession, source, "user.role", username, f"{role}, from {source}", ip=ip)
    if description and user.description != description[:1000]:
        user.description = description[:1000]
    return user
