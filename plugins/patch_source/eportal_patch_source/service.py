"""What the console, the scheduled job and the CLI do with the patch source, each step in one place.

- :func:`poll`: read the index, record patchsets new upstream (``downloaded`` NULL), block and
  unblock what upstream withdrew or restored (``services.deploy`` does that), download new ones
  (never deploying them), and remember what failed.
- :func:`deploy_upto`: download what is missing, then ``deploy.enable_upto``.
- :func:`rollback`, :func:`unroll_everywhere`, :func:`import_file`, :func:`get_latest`.

No network transfer ever runs inside a database transaction: on SQLite a write transaction holds the
site's write lock (check-ins wait on it). Each import is its own transaction, so one refused archive
never undoes the others.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete as sql_delete
from sqlalchemy import select

from eportal_core.models import MAIN_FEED, STATUS_AVAILABLE, STATUS_BLOCKED, Feed, FeedPatchset, PatchLevel, Patchset
from eportal_core.services import ServiceError, audit, deploy
from eportal_core.services.archives import new_partial_dir, remove_tree
from eportal_core.services.patchstore import import_archive, patches_dir, patchset_dir

from . import access as access_store
from .sources import ArchiveRefused, Index, IndexEntry, Progress, Source, SourceError, make_source
from .state import FAILED, REFUSED, PollState, load_deleted, load_state, now_text, poll_lock, save_state, set_deleted

log = logging.getLogger(__name__)

#: ``sessions()`` -> a context manager yielding a Session, committed when the block ends
Sessions = Callable[[], AbstractContextManager]


@dataclass
class Context:
    """What every operation needs; the console, the job and the CLI each build one."""

    sessions: Sessions
    settings: dict
    pm: object
    actor: str = "system"
    progress: Progress | None = None
    #: ``step(text)``: what is happening now, for the console's task banner
    step: Callable[[str], None] | None = None

    def say(self, text: str) -> None:
        if self.step is not None:
            self.step(text)


def _source(ctx: Context) -> Source:
    with ctx.sessions() as db:
        info = access_store.load(db)
    if info is None:
        raise SourceError("no patch source is configured: set one on the Patch Source page or with "
                          "kc.eportal patch-source --url URL --user LOGIN --password PASSWORD")
    return make_source(ctx.pm, ctx.settings, info)


def configured(ctx: Context) -> bool:
    with ctx.sessions() as db:
        return access_store.load(db) is not None


# --- poll ---------------------------------------------------------------------------------------

@dataclass
class PollResult:
    configured: bool = True
    error: str | None = None
    new: list[str] = field(default_factory=list)
    downloaded: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    unblocked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: name -> error, for the patchsets that failed this time
    failures: dict[str, str] = field(default_factory=dict)
    listed: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failures

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
    announces another checksum, or with ``retry_refused`` (the console's and the CLI's "check now")."""
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
                try:
                    if download_and_import(ctx, source, entry):
                        result.downloaded.append(entry.name)
                    state.failures.pop(entry.name, None)
                except SourceError as exc:
                    kind = REFUSED if isinstance(exc, ArchiveRefused) else FAILED
                    result.failures[entry.name] = str(exc)
                    state.failures[entry.name] = {"error": str(exc)[:1000], "kind": kind, "sha256": entry.sha256,
                                                  "at": now_text()}
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
    (by another process). Raises SourceError (ArchiveRefused for a bad archive: nothing is kept)."""
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


# --- deploy and roll back ------------------------------------------------------------------------

def get_feed(db, name: str) -> Feed:
    feed = db.scalar(select(Feed).where(Feed.name == name))
    if feed is None:
        raise ServiceError(f"there is no feed named {name[:64]!r}")
    return feed


def get_patchset(db, name: str) -> Patchset:
    patchset = db.scalar(select(Patchset).where(Patchset.name == name))
    if patchset is None:
        raise ServiceError(f"there is no patchset named {name[:64]!r}")
    return patchset


@dataclass
class DeployResult:
    downloaded: list[str]
    enabled: list[str]
    feed: str
    patchset: str

    def summary(self) -> str:
        text = f"downloaded {', '.join(self.downloaded)}; " if self.downloaded else ""
        if self.enabled:
            return text + f"enabled on {self.feed}: {', '.join(self.enabled)}"
        return text + f"nothing to enable: {self.patchset} and every patchset before it are enabled on {self.feed}"


def missing_for(db, feed: Feed, patchset: Patchset) -> list[Patchset]:
    """The patchsets deploying ``patchset`` to ``feed`` would enable that are not downloaded yet."""
    enable, _ = deploy.preview(db, feed, patchset.product)[patchset.id]
    return [p for p in enable if p.downloaded is None]


def deploy_upto(ctx: Context, feed_name: str, name: str) -> DeployResult:
    """"Deploy this patch, and all before it": download what is missing, then enable_upto. Nothing is
    enabled when a download fails."""
    with ctx.sessions() as db:
        feed, patchset = get_feed(db, feed_name), get_patchset(db, name)
        if patchset.status == STATUS_BLOCKED:
            raise ServiceError(f"patchset {name} is blocked upstream and cannot be enabled")
        missing = [p.name for p in missing_for(db, feed, patchset)]
    downloaded = []
    if missing:
        source = _source(ctx)
        ctx.say("reading the index")
        listed = source.index().by_name()
        for missing_name in missing:
            entry = listed.get(missing_name)
            if entry is None:
                raise SourceError(f"{missing_name} is not offered by the source any more: nothing was deployed")
            if entry.status == STATUS_BLOCKED:
                raise SourceError(f"{missing_name} is blocked upstream: nothing was deployed")
            if download_and_import(ctx, source, entry):
                downloaded.append(missing_name)
    with ctx.sessions() as db:
        feed, patchset = get_feed(db, feed_name), get_patchset(db, name)
        enabled = deploy.enable_upto(db, feed, patchset, pm=ctx.pm, actor=ctx.actor)
        return DeployResult(downloaded, [p.name for p in enabled], feed.name, name)


def rollback(ctx: Context, feed_name: str, name: str) -> list[str]:
    """"Roll back this patch, and all after it" on one feed; the names disabled."""
    with ctx.sessions() as db:
        feed, patchset = get_feed(db, feed_name), get_patchset(db, name)
        return [p.name for p in deploy.rollback_from(db, feed, patchset, pm=ctx.pm, actor=ctx.actor)]


def unroll_everywhere(ctx: Context, name: str, *, remove: bool = False) -> dict[str, list[str]]:
    """Roll ``name`` (and all after it) back on every feed; with ``remove`` also delete its rows and
    files (and keep polls from fetching it again). Returns {feed: names disabled} for feeds that changed."""
    changed: dict[str, list[str]] = {}
    with ctx.sessions() as db:
        patchset = get_patchset(db, name)
        for feed in db.scalars(select(Feed).order_by(Feed.name)):
            disabled = deploy.rollback_from(db, feed, patchset, pm=ctx.pm, actor=ctx.actor)
            if disabled:
                changed[feed.name] = [p.name for p in disabled]
        if remove:
            db.execute(sql_delete(FeedPatchset).where(FeedPatchset.patchset_id == patchset.id))
            db.execute(sql_delete(PatchLevel).where(PatchLevel.patchset_id == patchset.id))
            db.execute(sql_delete(Patchset).where(Patchset.id == patchset.id))
            set_deleted(db, name, True)
            audit.record(db, ctx.actor, "patchset.delete", name, "rows and files removed")
    if remove:
        _remove_files(ctx.settings, name)
    return changed


def _remove_files(settings: dict, name: str) -> None:
    folder = patchset_dir(settings["eportal.data_dir"], name)
    if not folder.exists():
        return
    aside = new_partial_dir(patches_dir(settings["eportal.data_dir"]), "delete")
    os.rename(folder, aside / name)  # agents see the whole patchset or nothing
    remove_tree(aside)


def import_file(ctx: Context, path, feed_name: str | None = MAIN_FEED) -> tuple[str, list[str]]:
    """``kcare deploy``: import an archive file (air-gapped sites) and, unless ``feed_name`` is None,
    enable it (and everything before it) on that feed."""
    path = Path(path)
    if not path.is_file():
        raise ServiceError(f"{path} is not a file")
    if feed_name is not None:
        with ctx.sessions() as db:
            get_feed(db, feed_name)  # before unpacking a gigabyte
    with ctx.sessions() as db:
        patchset = import_archive(db, path, data_dir=ctx.settings["eportal.data_dir"], pm=ctx.pm, actor=ctx.actor)
        set_deleted(db, patchset.name, False)
        name = patchset.name
    if feed_name is None:
        return name, []
    # its own transaction: the import stands (its files are in place) even when enabling is refused
    with ctx.sessions() as db:
        try:
            enabled = deploy.enable_upto(db, get_feed(db, feed_name), get_patchset(db, name), pm=ctx.pm, actor=ctx.actor)
        except ServiceError as exc:
            raise ServiceError(f"imported {name}, but did not enable it on {feed_name}: {exc}") from None
        return name, [p.name for p in enabled]


@dataclass
class LatestResult:
    poll: PollResult
    #: product -> (newest patchset, names enabled now)
    deployed: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    #: product -> (the first patchset not downloaded, the downloaded ones after it that wait for it)
    held: dict[str, tuple[str, list[str]]] = field(default_factory=dict)


def get_latest(ctx: Context, feed_name: str = MAIN_FEED) -> LatestResult:
    """``kc.eportal --get-latest``: download what is new, then deploy the newest downloaded patchset
    of each product to ``feed_name``, but never past one that could not be downloaded (deploy.py:
    nothing is enabled out of order); what waits for it is reported in ``held``."""
    if not configured(ctx):
        _source(ctx)  # raises the "not configured" error
    result = LatestResult(poll(ctx, download=True, trigger="cli", retry_refused=True))
    if result.poll.error:
        raise SourceError(result.poll.error)
    with ctx.sessions() as db:
        feed = get_feed(db, feed_name)
        ready = [p for p in deploy.ordered_patchsets(db) if p.downloaded is not None and p.status != STATUS_BLOCKED]
        gaps = deploy.gaps_by_product(db)
        newest = deploy.newest_before_gap(ready, gaps)
        for product, gap in gaps.items():
            waiting = [p.name for p in ready if p.product == product and (p.released, p.name) > (gap.released, gap.name)]
            if waiting:
                result.held[product] = (gap.name, waiting)
        for product, p in newest.items():
            enabled = deploy.enable_upto(db, feed, p, pm=ctx.pm, actor=ctx.actor)
            result.deployed[product] = (p.name, [q.name for q in enabled])
    return result
