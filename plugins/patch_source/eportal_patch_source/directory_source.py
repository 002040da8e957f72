"""The ``directory`` source: a folder of ``*.tar.bz2`` / ``*.tar.gz`` archives, for air-gapped sites
that carry archives in on a disk. Name, product, release time and changelog are read from each
archive (its ``<NAME>/manifest.json`` and ``<NAME>/changelog``), once per file version: the
answer is cached by path, size and modification time, so a poll every ten minutes reads only what
is new. The archive itself is imported from where it lies (the import verifies every checksum).
"""
from __future__ import annotations

import bz2
import gzip
import os
import tarfile
import threading
import zlib
from pathlib import Path

from eportal_core.api import (
    ARCHIVE_SUFFIXES,
    CHANGELOG,
    MANIFEST,
    MAX_CHANGELOG_BYTES,
    MAX_MANIFEST_BYTES,
    Fetched,
    Index,
    IndexEntry,
    Progress,
    ServiceError,
    SourceError,
    first_line,
    parse_manifest,
    valid_patchset_name,
)

#: members read at most while looking for the manifest and the changelog (they come first in practice)
MAX_SCAN_MEMBERS = 10_000
_cache: dict[tuple[str, int, int], IndexEntry | str] = {}
_cache_lock = threading.Lock()


class DirectorySource:
    kind = "directory"

    def __init__(self, settings: dict, access):
        raw = (access.path or "").strip()
        if not raw:
            raise SourceError("give the folder that holds the archives", field="path")
        folder = Path(raw).expanduser()
        if not folder.is_absolute():
            raise SourceError(f"the folder must be an absolute path (like /srv/patches), not {raw[:200]!r}", field="path")
        if not folder.is_dir():
            raise SourceError(f"the folder {folder} does not exist (or is not a folder)", field="path")
        if not os.access(folder, os.R_OK | os.X_OK):
            raise SourceError(f"the folder {folder} cannot be read by this process", field="path")
        self.folder = folder

    def archives(self) -> list[Path]:
        try:
            names = sorted(os.listdir(self.folder))
        except OSError as exc:
            raise SourceError(f"cannot list {self.folder}: {exc.strerror}") from None
        return [self.folder / n for n in names if n.endswith(ARCHIVE_SUFFIXES) and not n.startswith(".")
                and (self.folder / n).is_file()]

    def index(self) -> Index:
        index = Index()
        seen: dict[str, Path] = {}
        for path in self.archives():
            found = describe_archive(path)
            if isinstance(found, str):
                index.problems.append(f"{path.name}: {found}")
                continue
            if found.name in seen:
                index.problems.append(f"{path.name}: {found.name} is also in {seen[found.name].name}; that one is used")
                continue
            seen[found.name] = path
            index.entries.append(found)
        return index

    def fetch(self, entry: IndexEntry, progress: Progress | None = None) -> Fetched:
        path = Path(entry.origin)
        if not path.is_file():
            raise SourceError(f"{path} is gone from the folder")
        if progress is not None:
            size = path.stat().st_size
            progress(entry.name, size, size)
        return Fetched(path, temporary=False)


def describe_archive(path: Path) -> IndexEntry | str:
    """The archive's index entry, or why it cannot be one (cached per file version)."""
    try:
        st = path.stat()
    except OSError as exc:
        return f"cannot read it ({exc.strerror})"
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    try:
        found: IndexEntry | str = _read(path, st.st_size)
    except ServiceError as exc:
        found = str(exc)
    with _cache_lock:
        if len(_cache) > 5000:
            _cache.clear()
        _cache[key] = found
    return found


def _read(path: Path, size: int) -> IndexEntry:
    with open(path, "rb") as raw:
        magic = raw.read(3)
        raw.seek(0)
        if magic[:2] == b"\x1f\x8b":
            plain = gzip.GzipFile(fileobj=raw, mode="rb")
        elif magic == b"BZh":
            plain = bz2.BZ2File(raw)
        else:
            raise ServiceError("not a .tar.bz2 or .tar.gz archive")
        top = manifest = changelog = None
        try:
            # bz2/gzip file objects inflate a bounded amount per read: a small bomb stays small here
            with plain, tarfile.open(fileobj=plain, mode="r|") as tar:
                for count, member in enumerate(tar):
                    if count >= MAX_SCAN_MEMBERS:
                        break
                    parts = member.name.strip("/").split("/")
                    if top is None:
                        top = parts[0]
                        if not valid_patchset_name(top):
                            raise ServiceError(f"its folder {top[:80]!r} is not a patchset name")
                    if len(parts) != 2 or parts[0] != top or not member.isreg():
                        continue
                    if parts[1] == MANIFEST:
                        manifest = parse_manifest(_read_member(tar, member, MAX_MANIFEST_BYTES), top)
                    elif parts[1] == CHANGELOG:
                        changelog = _read_member(tar, member, MAX_CHANGELOG_BYTES).decode("utf-8", errors="replace")
                    if manifest is not None and changelog is not None:
                        break
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise ServiceError(f"the archive is truncated or corrupt ({first_line(exc)})") from None
    if top is None:
        raise ServiceError("the archive is empty")
    if manifest is None:
        raise ServiceError(f"no {top}/{MANIFEST} in the archive")
    return IndexEntry(name=top, product=manifest.product, released=manifest.released, size=size, sha256=None,
                      changelog=changelog or "", origin=str(path))


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if member.size > limit:
        raise ServiceError(f"{member.name} is larger than {limit} bytes")
    return tar.extractfile(member).read(member.size)


def directory_source(settings: dict, access) -> DirectorySource:
    """The factory the ``eportal_patch_source_types`` hook offers as ``directory``."""
    return DirectorySource(settings, access)
