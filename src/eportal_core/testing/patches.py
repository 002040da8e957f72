"""Patchset archives for tests (protocol.md §5, §7): realistic ones, and broken ones of every kind
the importer must refuse.

- :func:`make_archive`: one ``<NAME>.tar.bz2`` / ``.tar.gz`` with ``manifest.json``, a changelog and
  ``patches/<kernel_id>/<level>/`` (``kpatch.bin`` of random bytes, ``kpatch.info`` with a header
  and one block per patch, ``kpatch.bin.sig``); ``corrupt=`` breaks it in one named way;
  ``streaming=True`` writes archives of gigabytes (bench/patch_bench.py) without staging them.
- ``patch_archives``: five patchsets of rising levels for three kernels (session-scoped).

Core and plugin tests get the fixture through ``eportal_core.testing``.
"""
from __future__ import annotations

import hashlib
import io
import json
import random
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

CORRUPTIONS = ("checksum", "dotdot", "symlink", "hardlink", "truncated", "absolute", "unlisted", "missing",
               "device", "fifo", "outside")


def kernel_id_of(proc_version: str) -> str:
    """A kernel id the way the agent computes it: sha1 of ``/proc/version``."""
    return hashlib.sha1(proc_version.encode()).hexdigest()


#: kernel id -> (OS, kernel package release) for realistic kpatch.info headers
KERNELS = {
    kernel_id_of("Linux version 5.14.0-362.8.1.el9_3.x86_64 (mockbuild@x64-builder01) #1 SMP"): ("rhel9", "5.14.0-362.8.1.el9_3"),
    kernel_id_of("Linux version 4.18.0-513.5.1.el8_9.x86_64 (mockbuild@x86-vm-07) #1 SMP"): ("rhel8", "4.18.0-513.5.1.el8_9"),
    kernel_id_of("Linux version 5.15.0-91-generic (buildd@lcy02-amd64-045) #101-Ubuntu SMP"): ("ubuntu-jammy", "5.15.0-91-generic"),
}
KERNEL_IDS = tuple(KERNELS)

#: a few real CVE ids of kernel bugs (only their form matters here)
SAMPLE_CVES = ("CVE-2024-1086", "CVE-2023-6817", "CVE-2023-4623", "CVE-2023-5717", "CVE-2024-0646")


@dataclass
class PatchArchive:
    """An archive written by :func:`make_archive`; usable wherever a path is (``os.fspath``)."""

    path: Path
    name: str
    released: datetime
    kernels: dict[str, int]
    #: relative path inside ``<NAME>/`` -> sha256 (the real ones, even when ``corrupt="checksum"``)
    files: dict[str, str] = field(default_factory=dict)
    corrupt: str | None = None

    def __fspath__(self) -> str:
        return str(self.path)

    def member(self, rel: str) -> bytes:
        """The bytes of ``<NAME>/<rel>`` as the archive holds them."""
        with tarfile.open(self.path, "r:*") as tar:
            return tar.extractfile(f"{self.name}/{rel}").read()

    def payload(self, kernel_id: str) -> bytes:
        return self.member(f"patches/{kernel_id}/{self.kernels[kernel_id]}/kpatch.bin")


def kpatch_info(kernel_id: str, level: int, released: datetime, cves=SAMPLE_CVES) -> str:
    """A ``kpatch.info`` per protocol.md §5: header, blank line, one block per patch (levels are
    cumulative, so level L lists L patches)."""
    os_name, release = KERNELS.get(kernel_id, ("linux", f"0.0.0-{kernel_id[:8]}"))
    lines = [f"OS: {os_name}", f"kernel: kernel-{release}", f"time: {released:%Y-%m-%d %H:%M:%S}",
             f"uname: {release}.kc{level}", ""]
    for i in range(1, level + 1):
        cve = cves[(i - 1) % len(cves)] if cves else "N/A"
        lines += [
            f"kpatch-name: {os_name}/{release}/patch-{i:03d}.patch",
            f"kpatch-description: fix {i} for {cve}",
            f"kpatch-kernel: kernel-{release}",
            f"kpatch-cve: {cve}",
            f"kpatch-cvss: {'N/A' if cve == 'N/A' else '7.8'}",
            f"kpatch-cve-url: {'N/A' if cve == 'N/A' else 'https://www.cve.org/CVERecord?id=' + cve}",
            f"kpatch-patch-url: https://patches.example.org/{os_name}/{release}/patch-{i:03d}.patch",
            "",
        ]
    return "\n".join(lines)


