"""Reading a patchset archive safely (protocol.md §7), with no database in sight.

One streaming pass over ``<NAME>.tar.bz2`` / ``.tar.gz``: every member is checked before anything
is written (no absolute paths, no ``..``, nothing outside ``<NAME>/``, no links, devices or FIFOs,
nothing the manifest does not list), regular files are streamed into a temporary folder inside
``<data_dir>/patches/`` while their sha256 is computed, and the whole archive's sha256 is computed
on the way in. Memory stays at a few chunks whatever the archive's size. The caller renames the
temporary folder into place (:mod:`.patchstore`); on any failure it is removed here.

Free space (:mod:`.diskspace`) is checked before each member is written, from its tar header: the
sizes are only known one header at a time, and reading every header first would decompress the
archive twice. When a member would not fit, nothing more is written; the rest of the headers are
only added up, so the refusal names the whole archive's need, and the temporary folder goes.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import os
import re
import secrets
import shutil
import tarfile
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from . import ServiceError, diskspace
from .manifests import (
    CHANGELOG,
    FILE_NAME_RE,
    MANIFEST,
    Manifest,
    check_layout,
    first_line,
    name_from_filename,
    parse_manifest,
    valid_patchset_name,
)

#: temporary folders in ``patches/`` start with this (a dot: never a patchset name)
PARTIAL_PREFIX = ".partial-"

CHUNK = 256 * 1024
MAX_MANIFEST_BYTES = 4 * 2**20
MAX_CHANGELOG_BYTES = 2**20
MAX_MEMBERS = 200_000
#: a partial folder of a live process is only removed past this age (pid reuse, containers)
PARTIAL_MAX_AGE_S = 24 * 3600


@dataclass
class Unpacked:
    """A verified archive, unpacked into ``temp_dir`` (which the caller renames or removes)."""

    name: str
    product: str
    released: datetime
    kernels: dict[str, int]
    changelog: str
    size: int
    sha256: str
    temp_dir: Path
    files: dict[str, str] = field(default_factory=dict)


class _HashingReader:
    """The archive file as tarfile reads it, hashed and counted on the way through."""

    def __init__(self, raw):
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n=-1):
        data = self.raw.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def new_partial_dir(patches_dir: Path, label: str = "") -> Path:
    """A fresh temporary folder in ``patches/`` named after this process (see clean_partial_imports)."""
    patches_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    label = f"{label}-" if label else ""
    path = patches_dir / f"{PARTIAL_PREFIX}{label}{os.getpid()}-{secrets.token_hex(4)}"
    path.mkdir(mode=0o750)
    return path


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def clean_partial_imports(data_dir, *, max_age_s: float = PARTIAL_MAX_AGE_S) -> list[str]:
    """Remove what interrupted imports left in ``<data_dir>/patches/``: temporary folders of processes
    that are gone (or older than ``max_age_s``). Returns the names removed. Safe while other processes
    import: their folders carry their (live) pid."""
    patches_dir = Path(data_dir) / "patches"
    removed = []
    try:
        entries = list(os.scandir(patches_dir))
    except FileNotFoundError:
        return removed
    now = time.time()
    for entry in entries:
        if not entry.name.startswith(PARTIAL_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        pid = _pid_of(entry.name)
        age = now - entry.stat(follow_symlinks=False).st_mtime
        if pid is not None and _alive(pid) and age < max_age_s:
            continue
        remove_tree(Path(entry.path))
        removed.append(entry.name)
    return removed


def _pid_of(folder: str) -> int | None:
    parts = folder[len(PARTIAL_PREFIX):].split("-")
    return int(parts[-2]) if len(parts) >= 2 and parts[-2].isdigit() else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


# --- the streaming pass ---------------------------------------------------------------------------

def _compression(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            magic = f.read(3)
    except FileNotFoundError:
        raise ServiceError(f"archive {path} does not exist") from None
    except OSError as exc:
        raise ServiceError(f"cannot read archive {path}: {exc.strerror}") from None
    if magic[:2] == b"\x1f\x8b":
        return "gz"
    if magic == b"BZh":
        return "bz2"
    raise ServiceError(f"{path.name} is not a .tar.bz2 or .tar.gz archive")


def unpack(path, patches_dir: Path) -> Unpacked:
    """Check, unpack and verify the archive at ``path`` into a new temporary folder of ``patches_dir``.
    Raises ServiceError with a one-line reason (and leaves nothing behind) when anything is wrong."""
    path = Path(path)
    compression = _compression(path)
    budget = diskspace.Budget(patches_dir)
    temp = new_partial_dir(patches_dir)
    try:
        return _unpack(path, compression, temp, budget)
    except BaseException:
        remove_tree(temp)
        raise


def _unpack(path: Path, compression: str, temp: Path, budget: diskspace.Budget) -> Unpacked:
    state = _State(top=name_from_filename(path.name), space=budget)
    with open(path, "rb") as raw:
        reader = _HashingReader(raw)
        # bz2/gzip file objects decompress with a bounded output per read (tarfile's own "r|bz2"
        # would inflate a whole input buffer at once: a few KB of zeros can become gigabytes)
        plain = bz2.BZ2File(reader) if compression == "bz2" else gzip.GzipFile(fileobj=reader, mode="rb")
        try:
            with plain, tarfile.open(fileobj=plain, mode="r|", bufsize=CHUNK) as tar:
                for member in tar:
                    if budget.short:  # out of space: nothing more is written, the rest only counted
                        _count_member(member, state)
                    else:
                        _take_member(tar, member, state, temp)
            if budget.short:
                raise budget.error()
            reader.drain()
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            # bz2 reports a broken stream as OSError; our own writes raise ServiceError
            if budget.short:
                raise budget.error(at_least=True) from None
            raise ServiceError(f"the archive is truncated or corrupt ({first_line(exc)})") from None
    if state.top is None:
        raise ServiceError("the archive is empty")
    if state.manifest is None:
        raise ServiceError(f"the archive has no {state.top}/{MANIFEST}")
    manifest = state.manifest
    for rel in state.written:
        if rel not in manifest.files:
            raise ServiceError(f"member {state.top}/{rel} is not listed in {MANIFEST}")
    for rel, expected in manifest.files.items():
        if rel not in state.written:
            shown = f"{state.top}/{rel}" if all(FILE_NAME_RE.match(p) for p in rel.split("/")) else repr(rel[:120])
            raise ServiceError(f"{shown} is listed in {MANIFEST} but missing from the archive")
        _check_sum(state.top, rel, state.written[rel], expected)
    check_layout(state.top, manifest, state.written)
    return Unpacked(name=state.top, product=manifest.product, released=manifest.released, kernels=manifest.kernels,
                    changelog=_read_changelog(temp), size=reader.size, sha256=reader.sha.hexdigest(),
                    temp_dir=temp, files=dict(state.written))


@dataclass
class _State:
    top: str | None
    space: diskspace.Budget
    manifest: Manifest | None = None
    #: relative path -> sha256 of what was written
    written: dict[str, str] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    members: int = 0


def _take_member(tar: tarfile.TarFile, member: tarfile.TarInfo, state: _State, temp: Path) -> None:
    state.members += 1
    if state.members > MAX_MEMBERS:
        raise ServiceError(f"the archive has more than {MAX_MEMBERS} members")
    parts = _member_parts(member, state)
    if parts is None:
        return  # the top folder itself
    rel = "/".join(parts)
    if rel in state.written or rel in state.dirs or rel == MANIFEST and state.manifest is not None:
        raise ServiceError(f"member {member.name!r} appears twice in the archive")
    if not state.space.take(member.size if member.isfile() else 0):
        return  # it would not fit: _unpack refuses the archive once the rest is counted
    if member.isdir():
        _mkdirs(temp, parts, member.name)
        state.dirs.add(rel)
        return
    if rel == MANIFEST:
        data = _read_small(tar, member, MAX_MANIFEST_BYTES)
        state.manifest = parse_manifest(data, state.top)
        _write_small(temp / MANIFEST, data)  # kept with the files: the patchset as its archive holds it
        for seen, digest in state.written.items():  # members that came before the manifest
            _check_listed(state, seen, digest)
        return
    if state.manifest is not None and rel not in state.manifest.files:
        raise ServiceError(f"member {member.name} is not listed in {MANIFEST}")
    _mkdirs(temp, parts[:-1], member.name)
    state.written[rel] = _stream_file(tar, member, temp.joinpath(*parts))
    if state.manifest is not None:
        _check_listed(state, rel, state.written[rel])


def _count_member(member: tarfile.TarInfo, state: _State) -> None:
    state.members += 1
    if state.members > MAX_MEMBERS:
        raise state.space.error(at_least=True)
    state.space.count(member.size if member.isfile() else 0)


def _check_listed(state: _State, rel: str, digest: str) -> None:
    expected = state.manifest.files.get(rel)
    if expected is None:
        raise ServiceError(f"member {state.top}/{rel} is not listed in {MANIFEST}")
    _check_sum(state.top, rel, digest, expected)


def _check_sum(top: str, rel: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise ServiceError(f"checksum mismatch for {top}/{rel}: sha256 is {actual}, {MANIFEST} says {expected}")


def _member_parts(member: tarfile.TarInfo, state: _State) -> list[str] | None:
    """The member's path inside ``<NAME>/`` as components, after every safety check."""
    raw = member.name
    shown = repr(raw[:200])
    if raw.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", raw):
        raise ServiceError(f"member {shown} has an absolute path")
    if "\\" in raw or "\x00" in raw:
        raise ServiceError(f"member {shown} has a backslash or NUL in its name")
    parts = (raw.rstrip("/") if member.isdir() else raw).split("/")
    if ".." in parts:
        raise ServiceError(f"member {shown} climbs out of its folder with '..'")
    if any(p in ("", ".") for p in parts):
        raise ServiceError(f"member {shown} is not a plain relative path")
    if state.top is None:  # the archive's file name did not say: the first member does
        if not valid_patchset_name(parts[0]):
            raise ServiceError(f"the archive's folder {parts[0][:80]!r} is not a patchset name "
                               "(K<YYYYMMDD>_<NN>, K<DDMMYYYY>_<N> or <DDMMYYYY>_<N>)")
        state.top = parts[0]
    if parts[0] != state.top:
        raise ServiceError(f"member {shown} is outside {state.top}/")
    for part in parts[1:]:
        if not FILE_NAME_RE.match(part):
            raise ServiceError(f"member {shown} has an unsafe name {part[:80]!r} "
                               "(letters, digits, '.', '_', '-'; not starting with '.')")
    kind = _kind(member)
    if kind:
        raise ServiceError(f"member {shown} is {kind}: only regular files and folders are accepted")
    if len(parts) == 1:
        if not member.isdir():
            raise ServiceError(f"member {shown} is a file where the folder {state.top}/ belongs")
        return None
    return parts[1:]


