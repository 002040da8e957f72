"""First start: the ``admin`` user with a random password, written once to a 0600 file."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sqlalchemy.orm import Session

from .passwords import generate_password
from .users import add_user, count_users

PASSWORD_FILE = "initial-admin-password"


def ensure_first_admin(dbsession: Session, data_dir: str | Path) -> str | None:
    """Create ``admin`` when there are no users; return its password (else ``None``)."""
    if count_users(dbsession):
        return None
    password = generate_password()
    add_user(dbsession, "admin", password, actor="first-start", description="created on first start")
    write_private(Path(data_dir) / PASSWORD_FILE, f"admin password: {password}\n")
    return password


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600: to a temporary file first, then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
