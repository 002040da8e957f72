"""What "up to date" means, decided once: a server is up to date when its patch level is the
highest level its feed has enabled for its kernel; out of date when lower; unsupported when the
feed has no patches for its kernel."""
from __future__ import annotations

from sqlalchemy import and_, func, select, true
from sqlalchemy.orm import Session

from ..models import STATUS_BLOCKED, FeedPatchset, PatchLevel, Patchset

UPTODATE, OUTOFDATE, UNSUPPORTED = "uptodate", "outofdate", "unsupported"


def latest_level_subquery(feed_id_col, kernel_id_col):
    """A correlated scalar subquery: the highest enabled level for (feed, kernel), NULL if none."""
    return (
        select(func.max(PatchLevel.level))
        .join(FeedPatchset, and_(FeedPatchset.patchset_id == PatchLevel.patchset_id, FeedPatchset.enabled == true()))
        .join(Patchset, Patchset.id == PatchLevel.patchset_id)
        .where(PatchLevel.kernel_id == kernel_id_col, FeedPatchset.feed_id == feed_id_col,
               Patchset.status != STATUS_BLOCKED)
        .scalar_subquery()
    )


def latest_levels(db: Session, pairs: set[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """``{(feed_id, kernel_id): highest enabled level}`` for the given pairs (one query)."""
    if not pairs:
        return {}
    feed_ids = {f for f, _ in pairs}
    kernel_ids = {k for _, k in pairs}
    rows = db.execute(
        select(FeedPatchset.feed_id, PatchLevel.kernel_id, func.max(PatchLevel.level))
        .join(FeedPatchset, and_(FeedPatchset.patchset_id == PatchLevel.patchset_id, FeedPatchset.enabled == true()))
        .join(Patchset, Patchset.id == PatchLevel.patchset_id)
        .where(FeedPatchset.feed_id.in_(feed_ids), PatchLevel.kernel_id.in_(kernel_ids), Patchset.status != STATUS_BLOCKED)
        .group_by(FeedPatchset.feed_id, PatchLevel.kernel_id)
    ).all()
    return {(f, k): lvl for f, k, lvl in rows if (f, k) in pairs}


def patch_status(patch_level: int | None, latest: int | None) -> str:
    if latest is None:
        return UNSUPPORTED
    if patch_level is not None and patch_level >= latest:
        return UPTODATE
    return OUTOFDATE
