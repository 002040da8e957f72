"""Server-side console sessions stored in the database (shared by every app node).

The cookie carries a random id; the database keeps only its SHA-256. Sessions expire after
``eportal.session.idle_minutes`` without use and ``eportal.session.max_hours`` after login,
and get a new id at login. They are saved by a tween that runs inside the request's
transaction, so a session and the change it records commit together.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from datetime import timedelta

from pyramid.interfaces import ISession
from zope.interface import implementer

from .models import WebSession, utcnow

#: last_seen is written at most this often, so reading pages does not write on every request
TOUCH_EVERY = timedelta(seconds=60)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _mutator(name):
    def method(self, *args, **kw):
        self._dirty = True
        return getattr(dict, name)(self, *args, **kw)
    method.__name__ = name
    return method


@implementer(ISession)
class DbSession(dict):
    def __init__(self, request, record: WebSession | None, data: dict, *, expired: bool = False):
        super().__init__(data)
        self.request = request
        self.record = record
        self.token: str | None = None  # set when a new cookie must be sent
        self.expired = expired
        self.new = record is None
        self.created = (record.created if record else utcnow()).timestamp()
        self._dirty = False
        self._invalidated = False

    __setitem__ = _mutator("__setitem__")
    __delitem__ = _mutator("__delitem__")
    clear = _mutator("clear")
    pop = _mutator("pop")
    popitem = _mutator("popitem")
    setdefault = _mutator("setdefault")
    update = _mutator("update")

    def changed(self):
        self._dirty = True

    def invalidate(self):
        dict.clear(self)
        self._invalidated = True
        self._dirty = True

    def rotate(self):
        """A new id for the same data (at login), so an id seen before login is worthless after."""
        self._invalidated = True
        self._dirty = True

    # flash messages
    def flash(self, msg, queue="", allow_duplicate=True):
        messages = self.setdefault("_f_" + queue, [])
        if allow_duplicate or msg not in messages:
            messages.append(msg)
            self._dirty = True

    def pop_flash(self, queue=""):
        # popping an empty queue must not make the session dirty (a write per page view)
        return self.pop("_f_" + queue) if "_f_" + queue in self else []

    def peek_flash(self, queue=""):
        return list(self.get("_f_" + queue, []))

    # CSRF
    def new_csrf_token(self):
        token = secrets.token_urlsafe(32)
        self["_csrft_"] = token
        return token

    def get_csrf_token(self):
        return self.get("_csrft_") or self.new_csrf_token()


def cookie_name(request) -> str:
    return request.registry.settings["eportal.session.cookie_name"]


def session_factory(request) -> DbSession:
    """Load the session named by the cookie, or start an empty one (nothing is stored until it changes)."""
    token = request.cookies.get(cookie_name(request))
    if not token or len(token) > 128:
        return DbSession(request, None, {})
    record = request.dbsession.get(WebSession, _digest(token))
    if record is None:
        return DbSession(request, None, {}, expired=True)
    settings = request.registry.settings
    now = utcnow()
    idle = timedelta(minutes=settings["eportal.session.idle_minutes"])
    lifetime = timedelta(hours=settings["eportal.session.max_hours"])
    if now - record.last_seen > idle or now - record.created > lifetime:
        request.dbsession.delete(record)
        return DbSession(request, None, {}, expired=True)
    try:
        data = json.loads(record.data)
    except ValueError:
        data = {}
    session = DbSession(request, record, data)
    if now - record.last_seen > TOUCH_EVERY:
        record.last_seen = now
    return session


def log_in(request, user_id: int) -> None:
    session = request.session
    session.rotate()
    session["user_id"] = user_id
    session["login_at"] = utcnow().isoformat()
    session.new_csrf_token()


def save_session(request, response) -> None:
    """Write the session if it changed, and send a new cookie when its id changed."""
    session = request.__dict__.get("session")
    if not isinstance(session, DbSession) or not session._dirty:
        return
    db = request.dbsession
    if session._invalidated and session.record is not None:
        db.delete(session.record)
        session.record = None
    if session._invalidated and not session:
        response.delete_cookie(cookie_name(request), path="/")
        return
    now = utcnow()
    if session.record is None:
        token = secrets.token_urlsafe(32)
        session.record = WebSession(digest=_digest(token), created=now, last_seen=now)
        db.add(session.record)
        _set_cookie(request, response, token)
    session.record.user_id = session.get("user_id")
    session.record.data = json.dumps(dict(session), separators=(",", ":"))
    session.record.last_seen = now


def _set_cookie(request, response, token: str) -> None:
    mode = request.registry.settings["eportal.secure_cookies"]
    secure = request.scheme == "https" if mode == "auto" else mode == "true"
    response.set_cookie(cookie_name(request), token, path="/", httponly=True, secure=secure, samesite="Lax")


def session_tween_factory(handler, registry):
    def session_tween(request):
        response = handler(request)
        save_session(request, response)
        return response
    return session_tween


def prune_sessions(dbsession, settings) -> int:
    """Delete sessions past their idle timeout; returns how many went."""
    cutoff = utcnow() - timedelta(minutes=settings["eportal.session.idle_minutes"])
    return dbsession.query(WebSession).filter(WebSession.last_seen < cutoff).delete(synchronize_session=False)


def includeme(config):
    config.set_session_factory(session_factory)
    # inside pyramid_tm so the session commits with the request's own changes
    config.add_tween("eportal_core.session.session_tween_factory", under="pyramid_tm.tm_tween_factory")
