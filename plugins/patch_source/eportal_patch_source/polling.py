"""The poll (protocol.md §7): read the index, record patchsets new upstream (``downloaded`` NULL),
block and unblock what upstream withdrew or restored (``services.deploy`` does that), download new
ones (never deploying them), and remember what failed (``state``). :func:`download_and_import` is
also the deploy's download step (``service.deploy_upto``).

No network transfer ever runs inside a database transaction: on SQLite a write transaction holds the
site's write lock (check-ins wait on it). Each import is its own transaction, so one refused archive
never undoes the others.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from eportal_core.api import (
    STATUS_AVAILABLE,
    STATUS_BLOCKED,
    ArchiveRefused,
    Index,
    IndexEntry,
    Patchset,
    ServiceError,
    Source,
    SourceError,
    audit,
    deploy,
    diskspace,
    import_archive,
    make_source,
    patches_dir,
)

from . import access as access_store
from .state import FAILED, REFUSED, PollOutcome, PollState, load_deleted, load_state, now_text, poll_lock, save_state

if TYPE_CHECKING:
    from .service import Context

log = logging.getLogger(__name__)

@dataclass
class PollResult(PollOutcome):
    """One poll's result; ``failures`` maps a patchset to this run's error."""

    configured: bool = True

    def summary(self) -> str:
        if not self.configured:
            return "no patch source is configured"
        if self.error:
            return f"the poll failed: {self.error}"
        parts = [f"{self.listed} patchset{'' if self.listed == 1 else 's'} listed"]
        for label, names in (("new", self.new), ("downloaded", self.downloaded), ("blocked", self.blocked),
                             ("unblocked", self.unblocked)):
            if names:
                parts.append(f"{label}: {', '.join(names)}")
        if self.failures:
            parts.append(f"{len(self.failures)} failed: " + "; ".join(f"{n}: {e}" for n, e in self.failures.items()))
        return "; ".join(parts)


def poll(ctx: Context, *, download: bool | None = None, trigger: str = "scheduler",
         retry_refused: bool = False) -> PollResult:
    """One poll of the source. Never raises for what the source does (that is recorded and returned);
    raises SourceError only when another poll holds the lock. ``download`` defaults to
    ``patch_source.auto_download``; archives refused before are fetched again only when the source
    announces another checksum, archives that did not fit only once that much disk is free, or
    either with ``retry_refused`` (the console's and the CLI's "check now")."""
    if download is None:
        download = ctx.settings.get("patch_source.auto_download", True)
    with poll_lock(ctx.settings):
        result = PollResult()
        with ctx.sessions() as db:
            info = access_store.load(db)
            state = load_state(db)
        if info is None:
            result.configured = False
            return result
        state.started, state.trigger, state.error = now_text(), trigger, None
        state.new, state.downloaded, state.blocked, state.unblocked, state.problems = [], [], [], [], []
        try:
            ctx.say("reading the index")
            source = make_source(ctx.pm, ctx.settings, info)
            index = source.index()
        except SourceError as exc:
            result.error = state.error = str(exc)
            log.info("patch source poll failed: %s", exc)
            _finish(ctx, state)
            return result
        except Exception as exc:  # a broken plugin source must not take the job down
            log.exception("patch source poll failed")
            result.error = state.error = f"unexpected {type(exc).__name__}: {exc}"[:500]
            _finish(ctx, state)
            return result
        result.problems = state.problems = index.problems[:100]
        result.listed = state.listed = len(index.entries)
        with ctx.sessions() as db:
            recorded = record_index(db, index, ctx)
        result.new, result.blocked, result.unblocked = recorded
        state.new, state.blocked, state.unblocked = recorded
        listed = index.by_name()
        state.failures = {n: f for n, f in state.failures.items() if n in listed}  # gone upstream: forget
        if download:
            for entry in _to_download(ctx, index):
                previous = state.failures.get(entry.name)
                if (previous and previous.get("kind") == REFUSED and not retry_refused
                        and previous.get("sha256") == entry.sha256):
                    continue  # the same bad archive again: wait until upstream replaces it
                if previous and previous.get("need") and not retry_refused and not _room(ctx, previous["need"]):
                    continue  # no disk for it yet: downloading it again would only fail again
                try:
                    if download_and_import(ctx, source, entry):
                        result.downloaded.append(entry.name)
                    state.failures.pop(entry.name, None)
                except SourceError as exc:
                    kind = REFUSED if isinstance(exc, ArchiveRefused) else FAILED
                    result.failures[entry.name] = str(exc)
                    state.failures[entry.name] = {"error": str(exc)[:1000], "kind": kind, "sha256": entry.sha256,
                                                  "at": now_text()}
                    if exc.space_needed:
                        state.failures[entry.name]["need"] = exc.space_needed
                    log.info("patch source: %s %s: %s", entry.name, kind, exc)
        state.downloaded = result.downloaded
        missing = _not_downloaded(ctx)
        state.failures = {n: f for n, f in state.failures.items() if n in missing}  # succeeded since: forget
        _finish(ctx, state)
        return result


def _finish(ctx: Context, state: PollState) -> None:
    state.finished = now_text()
    with ctx.sessions() as db:
        save_state(db, state)


def record_index(db, index: Index, ctx: Context) -> tuple[list[str], list[str], list[str]]:
    """Record what the index says: new patchsets (not downloaded), blocks and unblocks (through
    services.deploy). Returns (new, blocked, unblocked) names."""
    deleted = load_deleted(db)
    names = [e.name for e in index.entries if e.name not in deleted]
    known = {p.name: p for p in db.scalars(select(Patchset).where(Patchset.name.in_(names)))} if names else {}
    new, blocked, unblocked = [], [], []
    for entry in index.entries:
        if entry.name in deleted:
            continue
        patchset = known.get(entry.name)
        if patchset is None:
            db.add(Patchset(name=entry.name, product=entry.product, released=entry.released, status=entry.status,
                            size=entry.size, sha256=entry.sha256, changelog=entry.changelog, downloaded=None))
            new.append(entry.name)
            continue
        if patchset.downloaded is None:  # upstream may correct what it announced before we download it
            patchset.product, patchset.released = entry.product, entry.released
            patchset.size, patchset.sha256 = entry.size, entry.sha256
            patchset.changelog = entry.changelog or patchset.changelog
        elif not patchset.changelog and entry.changelog:
            patchset.changelog = entry.changelog
        if entry.status == STATUS_BLOCKED and patchset.status != STATUS_BLOCKED:
            deploy.block(db, patchset, pm=ctx.pm, actor=ctx.actor)
            blocked.append(entry.name)
        elif entry.status == STATUS_AVAILABLE and patchset.status == STATUS_BLOCKED:
            deploy.unblock(db, patchset, pm=ctx.pm, actor=ctx.actor)
            unblocked.append(entry.name)
    # announced, never downloaded, and no longer offered: forget it, or it would stay a gap that
    # holds every later patchset back (deploy.py) with no way to fill it
    listed = {e.name for e in index.entries}
    vanished = [p for p in db.scalars(select(Patchset).where(Patchset.downloaded.is_(None))) if p.name not in listed]
    for patchset in vanished:
        db.delete(patchset)
    db.flush()
    if vanished:
        audit.record(db, ctx.actor, "patch_source.withdrawn", vanished[0].name if len(vanished) == 1 else
                     f"{len(vanished)} patchsets", "no longer offered, never downloaded: " + ", ".join(p.name for p in vanished))
    if new:
        audit.record(db, ctx.actor, "patch_source.new", new[0] if len(new) == 1 else f"{len(new)} patchsets",
                     "new upstream: " + ", ".join(new))
    return new, blocked, unblocked


def _room(ctx: Context, need: int) -> bool:
    return diskspace.free_bytes(patches_dir(ctx.settings["eportal.data_dir"])) >= need


def _not_downloaded(ctx: Context) -> set[str]:
    with ctx.sessions() as db:
        return set(db.scalars(select(Patchset.name).where(Patchset.downloaded.is_(None))))


def _to_download(ctx: Context, index: Index) -> list[IndexEntry]:
    """Index entries not downloaded here yet, available upstream, oldest first."""
    missing = _not_downloaded(ctx)
    todo = [e for e in index.entries if e.name in missing and e.status == STATUS_AVAILABLE]
    return sorted(todo, key=lambda e: (e.released, e.name))


def download_and_import(ctx: Context, source: Source, entry: IndexEntry) -> bool:
    """Fetch one archive and import it in its own transaction. False when it was imported meanwhile
    (by another process). Raises SourceError (ArchiveRefused for a bad archive: nothing is kept; with
    ``space_needed`` when the disk is too full: the archive is fine, it is tried again later)."""
    if _downloaded(ctx, entry.name):
        return False
    ctx.say(f"downloading {entry.name}")
    fetched = source.fetch(entry, ctx.progress)
    try:
        ctx.say(f"importing {entry.name}")
        # a fresh session: import_archive reads before its transaction, so the unpacking never
        # holds the write lock (see patchstore._peek_downloaded)
        with ctx.sessions() as db:
            import_archive(db, fetched.path, data_dir=ctx.settings["eportal.data_dir"], pm=ctx.pm, actor=ctx.actor)
    except diskspace.NotEnoughSpace as exc:
        # a later try needs room for the download again too (it is removed below)
        again = exc.need + (fetched.path.stat().st_size if fetched.temporary else 0)
        raise SourceError(f"{entry.name} was not imported: {exc}", space_needed=again) from None
    except ServiceError as exc:
        if _downloaded(ctx, entry.name):
            return False  # a concurrent import won the race
        raise ArchiveRefused(f"{entry.name} was refused: {exc}") from None
    finally:
        if fetched.temporary:
            fetched.path.unlink(missing_ok=True)
    return True


def _downloaded(ctx: Context, name: str) -> bool:
    with ctx.sessions() as db:
        return db.scalar(select(Patchset.downloaded).where(Patchset.name == name)) is not None
