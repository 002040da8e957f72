"""Free space checks before patch files are written: an import that fills the disk would break the
database and the logs on the same filesystem, so it is refused before it gets there.

The rule, used by the import (``archives.unpack``) and by downloads (the patch source's ``.part``
files): what will be written, each file rounded up to whole 4 KiB blocks, plus a reserve of
``max(64 MiB, 5 % of it)`` that stays free, must fit in what ``shutil.disk_usage`` reports free.
"""
from __future__ import annotations

from pathlib import Path
from shutil import disk_usage

from . import ServiceError

BLOCK = 4096
RESERVE_MIN = 64 * 2**20
RESERVE_SHARE = 0.05


class NotEnoughSpace(ServiceError):
    """Refused for lack of free space (not because the archive is bad): trying again later, once
    space was freed, may succeed. ``need`` includes the reserve; ``free`` is what was free."""

    def __init__(self, message: str, *, folder: Path, need: int, free: int):
        super().__init__(message)
        self.folder, self.need, self.free = folder, need, free


def on_disk(size: int) -> int:
    """The space a file of ``size`` bytes takes: whole blocks (an empty file or a folder: one)."""
    return max(1, -(-size // BLOCK)) * BLOCK


def reserve(need: int) -> int:
    """What stays free after writing ``need`` bytes: ``max(64 MiB, 5 %)``."""
    return max(RESERVE_MIN, int(need * RESERVE_SHARE))


def free_bytes(folder: Path) -> int:
    """Free space of the filesystem of ``folder`` (or of its nearest existing parent)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return disk_usage(folder).free


def human(size: int) -> str:
    """``1.2 GiB``, ``300 MiB``, ``4.5 MiB``: what the messages show."""
    if size >= 2**30:
        return f"{size / 2**30:.1f} GiB"
    mib = size / 2**20
    return f"{mib:.0f} MiB" if mib >= 10 else f"{mib:.1f} MiB"


def shortage(folder: Path, what: str, need: int, free: int, *, at_least: bool = False) -> NotEnoughSpace:
    """The one-sentence refusal: "not enough free space in F: the archive needs 1.2 GiB plus a
    64 MiB reserve, 300 MiB free"."""
    needs = "needs at least" if at_least else "needs"
    return NotEnoughSpace(f"not enough free space in {folder}: {what} {needs} {human(need)} plus a "
                          f"{human(reserve(need))} reserve, {human(free)} free",
                          folder=Path(folder), need=need + reserve(need), free=free)


def check(folder: Path, need: int, what: str) -> None:
    """Raise :class:`NotEnoughSpace` unless ``need`` bytes (plus the reserve) fit in ``folder``."""
    free = free_bytes(folder)
    if need + reserve(need) > free:
        raise shortage(folder, what, need, free)


class Budget:
    """Space for an archive whose size is learnt member by member (tar headers come one at a time in
    the stream): :meth:`take` before writing each member; once it says no, the caller writes nothing
    more, only adds up the rest (:meth:`count`) so the refusal names the whole archive's need."""

    def __init__(self, folder: Path, what: str = "the archive"):
        self.folder, self.what = Path(folder), what
        self.free = free_bytes(folder)
        self.need = 0
        self.short = False

    def count(self, size: int) -> None:
        self.need += on_disk(size)
        if self.need + reserve(self.need) > self.free:
            self.short = True

    def take(self, size: int) -> bool:
        """Count ``size`` bytes about to be written; False (write nothing) when they do not fit."""
        self.count(size)
        return not self.short

    def error(self, *, at_least: bool = False) -> NotEnoughSpace:
        return shortage(self.folder, self.what, self.need, self.free, at_least=at_least)
