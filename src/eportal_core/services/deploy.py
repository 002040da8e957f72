"""Which patchsets are enabled on each feed, decided in one place (protocol.md §8).

Patchsets of a product are deployed in one order, ``(released, name)``. Enabling a patchset enables
every non-blocked patchset before it; rolling one back disables it and every one after it; a blocked
patchset is disabled everywhere and can never be enabled. So the enabled patchsets of a feed are
always a prefix of the product's non-blocked patchsets in that order.

One rule for every caller (console, CLI, API, auto feeds): a patchset known here but not downloaded
yet is a *gap*, and nothing after a gap is enabled until the gap is filled. :func:`enable_upto`
refuses to jump one; :func:`newest_before_gap` is what "deploy the newest" (``--get-latest``, auto
feeds) may enable.

Status of a patchset on a feed, as the console and ``GET /admin/api/patchsets/`` show it:
``blocked`` (upstream withdrew it), ``not-downloaded`` (known upstream, no archive here yet),
``enabled``, ``disabled`` (was enabled on this feed and rolled back), ``undeployed`` (downloaded,
never enabled on this feed).
"""
from __future__ import annotations

import logging

from sqlalchemy import and_, or_, select, true
from sqlalchemy.orm import Session

from ..models import STATUS_AVAILABLE, STATUS_BLOCKED, Feed, FeedPatchset, Patchset, utcnow
from . import ServiceError, audit
from .events import notify

log = logging.getLogger(__name__)

ENABLED, DISABLED, NOT_DOWNLOADED, UNDEPLOYED, BLOCKED = "enabled", "disabled", "not-downloaded", "undeployed", "blocked"
STATUSES = (ENABLED, DISABLED, NOT_DOWNLOADED, UNDEPLOYED, BLOCKED)

DEPLOY_ORDER = (Patchset.released, Patchset.name)


def ordered_patchsets(db: Session, product: str | None = None) -> list[Patchset]:
    """Every known patchset (of ``product``, if given), oldest first: the deploy order."""
    query = select(Patchset).order_by(*DEPLOY_ORDER)
    if product is not None:
        query = query.where(Patchset.product == product)
    return list(db.scalars(query))


def _key(p: Patchset) -> tuple:
    return (p.released, p.name)


def first_gap(db: Session, product: str) -> Patchset | None:
    """The oldest patchset of ``product`` that is known here, not blocked and not downloaded yet."""
    return db.scalars(
        select(Patchset)
        .where(Patchset.product == product, Patchset.downloaded.is_(None), Patchset.status != STATUS_BLOCKED)
        .order_by(*DEPLOY_ORDER).limit(1)).first()


def newest_before_gap(candidates: list[Patchset], gaps: dict[str, Patchset | None]) -> dict[str, Patchset]:
    """Per product, the newest of ``candidates`` (downloaded, not blocked) that comes before the
    product's gap (``gaps``: :func:`first_gap` by product), so enabling it skips nothing."""
    newest: dict[str, Patchset] = {}
    for p in sorted(candidates, key=_key):
        gap = gaps.get(p.product)
        if gap is None or _key(p) < _key(gap):
            newest[p.product] = p
    return newest


def gaps_by_product(db: Session) -> dict[str, Patchset]:
    """:func:`first_gap` of every product that has one."""
    products = db.scalars(select(Patchset.product).distinct()).all()
    return {product: gap for product in products if (gap := first_gap(db, product)) is not None}


def _at_or_before(p: Patchset):
    return or_(Patchset.released < p.released, and_(Patchset.released == p.released, Patchset.name <= p.name))


def _at_or_after(p: Patchset):
    return or_(Patchset.released > p.released, and_(Patchset.released == p.released, Patchset.name >= p.name))


def _lock_feed(db: Session, feed: Feed) -> None:
    # deploy changes of one feed happen one after another (SQLite: the write lock already does it)
    db.execute(select(Feed.id).where(Feed.id == feed.id).with_for_update())


def _rows(db: Session, feed: Feed) -> dict[int, FeedPatchset]:
    return {fp.patchset_id: fp for fp in db.scalars(select(FeedPatchset).where(FeedPatchset.feed_id == feed.id))}


def enable_upto(db: Session, feed: Feed, patchset: Patchset, *, pm=None, actor: str = "system") -> list[Patchset]:
    """Enable ``patchset`` on ``feed`` and every downloaded, non-blocked patchset of its product
    before it. Returns the patchsets that were not enabled before (oldest first)."""
    if patchset.status == STATUS_BLOCKED:
        raise ServiceError(f"patchset {patchset.name} is blocked upstream and cannot be enabled")
    if patchset.downloaded is None:
        raise ServiceError(f"patchset {patchset.name} is not downloaded yet: import its archive first")
    gap = first_gap(db, patchset.product)
    if gap is not None and _key(gap) < _key(patchset):
        raise ServiceError(f"patchset {gap.name} comes before {patchset.name} and is not downloaded yet: "
                           f"download it first, or delete it (patchsets are enabled in order, none skipped)")
    _lock_feed(db, feed)
    candidates = db.scalars(
        select(Patchset)
        .where(Patchset.product == patchset.product, Patchset.downloaded.is_not(None),
               Patchset.status != STATUS_BLOCKED, _at_or_before(patchset))
        .order_by(*DEPLOY_ORDER)).all()
    rows = _rows(db, feed)
    now = utcnow()
    changed = []
    for p in candidates:
        row = rows.get(p.id)
        if row is None:
            db.add(FeedPatchset(feed_id=feed.id, patchset_id=p.id, enabled=True, changed=now))
        elif not row.enabled:
            row.enabled, row.changed = True, now
        else:
            continue
        changed.append(p)
    if changed:
        db.flush()
        audit.record(db, actor, "patchset.enable", patchset.name,
                     f"feed={feed.name} enabled={','.join(p.name for p in changed)}")
        for p in changed:
            _notify(pm, "patchset_enabled", p, feed)
    return changed