def _write_random(path: Path, size: int, rng: random.Random) -> None:
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 1 << 20)
            f.write(rng.randbytes(n))
            left -= n


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def _iso(dt: datetime) -> str:
    return dt.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def make_archive(dir, name: str, released: datetime | str, kernels: dict[str, int], *, payload_size: int = 4096,
                 cves=SAMPLE_CVES, corrupt: str | None = None, compression: str = "bz2", product: str = "kernel",
                 seed: int | None = None, changelog: str | None = None,
                 manifest_overrides: dict | None = None, streaming: bool = False) -> PatchArchive:
    """Write ``<dir>/<name>.tar.<compression>`` and return it as a :class:`PatchArchive`.

    ``payload_size``: bytes of each ``kpatch.bin`` (one per kernel).
    ``corrupt``: None, or one of CORRUPTIONS: a wrong checksum, a ``..`` member, a symlink, a hard
    link, a cut-off archive, an absolute path, a member the manifest does not list, a listed file
    that is missing, a device, a FIFO, a member outside ``<name>/``. The bad member comes last, after
    the good files, so an importer has already unpacked those when it finds it.
    ``manifest_overrides``: keys replaced in manifest.json (to write a manifest that lies).
    ``streaming``: for archives of gigabytes: nothing is staged on disk and no file is held in
    memory; each random file is generated twice from its own seed, once for its sha256 in the
    manifest and once into the archive (same members, same order; not with ``corrupt``).
    """
    if corrupt is not None and corrupt not in CORRUPTIONS:
        raise ValueError(f"corrupt must be one of {CORRUPTIONS}")
    if corrupt is not None and streaming:
        raise ValueError("corrupt archives are not written in streaming mode")
    if compression not in ("bz2", "gz"):
        raise ValueError("compression must be bz2 or gz")
    if isinstance(released, str):
        released = datetime.fromisoformat(released)
    if released.tzinfo is not None:
        released = released.astimezone(UTC).replace(tzinfo=None)
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    seed = seed if seed is not None else f"{name}:{sorted(kernels.items())}"
    if streaming:
        return _make_streamed(dir, name, released, kernels, payload_size=payload_size, cves=cves,
                              compression=compression, product=product, seed=seed, changelog=changelog,
                              manifest_overrides=manifest_overrides)
    rng = random.Random(seed)
    staging = Path(tempfile.mkdtemp(prefix="archive-", dir=dir))
    try:
        root = staging / name
        root.mkdir()
        (root / "changelog").write_text(changelog if changelog is not None else _changelog(name, released, kernels, cves))
        for kernel_id, level in kernels.items():
            level_dir = root / "patches" / kernel_id / str(level)
            level_dir.mkdir(parents=True)
            _write_random(level_dir / "kpatch.bin", payload_size, rng)
            (level_dir / "kpatch.info").write_text(kpatch_info(kernel_id, level, released, cves))
            (level_dir / "kpatch.bin.sig").write_bytes(rng.randbytes(256))
        files = {}
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            files[path.relative_to(root).as_posix()] = _sha256(path)
        listed = dict(files)
        first_bin = f"patches/{next(iter(kernels))}/{next(iter(kernels.values()))}/kpatch.bin" if kernels else None
        if corrupt == "checksum":
            good = listed[first_bin]
            listed[first_bin] = ("0" if good[0] != "0" else "1") + good[1:]
        if corrupt == "missing":
            listed["patches/README"] = hashlib.sha256(b"not in the archive").hexdigest()
        manifest = {"name": name, "product": product, "released": _iso(released), "kernels": kernels, "files": listed}
        manifest.update(manifest_overrides or {})
        (root / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        path = dir / f"{name}.tar.{compression}"
        with tarfile.open(path, f"w:{compression}", format=tarfile.PAX_FORMAT, **_COMPRESS[compression]) as tar:
            def add(rel_path: Path) -> None:
                info = tar.gettarinfo(str(rel_path), arcname=rel_path.relative_to(staging).as_posix())
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                if info.isreg():
                    with open(rel_path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
            add(root)
            add(root / "manifest.json")
            add(root / "changelog")
            for p in sorted(root.rglob("*")):
                if p.name not in ("manifest.json", "changelog") or p.parent != root:
                    add(p)
            _add_bad_member(tar, corrupt, name, kernels)
        if corrupt == "truncated":
            size = path.stat().st_size
            with open(path, "r+b") as f:
                f.truncate(int(size * 0.6))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PatchArchive(path=path, name=name, released=released, kernels=dict(kernels), files=files, corrupt=corrupt)


#: what the upstream build uses: gzip at its fastest, bzip2 at its best
_COMPRESS = {"gz": {"compresslevel": 1}, "bz2": {"compresslevel": 9}}


class _RandomStream:
    """``size`` pseudo-random bytes from ``seed``, read like a file: the same bytes on every pass,
    whatever the read sizes (generated in blocks of 1 MiB, so memory stays at one block)."""

    BLOCK = 1 << 20

    def __init__(self, seed: str, size: int):
        self.rng = random.Random(seed)
        self.left = size
        self.block = b""
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.left + len(self.block) - self.pos
        parts = []
        while n > 0:
            if self.pos == len(self.block):
                if self.left <= 0:
                    break
                self.block = self.rng.randbytes(min(self.BLOCK, self.left))
                self.left -= len(self.block)
                self.pos = 0
            take = min(n, len(self.block) - self.pos)
            parts.append(self.block[self.pos:self.pos + take])
            self.pos += take
            n -= take
        return b"".join(parts)


def _make_streamed(dir: Path, name: str, released: datetime, kernels: dict[str, int], *, payload_size: int,
                   cves, compression: str, product: str, seed, changelog: str | None,
                   manifest_overrides: dict | None) -> PatchArchive:
    """:func:`make_archive` without a staging folder: members are described first (a directory, bytes,
    or a random stream of a known size and seed), hashed in a first pass, written in a second."""
    # rel path -> None (a directory), bytes, or (seed, size) of a random file; in the order of make_archive
    members: dict[str, bytes | tuple[str, int] | None] = {
        "changelog": (changelog if changelog is not None else _changelog(name, released, kernels, cves)).encode()}
    tree: dict[str, bytes | tuple[str, int] | None] = {"patches": None}
    for kernel_id, level in kernels.items():
        level_dir = f"patches/{kernel_id}/{level}"
        tree[f"patches/{kernel_id}"] = tree[level_dir] = None
        tree[f"{level_dir}/kpatch.bin"] = (f"{seed}:{level_dir}/kpatch.bin", payload_size)
        tree[f"{level_dir}/kpatch.bin.sig"] = (f"{seed}:{level_dir}/kpatch.bin.sig", 256)
        tree[f"{level_dir}/kpatch.info"] = kpatch_info(kernel_id, level, released, cves).encode()
    members.update(sorted(tree.items(), key=lambda item: Path(item[0])))  # rglob order, as make_archive

    def opened(content):
        return io.BytesIO(content) if isinstance(content, bytes) else _RandomStream(*content)

    files = {}
    for rel, content in members.items():
        if content is not None:
            sha, f = hashlib.sha256(), opened(content)
            while chunk := f.read(_RandomStream.BLOCK):
                sha.update(chunk)
            files[rel] = sha.hexdigest()
    manifest = {"name": name, "product": product, "released": _iso(released), "kernels": kernels, "files": files}
    manifest.update(manifest_overrides or {})
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
    path = dir / f"{name}.tar.{compression}"
    mtime = datetime.now(UTC).timestamp()

    def info(rel: str, size: int | None) -> tarfile.TarInfo:
        member = tarfile.TarInfo(f"{name}/{rel}" if rel else name)
        member.uid = member.gid = 0
        member.uname = member.gname = "root"
        member.mtime = mtime
        if size is None:
            member.type, member.mode = tarfile.DIRTYPE, 0o755
        else:
            member.size, member.mode = size, 0o644
        return member

    with tarfile.open(path, f"w:{compression}", format=tarfile.PAX_FORMAT, copybufsize=_RandomStream.BLOCK,
                      **_COMPRESS[compression]) as tar:
        tar.addfile(info("", None))
        tar.addfile(info("manifest.json", len(manifest_bytes)), io.BytesIO(manifest_bytes))
        for rel, content in members.items():
            if content is None:
                tar.addfile(info(rel, None))
            else:
                tar.addfile(info(rel, len(content) if isinstance(content, bytes) else content[1]), opened(content))
    return PatchArchive(path=path, name=name, released=released, kernels=dict(kernels), files=files)


def _changelog(name: str, released: datetime, kernels: dict[str, int], cves) -> str:
    lines = [f"{name} ({released:%Y-%m-%d})", ""]
    for cve in cves or ["N/A"]:
        lines.append(f"  * {cve}: fixed in every kernel of this patchset")
    lines.append(f"  * {len(kernels)} kernels")
    return "\n".join(lines) + "\n"


def _add_bad_member(tar: tarfile.TarFile, corrupt: str | None, name: str, kernels: dict[str, int]) -> None:
    kernel_id, level = next(iter(kernels.items()))
    level_dir = f"{name}/patches/{kernel_id}/{level}"

    def regular(member_name: str, data: bytes = b"evil\n") -> None:
        info = tarfile.TarInfo(member_name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    def special(member_name: str, kind: bytes, **attrs) -> None:
        info = tarfile.TarInfo(member_name)
        info.type = kind
        for key, value in attrs.items():
            setattr(info, key, value)
        tar.addfile(info)

    if corrupt == "dotdot":
        regular(f"{name}/../evil.txt")
    elif corrupt == "absolute":
        regular("/tmp/eportal-evil.txt")
    elif corrupt == "outside":
        regular("K20990101_01/evil.txt")
    elif corrupt == "unlisted":
        regular(f"{level_dir}/notes.txt", b"not in the manifest\n")
    elif corrupt == "symlink":
        special(f"{level_dir}/kpatch.link", tarfile.SYMTYPE, linkname="/etc/passwd")
    elif corrupt == "hardlink":
        special(f"{level_dir}/kpatch.hard", tarfile.LNKTYPE, linkname=f"{name}/changelog")
    elif corrupt == "device":
        special(f"{level_dir}/kpatch.dev", tarfile.CHRTYPE, devmajor=1, devminor=3)
    elif corrupt == "fifo":
        special(f"{level_dir}/kpatch.fifo", tarfile.FIFOTYPE)


# --- a set of five patchsets --------------------------------------------------------------------

#: (name, released, {kernel: level}) oldest first; names mix the legacy forms with the new one
PLAN = (
    ("01012024_1", "2024-01-01T10:00:00", {KERNEL_IDS[0]: 1, KERNEL_IDS[1]: 1}),
    ("K01022024_1", "2024-02-01T10:00:00", {KERNEL_IDS[0]: 2, KERNEL_IDS[1]: 2, KERNEL_IDS[2]: 1}),
    ("K20240301_01", "2024-03-01T10:00:00", {KERNEL_IDS[0]: 3, KERNEL_IDS[2]: 2}),
    ("K20240401_01", "2024-04-01T10:00:00", {KERNEL_IDS[0]: 4, KERNEL_IDS[1]: 3}),
    ("K20240501_01", "2024-05-01T10:00:00", {KERNEL_IDS[0]: 5, KERNEL_IDS[1]: 4, KERNEL_IDS[2]: 3}),
)


@dataclass
class PatchArchiveSet:
    archives: list[PatchArchive]
    kernel_ids: tuple[str, ...] = KERNEL_IDS

    def __iter__(self):
        return iter(self.archives)

    def __getitem__(self, i: int) -> PatchArchive:
        return self.archives[i]

    def __len__(self) -> int:
        return len(self.archives)

    def latest(self, enabled: int, kernel_id: str) -> int | None:
        """The level ``latest.v2`` answers when the first ``enabled`` patchsets are enabled."""
        levels = [a.kernels[kernel_id] for a in self.archives[:enabled] if kernel_id in a.kernels]
        return max(levels) if levels else None

    def provider(self, enabled: int, kernel_id: str, level: int) -> PatchArchive | None:
        """Which of the first ``enabled`` patchsets carries ``level`` for ``kernel_id``."""
        found = [a for a in self.archives[:enabled] if a.kernels.get(kernel_id) == level]
        return found[-1] if found else None


@pytest.fixture(scope="session")
def patch_archives(tmp_path_factory) -> PatchArchiveSet:
    """Five patchset archives (``.tar.bz2``) of rising levels for three kernels (see PLAN)."""
    base = tmp_path_factory.mktemp("patch-archives")
    archives = [make_archive(base, name, released, kernels, payload_size=8192 + 1000 * i, seed=i)
                for i, (name, released, kernels) in enumerate(PLAN)]
    return PatchArchiveSet(archives)

