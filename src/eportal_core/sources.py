"""The patch source contract: what a source type is, and the one place that turns access info into
a source. It belongs to the hook ``eportal_patch_source_types`` (hookspecs.py), so a third-party
source (an S3 bucket, another eportal) needs nothing but the core.

A source answers two questions: :meth:`Source.index` (which patchsets exist upstream, as
:class:`IndexEntry` rows) and :meth:`Source.fetch` (a local archive file of one of them, verified
against what the index announced, ready for ``patchstore.import_archive``). The patch_source plugin
offers the types ``http`` and ``directory``, polls the configured source and imports what is new.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from .models import STATUS_AVAILABLE, STATUS_BLOCKED
from .plugins import patch_source_types as source_types  # {type name: factory}, duplicates refused
from .services import ServiceError
from .services.manifests import PRODUCT_RE, SHA256_RE, valid_patchset_name

#: ``progress(name, bytes done, bytes in all or None)``
Progress = Callable[[str, int, int | None], None]


class SourceError(ServiceError):
    """The source could not be read or refused us: one line for the admin, never the password.

    ``transient`` errors (network, 5xx, a dropped connection) are retried and resumed; the others
    (bad login, not found, a refused archive) are not. ``field`` names the access-info field a
    configuration error is about (``url``, ``path``, ``type``), for the settings form.
    ``space_needed`` (bytes, the reserve included) marks a lack of free space here: scheduled polls
    try that patchset again only once that much is free."""

    def __init__(self, message: str, *, transient: bool = False, field: str = "", status: int | None = None,
                 space_needed: int | None = None):
        super().__init__(message, field=field)
        self.transient = transient
        #: the HTTP status behind the error, when there was one
        self.status = status
        self.space_needed = space_needed


class ArchiveRefused(SourceError):
    """The archive arrived but is not what the source announced, or the patch store refused it."""


@dataclass(frozen=True)
class IndexEntry:
    """One patchset as the source lists it (protocol.md §7)."""

    name: str
    product: str
    #: naive UTC, like every timestamp in the database
    released: datetime
    size: int | None = None
    sha256: str | None = None
    status: str = STATUS_AVAILABLE
    changelog: str = ""
    #: where the archive is: a URL or a file path (for messages and for fetching)
    origin: str = ""


@dataclass
class Index:
    entries: list[IndexEntry] = field(default_factory=list)
    #: entries that were skipped, one line each ("K2024...: released is not an ISO time")
    problems: list[str] = field(default_factory=list)

    def by_name(self) -> dict[str, IndexEntry]:
        return {e.name: e for e in self.entries}


@dataclass(frozen=True)
class Fetched:
    path: Path
    #: a download of ours (removed after the import), not the source's own file
    temporary: bool


class Source(Protocol):
    """What a source type's factory returns. ``kind`` is the type name; :meth:`index` lists what the
    upstream offers (problems with single entries go to ``Index.problems``, a source that cannot be
    read raises :class:`SourceError`); :meth:`fetch` makes one entry's archive a local file, verified
    against the entry's size and sha256 when given (else :class:`ArchiveRefused`), calling
    ``progress`` as bytes arrive."""

    kind: str

    def index(self) -> Index: ...

    def fetch(self, entry: IndexEntry, progress: Progress | None = None) -> Fetched: ...


@dataclass(frozen=True)
class AccessInfo:
    """Where the patch source is and how to log in: what the console's Patch Source page stores and
    what a source type's factory receives. ``type`` names the source type."""

    type: str = "http"
    url: str = ""
    path: str = ""
    login: str = ""
    password: str = field(default="", repr=False)

    @property
    def location(self) -> str:
        """What the admin recognises the source by: the URL, or the folder."""
        return self.path if self.type == "directory" else self.url

    def public(self) -> dict:
        """Everything but the password (which only shows as set or not)."""
        return {"type": self.type, "url": self.url, "path": self.path, "login": self.login,
                "password_set": bool(self.password)}


def parse_time(value) -> datetime:
    """An ISO time (``2024-01-31T12:00:00Z``) as naive UTC; ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError("released must be an ISO time like 2024-01-31T12:00:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"released {value[:40]!r} is not an ISO time like 2024-01-31T12:00:00Z") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def parse_entry(raw, origin: str = "") -> IndexEntry:
    """One ``patchsets.json`` row, validated; ValueError with a one-line reason otherwise."""
    if not isinstance(raw, dict):
        raise ValueError("an entry is not a JSON object")
    name = raw.get("name")
    if not valid_patchset_name(name):
        raise ValueError(f"{str(name)[:80]!r} is not a patchset name (K<YYYYMMDD>_<NN>, K<DDMMYYYY>_<N>, <DDMMYYYY>_<N>)")
    try:
        product = raw.get("product") or "kernel"
        if not isinstance(product, str) or not PRODUCT_RE.match(product):
            raise ValueError("product must be 1-64 letters, digits, '.', '_' or '-'")
        released = parse_time(raw.get("released"))
        size = raw.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise ValueError("size must be a whole number of bytes")
        sha256 = raw.get("sha256")
        if sha256 is not None and (not isinstance(sha256, str) or not SHA256_RE.match(sha256.lower())):
            raise ValueError("sha256 must be 64 hexadecimal digits")
        status = raw.get("status") or STATUS_AVAILABLE
        if status not in (STATUS_AVAILABLE, STATUS_BLOCKED):
            raise ValueError(f"status must be {STATUS_AVAILABLE} or {STATUS_BLOCKED}, not {str(status)[:20]!r}")
        changelog = raw.get("changelog") or ""
        if not isinstance(changelog, str):
            raise ValueError("changelog must be text")
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    return IndexEntry(name=name, product=product, released=released, size=size,
                      sha256=sha256.lower() if sha256 else None, status=status, changelog=changelog[:2**20],
                      origin=origin)


def make_source(pm, settings: dict, access) -> Source:
    """The source the access info describes; SourceError (field ``type``) for an unknown type, and
    whatever the type's factory refuses (a bad URL, a missing folder)."""
    types = source_types(pm)
    factory = types.get(access.type)
    if factory is None:
        known = ", ".join(sorted(types)) or "none installed"
        raise SourceError(f"unknown patch source type {access.type[:40]!r} (known: {known})", field="type")
    return factory(settings, access)
