"""Factories for test data, built through the core services (the rules a test relies on are the
real ones: key names, server limits, tags, the importer's checks).

Plain functions take a session and keyword overrides, flush, and return the row; the defaults look
like production data (16-character generated keys, full host names, real kernel ids). The harness's
fixtures (``factory``, ``make_user``, ``make_feed``, ``make_key``, ``make_server``,
``make_patchset``) are :class:`Factories` bound to the test's ``dbsession``: each call committed into
the test's rolled-back transaction, so the app's requests see the rows.
"""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path

from ..models import Feed, Key, Patchset, Server, User, utcnow
from ..services import agents, deploy, feeds, keys, users
from ..services.patchstore import import_archive
from .patches import KERNEL_IDS, make_archive

#: numbers the defaults (host names, addresses, feed and patchset names) so two calls never clash
_serial = itertools.count(1)

#: what an agent may report (services.agents.parse_info), so what make_server takes as ``info``
REPORTED_FIELDS = set(agents.TEXT_FIELDS) | {"kernel_id", "patch_level", "uptime", "patch_type", "tags"}

#: the start of the default patchsets' release dates (one day apart, in creation order)
FIRST_RELEASE = datetime(2024, 1, 1, 10, 0)


def make_user(db, username: str | None = None, password: str | None = None, *,
              readonly: bool = False) -> tuple[User, str]:
    """``services.users.add_user``; the password defaults to ``<username>-Secret-123``. -> (User, password)."""
    username = username or f"operator{next(_serial)}"
    password = password or f"{username}-Secret-123"
    return users.add_user(db, username, password, readonly=readonly, min_length=10, actor="test"), password


def make_feed(db, name: str | None = None, *, auto: bool = False, deploy_after=0, channel: str = "") -> Feed:
    """``services.feeds.create_feed``; the name defaults to ``canary-<n>``."""
    return feeds.create_feed(db, name or f"canary-{next(_serial)}", auto=auto, deploy_after=deploy_after,
                             channel=channel, actor="test")


def make_key(db, name: str | None = None, *, feed: str | Feed | None = None, server_limit=0, note: str = "",
             enabled: bool = True) -> Key:
    """``services.keys.create_key``: a generated 16-character key unless ``name``; on ``main`` unless ``feed``."""
    key = keys.create_key(db, name, note=note, server_limit=server_limit,
                          feed=feed.name if isinstance(feed, Feed) else feed, actor="test")
    if not enabled:
        key.enabled = False
        db.flush()
    return key


def make_server(db, key: str | Key | None = None, *, hostname: str | None = None, ip: str | None = None,
                registered_ago: timedelta = timedelta(0), checkin_ago: timedelta | None = timedelta(0),
                updated_ago: timedelta | None = None, pm=None, request=None, **info) -> Server:
    """Register like an agent (``services.agents.register``) under ``key`` (a Key, or a name created
    when missing; a fresh key when None). ``info``: §4 fields (``kernel_id``, ``patch_level``,
    ``euname``, ``tags``, ...), validated like an agent's. ``*_ago`` move the timestamps into the past;
    ``checkin_ago=None``: never checked in. ``pm``: fire ``eportal_server_registered`` on it."""
    n = next(_serial)
    if isinstance(key, Key):
        key_name = key.key
    elif key is None or keys.get_key(db, key) is None:
        key_name = make_key(db, key).key
    else:
        key_name = key
    unknown = set(info) - REPORTED_FIELDS
    if unknown:  # parse_info ignores unknown names, as it must for agents; a test's typo must not pass
        raise TypeError(f"make_server() got fields no agent reports: {', '.join(sorted(unknown))}")
    parsed = agents.parse_info({k: None if v is None else str(v) for k, v in info.items()}) if info else None
    result = agents.register(db, key_name, hostname=hostname if hostname is not None else f"web-{n:03d}.prod.example.com",
                             ip=ip if ip is not None else f"10.20.{n // 250 % 250}.{n % 250 + 1}", info=parsed,
                             pm=pm, request=request, actor="test")
    assert result.code == agents.REGISTERED, f"registration under {key_name!r} answered {result.code}"
    server, now = result.server, utcnow()
    server.registered = now - registered_ago
    server.checkin = None if checkin_ago is None else now - checkin_ago
    server.updated = None if updated_ago is None else now - updated_ago
    db.flush()
    return server


def make_patchset(db, name: str | None = None, *, data_dir, kernels: dict[str, int] | None = None,
                  released: datetime | str | None = None, archive_dir=None, enable_on: str | Feed | None = None,
                  pm=None, **archive_options) -> Patchset:
    """An archive from ``testing.patches.make_archive`` imported by ``patchstore.import_archive`` into
    ``data_dir``; by default named ``K<released>_01``, released a day after the previous default one,
    one level for the first test kernel. ``enable_on``: then enabled on that feed (``deploy.enable_upto``).
    ``pm``: fire ``eportal_patchset_downloaded`` (and ``_enabled``) on it."""
    n = next(_serial)
    if released is None:
        released = FIRST_RELEASE + timedelta(days=n)
    if name is None:
        stamp = released if isinstance(released, datetime) else datetime.fromisoformat(released)
        name = f"K{stamp:%Y%m%d}_01"
    data_dir = Path(data_dir)
    archive = make_archive(Path(archive_dir) if archive_dir is not None else data_dir.parent / "archives", name,
                           released, kernels if kernels is not None else {KERNEL_IDS[0]: n}, **archive_options)
    patchset = import_archive(db, archive, data_dir=data_dir, pm=pm, actor="test")
    if enable_on is not None:
        feed = enable_on if isinstance(enable_on, Feed) else feeds.require_feed(db, enable_on)
        deploy.enable_upto(db, feed, patchset, pm=pm, actor="test")
    return patchset


class Factories:
    """The factories bound to one session, each call committed (the ``factory`` fixture: ``factory.key(...)``)."""

    def __init__(self, db, data_dir):
        self.db, self.data_dir = db, Path(data_dir)

    def _committed(self, made):
        self.db.commit()
        return made

    def user(self, username: str | None = None, password: str | None = None, *, readonly: bool = False):
        return self._committed(make_user(self.db, username, password, readonly=readonly))

    def feed(self, name: str | None = None, **overrides) -> Feed:
        return self._committed(make_feed(self.db, name, **overrides))

    def key(self, name: str | None = None, **overrides) -> Key:
        return self._committed(make_key(self.db, name, **overrides))

    def server(self, key: str | Key | None = None, **overrides) -> Server:
        return self._committed(make_server(self.db, key, **overrides))

    def patchset(self, name: str | None = None, **overrides) -> Patchset:
        overrides.setdefault("data_dir", self.data_dir)
        return self._committed(make_patchset(self.db, name, **overrides))
