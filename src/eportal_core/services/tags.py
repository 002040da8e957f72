"""Server tags: ``name`` or ``name:value``, separated by ``;`` (what ``kcarectl --tag`` sends)."""
from __future__ import annotations

from ..models import ServerTag
from . import ServiceError

MAX_TAGS = 50
MAX_NAME = 128
MAX_VALUE = 255
MAX_TOTAL = 1024


def parse_tags(text: str | None) -> list[tuple[str, str]]:
    """``"env:prod;ubuntu"`` -> ``[("env", "prod"), ("ubuntu", "")]``; ``""`` -> ``[]`` (remove all)."""
    if text is None:
        return []
    if len(text) > MAX_TOTAL:
        raise ServiceError(f"tags are too long: at most {MAX_TOTAL} characters in all", field="tags")
    tags: list[tuple[str, str]] = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        name, _, value = part.partition(":")
        name, value = name.strip(), value.strip()
        if not name:
            raise ServiceError(f"tag {part[:40]!r} has no name: write name or name:value", field="tags")
        if len(name) > MAX_NAME or len(value) > MAX_VALUE:
            raise ServiceError(f"tag {part[:40]!r} is too long (name ≤ {MAX_NAME}, value ≤ {MAX_VALUE} characters)", field="tags")
        if any(ord(c) < 32 or ord(c) == 127 for c in part):
            raise ServiceError("tags must not contain control characters", field="tags")
        if (name, value) not in tags:
            tags.append((name, value))
    if len(tags) > MAX_TAGS:
        raise ServiceError(f"too many tags: at most {MAX_TAGS}", field="tags")
    return tags


def format_tags(tags: list[tuple[str, str]]) -> str | None:
    """The canonical string stored and shown; ``None`` when there are no tags (protocol.md §4)."""
    if not tags:
        return None
    return ";".join(f"{n}:{v}" if v else n for n, v in tags)


def apply_tags(db, server, text: str | None) -> None:
    """Replace the server's tags with ``text`` (validated first, so a bad string changes nothing)."""
    tags = parse_tags(text)
    db.query(ServerTag).filter(ServerTag.server_pk == server.id).delete(synchronize_session=False)
    for name, value in tags:
        db.add(ServerTag(server_pk=server.id, name=name, value=value, key_id=server.key_id))
    server.tags = format_tags(tags)


def split_filter(text: str) -> tuple[str, str | None]:
    """The tag filter ``name`` -> ``("name", None)`` (any value); ``name:value`` -> ``("name", "value")``."""
    name, sep, value = text.strip().partition(":")
    return name.strip(), value.strip() if sep else None


def tag_rows(text: str) -> list:
    """Conditions on ``server_tags`` rows for the filter ``name`` (any value) or ``name:value``."""
    name, value = split_filter(text)
    cond = [ServerTag.name == name]
    if value is not None:
        cond.append(ServerTag.value == value)
    return cond


def tag_text_condition(text: str):
    """The tag filter as a condition on the servers row's own tag text (``servers.tags``), exactly
    equivalent to :func:`tag_condition`: the text is ``format_tags`` of the same tags, so a tag is
    one ``;``-separated part, ``name`` (no value) or ``name:value``. Byte comparison (``instr``,
    SQLite), as ``=`` on ``server_tags``. SQLite only: it lets a count read the tag from the
    ``ix_servers_key_id_checkin_tags`` index instead of probing ``server_tags`` per server."""
    from sqlalchemy import and_, false, func, literal, or_

    from ..models import Server
    name, value = split_filter(text)
    if ";" in name or (value is not None and ";" in value):
        return false()  # no stored tag holds the separator
    wrapped = literal(";") + Server.tags + literal(";")
    if value is None:
        found = or_(func.instr(wrapped, f";{name};") > 0, func.instr(wrapped, f";{name}:") > 0)
    else:
        found = func.instr(wrapped, f";{name}:{value};" if value else f";{name};") > 0
    return and_(Server.tags.is_not(None), found)


def tag_condition(text: str, *, correlated: bool = False):
    """SQL condition for servers carrying tag ``name`` (any value) or ``name:value``.

    By default ``id IN (tagged servers)``: the database can start from the (name, value) index,
    so a rare tag is found at once even among a million servers. ``correlated=True`` gives
    ``EXISTS (tag row of this server)`` instead, for a tag that many servers carry: a page of them
    is then read in the page's order, one primary-key probe per server, instead of sorting every
    tagged server first (SQLite plans the IN form that way: 0.9 s for a tag on 350k of 1M servers)."""
    from sqlalchemy import select

    from ..models import Server
    if correlated:
        # server_pk, not *: the primary key (server_pk, name, value) then covers the probe (with *,
        # SQLite took the (name, value, key_id, server_pk) index for a name alone: a scan per server)
        return select(ServerTag.server_pk).where(ServerTag.server_pk == Server.id, *tag_rows(text)).exists()
    return Server.id.in_(select(ServerTag.server_pk).where(*tag_rows(text)))
