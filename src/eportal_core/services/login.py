"""Logging in: throttling per user and per IP, then the ``eportal_authenticate`` hook."""
from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import delete, func, select

from ..models import LoginFailure, User, utcnow
from ..web.clientip import client_ip
from . import ServiceError, audit
from .users import touch_login

MAX_LOGIN_LENGTH = 128


class LoginRefused(ServiceError):
    """Login failed; the message is safe to show (it never says whether the user exists)."""


def authenticate(request, login: str, password: str) -> User:
    """Return the user for good credentials, else raise LoginRefused with a message for the page."""
    settings = request.registry.settings
    db = request.dbsession
    ip = client_ip(request)
    login = (login or "").strip()
    if not login or not password or len(login) > MAX_LOGIN_LENGTH or len(password) > 1024:
        raise LoginRefused("Enter your user name and password.")
    window = timedelta(minutes=settings["eportal.login.lockout_minutes"])
    since = utcnow() - window
    _check_throttle(db, LoginFailure.username == login, since, settings["eportal.login.max_failures_per_user"], window)
    _check_throttle(db, LoginFailure.ip == ip, since, settings["eportal.login.max_failures_per_ip"], window)
    try:
        user = request.registry.pm.hook.eportal_authenticate(request=request, login=login, password=password)
        reason = ""
    except LoginRefused:
        raise
    except ServiceError as exc:
        # a plugin could not provision the user (sync_external_user refused): the reason goes to the
        # audit trail, the page says no more than for a wrong password (no hint that the name exists)
        user, reason = None, str(exc)
    if not isinstance(user, User):
        db.add(LoginFailure(username=login, ip=ip))
        audit.record(db, login, "login.failed", login, reason, ip=ip)
        raise LoginRefused("Wrong user name or password.")
    db.execute(delete(LoginFailure).where(LoginFailure.username == login))
    touch_login(user)
    return user


def _check_throttle(db, condition, since, limit, window) -> None:
    count, oldest = db.execute(
        select(func.count(), func.min(LoginFailure.at)).where(condition, LoginFailure.at >= since)).one()
    if count >= limit:
        wait = max(1, math.ceil(((oldest + window) - utcnow()).total_seconds() / 60))
        raise LoginRefused(f"Too many failed logins. Try again in {wait} minute{'s' if wait != 1 else ''}.")


def prune_failures(dbsession, settings) -> int:
    cutoff = utcnow() - timedelta(minutes=settings["eportal.login.lockout_minutes"])
    return dbsession.execute(delete(LoginFailure).where(LoginFailure.at < cutoff)).rowcount
