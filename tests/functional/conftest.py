"""Fixtures shared by the functional tests (on top of the ``eportal_core.testing`` harness).

- ``other_client``: another WebTest client (own cookie jar, own REMOTE_ADDR) on the same app and
  the same rolled-back test transaction, for "bob logs in somewhere else" scenarios.
- ``make_testapp``: the harness's ``make_app_client`` (a freshly assembled app with extra plugins or
  other settings, joined to the test transaction), for throwaway routes (a view that raises, a plugin route).
- ``as_admin`` / ``as_readonly``: create a user and log ``testapp`` in as it.
- ``snapshot``: every table's rows (but the console sessions), to prove a refused request changed nothing.
- ``session_record``: the ``WebSession`` row behind a client's cookie.
"""
from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from eportal_core.models import Base, WebSession
from eportal_core.testing import DEFAULT_ENVIRON, login

COOKIE = "eportal_session"


@pytest.fixture
def other_client(testapp, app):
    """``other_client(remote_addr=...)`` -> a new WebTest client of the same app (its own cookies)."""
    import webtest

    def factory(remote_addr: str = "192.0.2.10", **extra_environ):
        # the ``testapp`` fixture has already joined the app's requests to the test transaction
        return webtest.TestApp(app, extra_environ={**DEFAULT_ENVIRON, "REMOTE_ADDR": remote_addr, **extra_environ})
    return factory


@pytest.fixture
def make_testapp(make_app_client):
    """The harness's ``make_app_client`` under the name these tests have always used."""
    return make_app_client


@pytest.fixture
def as_admin(testapp, make_user):
    """Log ``testapp`` in as the admin ``alice``; returns (User, password)."""
    user, password = make_user("alice", "Alice-Secret-1")
    login(testapp, "alice", password)
    return user, password


@pytest.fixture
def as_readonly(testapp, make_user):
    """Log ``testapp`` in as the read-only ``rita`` (an admin ``root`` exists too); returns (User, password)."""
    make_user("root", "Root-Secret-1")
    user, password = make_user("rita", "Rita-Secret-1", readonly=True)
    login(testapp, "rita", password)
    return user, password


@pytest.fixture
def snapshot(dbsession):
    """``snapshot()`` -> {table: sorted rows} of every table but ``web_sessions``."""
    def take() -> dict:
        dbsession.expire_all()
        state = {}
        for table in Base.metadata.sorted_tables:
            if table.name == WebSession.__tablename__:
                continue  # reading a page may touch last_seen or the CSRF token: not a change of data
            rows = dbsession.execute(sa.select(table)).all()
            state[table.name] = sorted(tuple(map(repr, row)) for row in rows)
        return state
    return take


def cookie_digest(client) -> str:
    return hashlib.sha256(client.cookies[COOKIE].encode("ascii")).hexdigest()


@pytest.fixture
def session_record(dbsession):
    """``session_record(client)`` -> the WebSession row for that client's cookie (fresh from the database), or None."""
    def get(client):
        dbsession.expire_all()
        return dbsession.get(WebSession, cookie_digest(client))
    return get
