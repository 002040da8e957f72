"""The patch store: patchset archives imported into ``<data_dir>/patches/<NAME>/`` and recorded in
the database in one step, and the lookups the agent endpoints make (protocol.md §2, §7).

On disk a patchset is ``patches/<NAME>/`` exactly as its archive holds it (``manifest.json``,
``changelog``, ``patches/<kernel_id>/<level>/<file>``). A file is only ever found from validated
ids and the patchset name stored in the database, never from URL text.
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, and_, bindparam, delete, event, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models import STATUS_BLOCKED, FeedPatchset, PatchLevel, Patchset, utcnow
from . import ServiceError, audit
from .agents import KERNEL_ID_RE
from .archives import PARTIAL_PREFIX, clean_partial_imports, new_partial_dir, remove_tree, unpack
from .events import notify
from .levels import latest_level_subquery
from .manifests import FILE_NAME_RE, name_from_filename, valid_patchset_name

__all__ = ["import_archive", "clean_partial_imports", "patches_dir", "patchset_dir", "latest_level",
           "has_patches", "find_patch_file", "PatchFile", "valid_patchset_name", "PARTIAL_PREFIX"]


def patches_dir(data_dir) -> Path:
    return Path(data_dir) / "patches"


def patchset_dir(data_dir, name: str) -> Path:
    """Where the patchset ``name`` lives; the name must be a valid patchset name (never URL text)."""
    if not valid_patchset_name(name):
        raise ValueError(f"not a patchset name: {name[:80]!r}")
    return patches_dir(data_dir) / name


# --- import -----------------------------------------------------------------------------------

def import_archive(db: Session, path, *, data_dir, pm=None, actor: str = "system") -> Patchset:
    """Import the archive at ``path``: verify and unpack it into ``<data_dir>/patches/<NAME>/`` and
    record its Patchset and PatchLevel rows in ``db``'s transaction.

    A name already imported is refused; a name known upstream but not downloaded is filled in.
    Raises ServiceError with a one-line reason; then nothing is left on disk and nothing was added.
    If the transaction does not commit after all, the folder is removed again.
    """
    store = patches_dir(data_dir)
    named = name_from_filename(Path(path).name)
    if named is not None:  # refuse a re-import before unpacking a gigabyte
        _refuse_if_imported(named, _peek_downloaded(db, named))
    unpacked = unpack(path, store)
    try:
        patchset = _record(db, unpacked)
        final = store / unpacked.name
        _move_into_place(unpacked.temp_dir, final, store)
    except BaseException:
        remove_tree(unpacked.temp_dir)
        raise
    _remove_unless_committed(db, final, store)
    audit.record(db, actor, "patchset.import", patchset.name,
                 f"size={patchset.size} sha256={patchset.sha256} kernels={len(unpacked.kernels)}")
    if pm is not None:
        notify(pm, "patchset_downloaded", patchset=patchset)
    return patchset


def _peek_downloaded(db: Session, name: str):
    """When the patchset was downloaded (None: unknown or not downloaded). Read outside the session's
    transaction when it has none yet: on SQLite starting it takes the write lock (BEGIN IMMEDIATE),
    which would then be held for the whole unpacking and hold up every check-in flush."""
    query = select(Patchset.downloaded).where(Patchset.name == name)
    bind = db.get_bind()
    if db.in_transaction() or not isinstance(bind, Engine):
        return db.scalar(query)
    with bind.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        return conn.scalar(query)


def _refuse_if_imported(name: str, downloaded) -> None:
    if downloaded is not None:
        raise ServiceError(f"patchset {name} is already imported (downloaded {downloaded:%Y-%m-%d %H:%M} UTC)")


def _record(db: Session, unpacked) -> Patchset:
    # a concurrent import of the same name waits here (FOR UPDATE on PostgreSQL, the write lock on
    # SQLite) or, for a name new to the database, at the unique index on INSERT; then it is refused
    existing = db.scalar(select(Patchset).where(Patchset.name == unpacked.name).with_for_update())
    if existing is not None:
        _refuse_if_imported(existing.name, existing.downloaded)
    if existing is not None and existing.sha256 and existing.sha256 != unpacked.sha256:
        raise ServiceError(f"archive {unpacked.name} has sha256 {unpacked.sha256}, but upstream announced "
                           f"{existing.sha256}")
    patchset = existing or Patchset(name=unpacked.name)
    patchset.product = unpacked.product
    patchset.released = unpacked.released
    patchset.changelog = unpacked.changelog
    patchset.size = unpacked.size
    patchset.sha256 = unpacked.sha256
    patchset.downloaded = utcnow()
    if existing is None:
        db.add(patchset)
    try:
        db.flush()
        db.execute(delete(PatchLevel).where(PatchLevel.patchset_id == patchset.id))
        db.add_all(PatchLevel(patchset_id=patchset.id, kernel_id=k, level=lvl) for k, lvl in unpacked.kernels.items())
        db.flush()
    except IntegrityError:
        raise ServiceError(f"patchset {unpacked.name} is already imported (by a concurrent import)") from None
    return patchset


def _move_into_place(temp: Path, final: Path, store: Path) -> None:
    if final.exists() or final.is_symlink():
        # left by an import whose transaction never committed (this one now holds the name's row)
        aside = new_partial_dir(store, "orphan")
        os.rename(final, aside / final.name)
        remove_tree(aside)
    os.rename(temp, final)  # atomic: agents see the whole patchset or none of it


_PLACED = "eportal.patchstore.placed"


def _remove_unless_committed(db: Session, folder: Path, store: Path) -> None:
    """Keep disk and database in step: a folder placed in a transaction that rolls back goes again."""
    placed = db.info.get(_PLACED)
    if placed is None:
        placed = db.info[_PLACED] = []
        event.listen(db, "after_commit", _forget_placed)
        event.listen(db, "after_transaction_end", _discard_placed)
    placed.append((folder, store))


def _forget_placed(session: Session) -> None:
    if not session.in_nested_transaction():  # a savepoint released is not a commit
        session.info.get(_PLACED, []).clear()


def _discard_placed(session: Session, transaction) -> None:
    if transaction.parent is not None:
        return
    placed = session.info.get(_PLACED) or []
    while placed:
        folder, store = placed.pop()
        try:
            aside = new_partial_dir(store, "rollback")
            os.rename(folder, aside / folder.name)
        except OSError:
            continue  # already gone; clean_partial_imports takes what a failure here leaves
        remove_tree(aside)


# --- lookups for the agent endpoints (one indexed query each, no ORM objects) ------------------

_LATEST = select(latest_level_subquery(bindparam("feed_id"), bindparam("kernel_id")))

_HAS_PATCHES = (select(PatchLevel.patchset_id)
                .join(Patchset, Patchset.id == PatchLevel.patchset_id)
                .where(PatchLevel.kernel_id == bindparam("kernel_id"), Patchset.downloaded.is_not(None))
                .limit(1))

#: the patchset that provides (kernel, level) among those enabled on the feed; levels are cumulative,
#: so a level's files live in the patchset that carries it (the newest one if several do)
_PROVIDER = (select(Patchset.name, Patchset.sha256)
             .join(PatchLevel, PatchLevel.patchset_id == Patchset.id)
             .join(FeedPatchset, and_(FeedPatchset.patchset_id == Patchset.id, FeedPatchset.enabled == true()))
             .where(PatchLevel.kernel_id == bindparam("kernel_id"), PatchLevel.level == bindparam("level"),
                    FeedPatchset.feed_id == bindparam("feed_id"), Patchset.status != STATUS_BLOCKED,
                    Patchset.downloaded.is_not(None))
             .order_by(Patchset.released.desc(), Patchset.name.desc())
             .limit(1))


def latest_level(conn, feed_id: int, kernel_id: str) -> int | None:
    """The highest level enabled on the feed for the kernel (services.levels decides), None if none."""
    return conn.execute(_LATEST, {"feed_id": feed_id, "kernel_id": kernel_id}).scalar()


def has_patches(conn, kernel_id: str) -> bool:
    """Whether any downloaded patchset carries the kernel (on any feed)."""
    return conn.execute(_HAS_PATCHES, {"kernel_id": kernel_id}).first() is not None


@dataclass(frozen=True)
class PatchFile:
    path: Path
    patchset: str
    #: a strong validator: patchset contents never change once imported
    etag: str


def find_patch_file(conn, data_dir, feed_id: int, kernel_id: str, level: int, filename: str) -> PatchFile | None:
    """The file ``filename`` of ``level`` for ``kernel_id`` if that level is enabled on the feed, else None.

    Every id is validated here again, and the path is built from the patchset name in the database."""
    if not (isinstance(kernel_id, str) and KERNEL_ID_RE.match(kernel_id)):
        return None
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level < 10**9:
        return None
    if not (isinstance(filename, str) and FILE_NAME_RE.match(filename)):
        return None
    row = conn.execute(_PROVIDER, {"feed_id": feed_id, "kernel_id": kernel_id, "level": level}).first()
    if row is None or not valid_patchset_name(row.name):
        return None
    path = patchset_dir(data_dir, row.name) / "patches" / kernel_id / str(level) / filename
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    tag = f"{row.name}:{row.sha256}:{kernel_id}/{level}/{filename}:{st.st_size}:{st.st_mtime_ns}"
    return PatchFile(path, row.name, hashlib.sha256(tag.encode()).hexdigest()[:32])
