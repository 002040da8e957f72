"""What the last poll did and what failed, kept in ``site_settings`` (no schema change), and the
file locks that keep two processes from polling or downloading the same thing at once."""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from eportal_core.api import SourceError, utcnow

from .access import DELETED_KEY, STATE_KEY, load_json, save_json

#: failure kinds: ``refused`` (the archive is bad: not fetched again by scheduled polls until the
#: source announces another one) and ``failed`` (network and the like: tried again at every poll)
REFUSED, FAILED = "refused", "failed"


@dataclass
class PollOutcome:
    """What a poll found: the fields one run's result (polling.PollResult) and the stored state share."""

    #: why the whole poll failed (the index could not be read), None when it did not
    error: str | None = None
    new: list[str] = field(default_factory=list)
    downloaded: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    unblocked: list[str] = field(default_factory=list)
    #: index entries that were skipped, one line each
    problems: list[str] = field(default_factory=list)
    #: patchset name -> what went wrong, for the patchsets that failed
    failures: dict = field(default_factory=dict)
    #: entries in the last index
    listed: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failures


@dataclass
class PollState(PollOutcome):
    """The last poll as stored for the console and the health check; ``failures`` maps a patchset to
    ``{"error", "kind", "sha256", "at"}`` and is kept until that patchset succeeds."""

    started: str | None = None
    finished: str | None = None
    trigger: str = ""

    @classmethod
    def from_json(cls, data) -> PollState:
        if not isinstance(data, dict):
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def load_state(db: Session) -> PollState:
    return PollState.from_json(load_json(db, STATE_KEY, {}))


def save_state(db: Session, state: PollState) -> None:
    save_json(db, STATE_KEY, asdict(state))


def now_text() -> str:
    return utcnow().strftime("%Y-%m-%d %H:%M:%S")


def load_deleted(db: Session) -> set[str]:
    """Patchsets removed with ``kcare unroll --delete``: polls do not fetch them again."""
    value = load_json(db, DELETED_KEY, [])
    return {str(v) for v in value} if isinstance(value, list) else set()


def set_deleted(db: Session, name: str, deleted: bool) -> None:
    names = load_deleted(db)
    if (name in names) == deleted:
        return
    names = names | {name} if deleted else names - {name}
    save_json(db, DELETED_KEY, sorted(names))


# --- locks ------------------------------------------------------------------------------------------

def downloads_dir(settings: dict) -> Path:
    """``<data_dir>/patches/.downloads``: partial and finished downloads (a dot: never a patchset name)."""
    return Path(settings["eportal.data_dir"]) / "patches" / ".downloads"


@contextmanager
def file_lock(path: Path, busy_message: str):
    """An exclusive ``flock`` on ``path`` or SourceError(busy_message) at once; held until the block ends.
    flock locks belong to the open file, so two threads of one process exclude each other too."""
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SourceError(busy_message, transient=True) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def poll_lock(settings: dict):
    return file_lock(downloads_dir(settings) / ".poll.lock", "another poll of the patch source is running")
