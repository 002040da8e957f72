"""What a patchset archive must contain (protocol.md §1, §7): patchset names, ``manifest.json``
and the layout ``<NAME>/changelog``, ``<NAME>/patches/<kernel_id>/<level>/<file>``. No I/O here:
:mod:`.archives` streams the archive and asks these functions."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from . import ServiceError
from .agents import KERNEL_ID_RE

#: ``K<YYYYMMDD>_<NN>`` (new), ``K<DDMMYYYY>_<N>`` and ``<DDMMYYYY>_<N>`` (legacy), protocol.md §1
PATCHSET_NAME_RE = re.compile(r"^(K?)([0-9]{8})_([0-9]{1,4})$")
#: a file of a level as served to agents (and any other path component in an archive)
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
LEVEL_RE = re.compile(r"^[1-9][0-9]{0,8}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
PRODUCT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ARCHIVE_SUFFIXES = (".tar.bz2", ".tar.gz")
MANIFEST = "manifest.json"
CHANGELOG = "changelog"
REQUIRED_LEVEL_FILES = ("kpatch.bin", "kpatch.info")


def valid_patchset_name(name) -> bool:
    """True for the three name forms of protocol.md §1, with a real calendar date in them."""
    if not isinstance(name, str):
        return False
    m = PATCHSET_NAME_RE.match(name)
    if not m:
        return False
    prefix, digits, serial = m.groups()
    ymd = _date(digits[0:4], digits[4:6], digits[6:8])
    dmy = _date(digits[4:8], digits[2:4], digits[0:2])
    if prefix and len(serial) == 2 and ymd:
        return True  # K<YYYYMMDD>_<NN>
    return dmy  # K<DDMMYYYY>_<N> or <DDMMYYYY>_<N>


def _date(year: str, month: str, day: str) -> bool:
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return False
    return 1990 <= int(year) <= 2200


def name_from_filename(filename: str) -> str | None:
    """``K20240101_01.tar.bz2`` -> ``K20240101_01``; None when the file is not named like an archive."""
    for suffix in ARCHIVE_SUFFIXES:
        if filename.endswith(suffix):
            stem = filename[: -len(suffix)]
            return stem if valid_patchset_name(stem) else None
    return None


@dataclass
class Manifest:
    """What ``manifest.json`` says, validated."""

    product: str
    released: datetime
    kernels: dict[str, int]
    files: dict[str, str]


def parse_manifest(data: bytes, top: str) -> Manifest:
    where = f"{top}/{MANIFEST}"
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ServiceError(f"{where} is not valid JSON ({first_line(exc)})") from None
    if not isinstance(doc, dict):
        raise ServiceError(f"{where} must be a JSON object")
    if doc.get("name") != top:
        raise ServiceError(f"{where} names the patchset {str(doc.get('name'))[:80]!r} but its folder is {top!r}")
    product = doc.get("product", "kernel")
    if not isinstance(product, str) or not PRODUCT_RE.match(product):
        raise ServiceError(f"{where}: product must be 1-64 letters, digits, '.', '_' or '-'")
    released = _parse_time(doc.get("released"), where)
    kernels = doc.get("kernels")
    if not isinstance(kernels, dict) or not kernels:
        raise ServiceError(f"{where}: kernels must be a non-empty object {{kernel_id: level}}")
    for kernel_id, level in kernels.items():
        if not KERNEL_ID_RE.match(kernel_id):
            raise ServiceError(f"{where}: kernel id {kernel_id[:80]!r} is not 40 lowercase hexadecimal digits")
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level < 10**9:
            raise ServiceError(f"{where}: the level of kernel {kernel_id} must be a positive whole number")
    files = doc.get("files")
    if not isinstance(files, dict) or not files:
        raise ServiceError(f"{where}: files must be a non-empty object {{relative path: sha256}}")
    for rel, digest in files.items():
        if not isinstance(digest, str) or not SHA256_RE.match(digest):
            raise ServiceError(f"{where}: the sha256 of {rel[:120]!r} is not 64 lowercase hexadecimal digits")
    return Manifest(product, released, dict(kernels), dict(files))


def _parse_time(value, where: str) -> datetime:
    if not isinstance(value, str):
        raise ServiceError(f"{where}: released must be an ISO time like 2024-01-31T12:00:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ServiceError(f"{where}: released {value[:40]!r} is not an ISO time like 2024-01-31T12:00:00Z") from None
    if parsed.tzinfo is not None:  # stored as naive UTC like every timestamp (models.meta.utcnow)
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def check_layout(top: str, manifest: Manifest, written: dict[str, str]) -> None:
    """``changelog`` at the top; ``patches/<kernel_id>/<level>/<file>`` exactly as the manifest's kernels say."""
    if CHANGELOG not in written:
        raise ServiceError(f"the archive has no {top}/{CHANGELOG}")
    found: dict[str, set[str]] = {}
    for rel in written:
        parts = rel.split("/")
        if parts[0] != "patches":
            continue
        if len(parts) != 4:
            raise ServiceError(f"{top}/{rel} is not laid out as patches/<kernel_id>/<level>/<file>")
        _, kernel_id, level, filename = parts
        if kernel_id not in manifest.kernels:
            raise ServiceError(f"{top}/{rel} is for kernel {kernel_id[:80]}, which {MANIFEST} does not list")
        if not LEVEL_RE.match(level) or int(level) != manifest.kernels[kernel_id]:
            raise ServiceError(f"{top}/{rel}: {MANIFEST} gives kernel {kernel_id} level "
                               f"{manifest.kernels[kernel_id]}, not {level[:20]}")
        found.setdefault(kernel_id, set()).add(filename)
    for kernel_id, level in manifest.kernels.items():
        for required in REQUIRED_LEVEL_FILES:
            if required not in found.get(kernel_id, ()):
                raise ServiceError(f"the archive has no {top}/patches/{kernel_id}/{level}/{required}")


def first_line(exc: BaseException) -> str:
    """An exception's message, short enough for a one-line refusal."""
    return (str(exc) or type(exc).__name__).splitlines()[0][:120]
