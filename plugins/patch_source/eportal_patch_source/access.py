"""The patch source's access info (type, URL or folder, login, password), kept in ``site_settings``.

The password is stored because the source needs it on every request; it is never shown back (the
console and ``--show`` only say whether one is set), never logged and never put in the audit trail.
Saving with an empty password keeps the stored one.
"""
from __future__ import annotations

import json
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from eportal_core.api import AccessInfo, SiteSetting, SourceError, audit, make_source

PREFIX = "patch_source.access."
FIELDS = ("type", "url", "path", "login", "password")
#: names the state module keeps next to the access info
STATE_KEY = "patch_source.state"
DELETED_KEY = "patch_source.deleted"


def _get(db: Session, name: str) -> str | None:
    row = db.get(SiteSetting, name)
    return row.value if row is not None else None


def _put(db: Session, name: str, value: str) -> None:
    row = db.get(SiteSetting, name)
    if row is None:
        db.add(SiteSetting(name=name, value=value))
    elif row.value != value:
        row.value = value


def load(db: Session) -> AccessInfo | None:
    """The stored access info, or None when no source was ever configured."""
    rows = {r.name[len(PREFIX):]: r.value for r in db.scalars(select(SiteSetting).where(SiteSetting.name.like(PREFIX + "%")))}
    if not rows.get("type"):
        return None
    return AccessInfo(**{k: rows.get(k, "") for k in FIELDS})


def normalise(info: AccessInfo) -> AccessInfo:
    return replace(info, type=info.type.strip().lower(), url=info.url.strip().rstrip("/"), path=info.path.strip(),
                   login=info.login.strip())


def save(db: Session, new: AccessInfo, *, pm, settings: dict, keep_password: bool = True, actor: str = "system",
         ip: str = "") -> AccessInfo:
    """Validate ``new`` (the source type's own factory decides what is valid: an http(s) URL, an
    existing folder) and store it. An empty password keeps the stored one unless ``keep_password``
    is False. Raises SourceError naming the bad field; then nothing is stored."""
    new = normalise(new)
    old = load(db)
    if not new.password and keep_password and old is not None:
        new = replace(new, password=old.password)
    if not new.type:
        raise SourceError("choose the type of the patch source", field="type")
    make_source(pm, settings, new)  # raises SourceError for what the type cannot use
    for name in FIELDS:
        _put(db, PREFIX + name, getattr(new, name))
    changed = [name for name in FIELDS if old is None or getattr(old, name) != getattr(new, name)]
    shown = ", ".join("password" if n == "password" else f"{n}={getattr(new, n)}" for n in changed) or "unchanged"
    audit.record(db, actor, "patch_source.access", new.location[:255], shown, ip=ip)
    db.flush()
    return new


# --- small JSON values next to the access info ----------------------------------------------------

def load_json(db: Session, name: str, default):
    raw = _get(db, name)
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        return default


def save_json(db: Session, name: str, value) -> None:
    _put(db, name, json.dumps(value, sort_keys=True))
    db.flush()
