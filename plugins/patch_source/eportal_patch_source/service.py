"""What the console, the scheduled job and the CLI do with the patch source, each step in one place.

- :func:`poll` (in :mod:`.polling`): read the index, record patchsets new upstream, block and unblock
  what upstream withdrew or restored, download new ones (never deploying them), remember what failed.
- :func:`deploy_upto`: download what is missing, then ``deploy.enable_upto``.
- :func:`rollback`, :func:`unroll_everywhere`, :func:`import_file`, :func:`get_latest`.

No network transfer ever runs inside a database transaction (see :mod:`.polling`).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete as sql_delete
from sqlalchemy import select

from eportal_core.api import (
    MAIN_FEED,
    STATUS_BLOCKED,
    Feed,
    FeedPatchset,
    PatchLevel,
    Patchset,
    Progress,
    ServiceError,
    Source,
    SourceError,
    audit,
    deploy,
    feed_by_name,
    import_archive,
    make_source,
    new_partial_dir,
    patches_dir,
    patchset_dir,
    remove_tree,
)

from . import access as access_store
from .polling import PollResult, download_and_import, poll, record_index
from .state import set_deleted

__all__ = ["Context", "configured", "poll", "PollResult", "record_index", "download_and_import", "deploy_upto",
           "rollback", "unroll_everywhere", "import_file", "get_latest", "feed_by_name", "get_patchset", "missing_for"]

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


# --- deploy and roll back ------------------------------------------------------------------------

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
        feed, patchset = feed_by_name(db, feed_name), get_patchset(db, name)
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
        feed, patchset = feed_by_name(db, feed_name), get_patchset(db, name)
        enabled = deploy.enable_upto(db, feed, patchset, pm=ctx.pm, actor=ctx.actor)
        return DeployResult(downloaded, [p.name for p in enabled], feed.name, name)


def rollback(ctx: Context, feed_name: str, name: str) -> list[str]:
    """"Roll back this patch, and all after it" on one feed; the names disabled."""
    with ctx.sessions() as db:
        feed, patchset = feed_by_name(db, feed_name), get_patchset(db, name)
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
            feed_by_name(db, feed_name)  # before unpacking a gigabyte
    with ctx.sessions() as db:
        patchset = import_archive(db, path, data_dir=ctx.settings["eportal.data_dir"], pm=ctx.pm, actor=ctx.actor)
        set_deleted(db, patchset.name, False)
        name = patchset.name
    if feed_name is None:
        return name, []
    # its own transaction: the import stands (its files are in place) even when enabling is refused
    with ctx.sessions() as db:
        try:
            enabled = deploy.enable_upto(db, feed_by_name(db, feed_name), get_patchset(db, name), pm=ctx.pm, actor=ctx.actor)
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
        feed = feed_by_name(db, feed_name)
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