def rollback_from(db: Session, feed: Feed, patchset: Patchset, *, pm=None, actor: str = "system") -> list[Patchset]:
    """Disable ``patchset`` on ``feed`` and every patchset of its product after it. Returns the
    patchsets that were enabled before (oldest first)."""
    _lock_feed(db, feed)
    rows = _rows(db, feed)
    later = db.scalars(
        select(Patchset)
        .where(Patchset.product == patchset.product, _at_or_after(patchset), Patchset.id.in_(list(rows) or [-1]))
        .order_by(*DEPLOY_ORDER)).all()
    changed = _disable(db, [(rows[p.id], p) for p in later])
    if changed:
        audit.record(db, actor, "patchset.rollback", patchset.name,
                     f"feed={feed.name} disabled={','.join(p.name for p in changed)}")
        for p in changed:
            _notify(pm, "patchset_disabled", p, feed)
    return changed


def block(db: Session, patchset: Patchset, *, pm=None, actor: str = "system") -> list[Feed]:
    """Mark ``patchset`` blocked (upstream withdrew it) and disable it on every feed. Returns those feeds."""
    patchset.status = STATUS_BLOCKED
    rows = db.execute(
        select(FeedPatchset, Feed)
        .join(Feed, Feed.id == FeedPatchset.feed_id)
        .where(FeedPatchset.patchset_id == patchset.id, FeedPatchset.enabled == true())
        .order_by(Feed.name)
        .with_for_update(of=FeedPatchset)).all()
    feeds = [feed for row, feed in rows]
    _disable(db, [(row, patchset) for row, _ in rows])
    db.flush()
    audit.record(db, actor, "patchset.block", patchset.name, f"disabled on {','.join(f.name for f in feeds) or 'no feed'}")
    for feed in feeds:
        _notify(pm, "patchset_disabled", patchset, feed)
    return feeds


def unblock(db: Session, patchset: Patchset, *, pm=None, actor: str = "system") -> list[Feed]:
    """Upstream made ``patchset`` available again. It stays off, except on feeds where a later patchset
    is enabled: there it is enabled again, or those feeds would have a gap in their order. Returns them."""
    if patchset.status == STATUS_AVAILABLE:
        return []
    patchset.status = STATUS_AVAILABLE
    db.flush()
    audit.record(db, actor, "patchset.unblock", patchset.name)
    if patchset.downloaded is None:
        return []
    later_enabled = (select(FeedPatchset.feed_id)
                     .join(Patchset, Patchset.id == FeedPatchset.patchset_id)
                     .where(FeedPatchset.enabled == true(), Patchset.product == patchset.product,
                            Patchset.id != patchset.id, _at_or_after(patchset)))
    feeds = db.scalars(select(Feed).where(Feed.id.in_(later_enabled)).order_by(Feed.name)).all()
    done = []
    for feed in feeds:
        try:
            enable_upto(db, feed, patchset, pm=pm, actor=actor)
        except ServiceError as exc:  # an older patchset is missing: it comes back when that one arrives
            log.warning("unblocked %s stays off on %s: %s", patchset.name, feed.name, exc)
            continue
        done.append(feed)
    return done


def _disable(db: Session, pairs: list[tuple[FeedPatchset, Patchset]]) -> list[Patchset]:
    now = utcnow()
    changed = []
    for row, p in pairs:
        if row.enabled:
            row.enabled, row.changed = False, now
            changed.append(p)
    if changed:
        db.flush()
    return changed


def _notify(pm, event: str, patchset: Patchset, feed: Feed) -> None:
    if pm is not None:
        notify(pm, event, patchset=patchset, feed=feed)


def status(db: Session, feed: Feed, product: str | None = None) -> list[tuple[Patchset, str]]:
    """``[(patchset, status)]`` for ``feed``, oldest first (statuses: see the module docstring)."""
    rows = _rows(db, feed)
    result = []
    for p in ordered_patchsets(db, product):
        row = rows.get(p.id)
        if p.status == STATUS_BLOCKED:
            state = BLOCKED
        elif p.downloaded is None:
            state = NOT_DOWNLOADED
        elif row is not None and row.enabled:
            state = ENABLED
        elif row is not None:
            state = DISABLED
        else:
            state = UNDEPLOYED
        result.append((p, state))
    return result


def preview(db: Session, feed: Feed, product: str | None = None) -> dict[int, tuple[list[Patchset], list[Patchset]]]:
    """What :func:`enable_upto` and :func:`rollback_from` would change on ``feed``, changing nothing:
    ``{patchset id: (would enable, would disable)}``, each list oldest first, for asking "are you
    sure?" with the exact list. A patchset not downloaded yet counts as if it were (a caller that
    deploys it downloads it and the missing ones before it first); a blocked one is never enabled."""
    by_product: dict[str, list[tuple[Patchset, str]]] = {}
    for p, state in status(db, feed, product):
        by_product.setdefault(p.product, []).append((p, state))
    result: dict[int, tuple[list[Patchset], list[Patchset]]] = {}
    for rows in by_product.values():
        for at, (p, state) in enumerate(rows):
            enable = [] if state == BLOCKED else [q for q, s in rows[:at + 1] if s not in (BLOCKED, ENABLED)]
            disable = [q for q, s in rows[at:] if s == ENABLED]
            result[p.id] = (enable, disable)
    return result


def enabled_patchsets(db: Session, feed: Feed, product: str | None = None) -> list[Patchset]:
    """The patchsets enabled on ``feed``, oldest first."""
    return [p for p, state in status(db, feed, product) if state == ENABLED]