def _kind(member: tarfile.TarInfo) -> str | None:
    """What a member is when it is not a plain regular file or folder (None when it is one)."""
    if member.type in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE):
        return None
    if member.issym():
        return "a symbolic link"
    if member.islnk():
        return "a hard link"
    if member.ischr() or member.isblk():
        return "a device"
    if member.isfifo():
        return "a FIFO"
    if member.issparse():
        return "a sparse file"
    return f"of tar type {member.type!r}"


def _mkdirs(temp: Path, parts: list[str], shown: str) -> None:
    target = temp
    for part in parts:
        target = target / part
        try:
            os.mkdir(target, 0o750)
        except FileExistsError:
            if not target.is_dir() or target.is_symlink():
                raise ServiceError(f"member {shown!r} needs a folder where the archive has a file") from None
        except OSError as exc:
            raise ServiceError(f"cannot create {target}: {exc.strerror}") from None


def _stream_file(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> str:
    """Copy one member to ``target`` chunk by chunk; its sha256."""
    sha = hashlib.sha256()
    source = tar.extractfile(member)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
    except OSError as exc:
        raise ServiceError(f"cannot write {target}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as out:
        while True:
            chunk = source.read(CHUNK)
            if not chunk:
                break
            sha.update(chunk)
            try:
                out.write(chunk)
            except OSError as exc:
                raise ServiceError(f"cannot write {target}: {exc.strerror}") from None
    return sha.hexdigest()


def _read_small(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if member.size > limit:
        raise ServiceError(f"member {member.name} is larger than {limit} bytes")
    return tar.extractfile(member).read(member.size)  # exactly: read(n) allocates n bytes up front


def _write_small(target: Path, data: bytes) -> None:
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except OSError as exc:
        raise ServiceError(f"cannot write {target}: {exc.strerror}") from None


def _read_changelog(temp: Path) -> str:
    path = temp / CHANGELOG
    if path.stat().st_size > MAX_CHANGELOG_BYTES:
        raise ServiceError(f"the changelog is larger than {MAX_CHANGELOG_BYTES} bytes")
    return path.read_bytes().decode("utf-8", errors="replace")
