"""Simulated servers: realistic, varied agent info generated deterministically from a seed, and the
fleet state file that ``eportal-sim register`` writes and ``eportal-sim checkin`` reads.

The info carries the §4 fields of protocol.md that an agent reports (hostname, euname, release,
version, kernel_id, patch_level, patch_type, tags, uptime, virt, kcare_version, distro,
distro_version, machine, processor). ``kernel_id`` is the sha1 of a synthetic ``/proc/version``
built from the kernel alone, so servers running the same kernel build share a kernel_id, as on a
real fleet.

Generation is sequential from one ``random.Random(seed)`` and nothing depends on ``n``:
``generate_fleet(n + m, seed)[:n] == generate_fleet(n, seed)``.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

STATE_FORMAT = "eportal-sim-fleet/1"


@dataclass
class ServerInfo:
    hostname: str
    distro: str
    distro_version: str
    release: str
    euname: str
    version: str
    kernel_id: str
    machine: str
    processor: str
    virt: str
    kcare_version: str
    uptime: int
    patch_type: str = "default"
    #: -1 = no patches loaded (the portal stores it as none)
    patch_level: int = -1
    #: ``"env:prod;role:web;ubuntu"`` or None (no tags)
    tags: str | None = None

    def params(self, *, tags: bool = True) -> dict[str, str]:
        """The info as request parameters (strings), as an agent sends it."""
        out = {f.name: str(getattr(self, f.name)) for f in fields(self) if f.name != "tags"}
        if tags and self.tags is not None:
            out["tags"] = self.tags
        return out

    @classmethod
    def from_dict(cls, data: dict) -> ServerInfo:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def proc_version(release: str, builder: str, compiler: str, uname_v: str) -> str:
    """The text of ``/proc/version`` for a kernel build (with its trailing newline)."""
    return f"Linux version {release} ({builder}) ({compiler}) {uname_v}\n"


def kernel_id_of(proc_version_text: str) -> str:
    """``sha1(/proc/version bytes)`` as 40 lowercase hex digits (protocol.md §1)."""
    return hashlib.sha1(proc_version_text.encode()).hexdigest()


# --- the distributions ------------------------------------------------------------------------

@dataclass(frozen=True)
class Kernel:
    base: str       # release without the flavour/arch suffix: "5.15.0-91", "4.18.0-513.5.1.el8_9"
    uname_v: str    # `uname -v`
    distro_version: str | None = None  # when the kernel pins a minor release (EL: 8.9, 9.3)


@dataclass(frozen=True)
class Distro:
    name: str          # as reported in `distro`
    tag: str           # a plain tag and the family key ("ubuntu", "rhel", ...)
    version: str       # major version as reported in `distro_version`
    weight: int
    kernels: tuple[Kernel, ...]
    arches: tuple[str, ...]
    builder: str       # user@host of /proc/version; {arch} is amd64/arm64, {n} a build-host number
    compiler: str

    def release(self, kernel: Kernel, machine: str) -> str:
        if self.tag == "ubuntu":
            return f"{kernel.base}-generic"
        if self.tag == "debian":
            return f"{kernel.base}-{'amd64' if machine == 'x86_64' else 'arm64'}"
        return f"{kernel.base}.{machine}"  # EL, CentOS, Amazon Linux: "...el9_3.x86_64"

    def proc_version(self, kernel: Kernel, machine: str) -> str:
        release = self.release(kernel, machine)
        n = 10 + sum(release.encode()) % 80  # a stable "build host" per kernel
        builder = self.builder.format(arch="amd64" if machine == "x86_64" else "arm64", n=n)
        return proc_version(release, builder, self.compiler.format(machine=machine), kernel.uname_v)


_UBUNTU_GCC = {
    "20.04": "gcc (Ubuntu 9.4.0-1ubuntu1~20.04.2) 9.4.0, GNU ld (GNU Binutils for Ubuntu) 2.34",
    "22.04": "gcc (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0, GNU ld (GNU Binutils for Ubuntu) 2.38",
    "24.04": "{machine}-linux-gnu-gcc-13 (Ubuntu 13.2.0-23ubuntu4) 13.2.0, GNU ld (GNU Binutils for Ubuntu) 2.42",
}
_EL8_GCC = "gcc version 8.5.0 20210514 (Red Hat 8.5.0-20) (GCC)"
_EL9_GCC = "gcc (GCC) 11.4.1 20230605 (Red Hat 11.4.1-2), GNU ld version 2.35.2-42.el9"
_EL8 = (Kernel("4.18.0-477.27.1.el8_8", "#1 SMP Wed Sep 20 15:55:39 UTC 2023", "8.8"),
        Kernel("4.18.0-513.5.1.el8_9", "#1 SMP Fri Nov 17 03:31:10 UTC 2023", "8.9"),
        Kernel("4.18.0-513.24.1.el8_9", "#1 SMP Thu Mar 14 14:20:09 UTC 2024", "8.9"),
        Kernel("4.18.0-553.el8_10", "#1 SMP Fri May 10 15:19:13 UTC 2024", "8.10"))
_EL9 = (Kernel("5.14.0-362.8.1.el9_3", "#1 SMP PREEMPT_DYNAMIC Tue Nov 7 14:54:22 EST 2023", "9.3"),
        Kernel("5.14.0-362.24.1.el9_3", "#1 SMP PREEMPT_DYNAMIC Thu Apr 4 22:31:43 UTC 2024", "9.3"),
        Kernel("5.14.0-427.13.1.el9_4", "#1 SMP PREEMPT_DYNAMIC Wed May 1 19:11:28 UTC 2024", "9.4"))
_BOTH = ("x86_64", "aarch64")

DISTROS: tuple[Distro, ...] = (
    Distro("Ubuntu", "ubuntu", "20.04", 12,
           (Kernel("5.4.0-166", "#183-Ubuntu SMP Mon Oct 2 11:28:33 UTC 2023"),
            Kernel("5.4.0-169", "#187-Ubuntu SMP Thu Nov 23 14:52:28 UTC 2023"),
            Kernel("5.4.0-172", "#190-Ubuntu SMP Fri Feb 2 23:24:22 UTC 2024")),
           _BOTH, "buildd@lcy02-{arch}-0{n}", _UBUNTU_GCC["20.04"]),
    Distro("Ubuntu", "ubuntu", "22.04", 20,
           (Kernel("5.15.0-88", "#98-Ubuntu SMP Mon Oct 2 15:18:56 UTC 2023"),
            Kernel("5.15.0-91", "#101-Ubuntu SMP Tue Nov 14 13:30:08 UTC 2023"),
            Kernel("5.15.0-97", "#107-Ubuntu SMP Wed Feb 7 13:26:48 UTC 2024")),
           _BOTH, "buildd@lcy02-{arch}-0{n}", _UBUNTU_GCC["22.04"]),
    Distro("Ubuntu", "ubuntu", "24.04", 8,
           (Kernel("6.8.0-31", "#31-Ubuntu SMP PREEMPT_DYNAMIC Sat Apr 20 00:40:06 UTC 2024"),
            Kernel("6.8.0-35", "#35-Ubuntu SMP PREEMPT_DYNAMIC Mon May 20 15:51:52 UTC 2024"),
            Kernel("6.8.0-41", "#41-Ubuntu SMP PREEMPT_DYNAMIC Fri Aug  2 20:41:06 UTC 2024")),
           _BOTH, "buildd@bos03-{arch}-0{n}", _UBUNTU_GCC["24.04"]),
    Distro("Red Hat Enterprise Linux", "rhel", "8", 6, _EL8, _BOTH,
           "mockbuild@x86-vm-{n}.build.eng.bos.redhat.com", _EL8_GCC),
    Distro("Red Hat Enterprise Linux", "rhel", "9", 6, _EL9, _BOTH,
           "mockbuild@x86-vm-{n}.build.eng.bos.redhat.com", _EL9_GCC),
    Distro("AlmaLinux", "almalinux", "8", 6, _EL8, _BOTH, "mockbuild@{arch}-builder{n}.almalinux.org", _EL8_GCC),
    Distro("AlmaLinux", "almalinux", "9", 6, _EL9, _BOTH, "mockbuild@{arch}-builder{n}.almalinux.org", _EL9_GCC),
    Distro("Rocky Linux", "rocky", "8", 5, _EL8, _BOTH,
           "mockbuild@iad1-prod-build0{n}.bld.equ.rockylinux.org", _EL8_GCC),
    Distro("Rocky Linux", "rocky", "9", 5, _EL9, _BOTH,
           "mockbuild@iad1-prod-build0{n}.bld.equ.rockylinux.org", _EL9_GCC),
    Distro("Debian GNU/Linux", "debian", "11", 5,
           (Kernel("5.10.0-26", "#1 SMP Debian 5.10.197-1 (2023-09-29)"),
            Kernel("5.10.0-28", "#1 SMP Debian 5.10.209-2 (2024-01-31)")),
           _BOTH, "debian-kernel@lists.debian.org",
           "gcc-10 (Debian 10.2.1-6) 10.2.1 20210110, GNU ld (GNU Binutils for Debian) 2.35.2"),
    Distro("Debian GNU/Linux", "debian", "12", 8,
           (Kernel("6.1.0-13", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 (2023-09-29)"),
            Kernel("6.1.0-17", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.69-1 (2023-12-30)"),
            Kernel("6.1.0-21", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.90-1 (2024-05-03)")),
           _BOTH, "debian-kernel@lists.debian.org",
           "gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40"),
    Distro("CentOS Linux", "centos", "7", 7,
           (Kernel("3.10.0-1160.el7", "#1 SMP Mon Oct 19 16:18:59 UTC 2020"),
            Kernel("3.10.0-1160.105.1.el7", "#1 SMP Thu Dec 7 15:39:45 UTC 2023"),
            Kernel("3.10.0-1160.119.1.el7", "#1 SMP Tue Jun 4 14:43:51 UTC 2024")),
           ("x86_64",), "mockbuild@kbuilder.bsys.centos.org", "gcc version 4.8.5 20150623 (Red Hat 4.8.5-44) (GCC)"),
    Distro("Amazon Linux", "amzn", "2", 6,
           (Kernel("4.14.336-257.562.amzn2", "#1 SMP Sat Feb 24 09:50:35 UTC 2024"),
            Kernel("5.10.205-195.807.amzn2", "#1 SMP Tue Jan 16 18:28:59 UTC 2024"),
            Kernel("5.10.215-203.850.amzn2", "#1 SMP Tue Apr 23 20:32:19 UTC 2024")),
           _BOTH, "mockbuild@ip-10-0-1-{n}", "gcc10-gcc (GCC) 10.5.0 20230707 (Red Hat 10.5.0-1), GNU ld version 2.35.2-9.amzn2.0.1"),
)

ROLES = (("web", 25), ("app", 20), ("k8s-node", 15), ("db", 10), ("cache", 6), ("lb", 4), ("mq", 4),
         ("ci", 4), ("mail", 3), ("mon", 3), ("build", 3), ("dns", 3))
DATACENTERS = ("dc1", "dc2", "dc3", "dc4")
DOMAIN = "example.net"
TEAMS = ("platform", "payments", "data", "search", "identity", "infra", "mobile")
X86_CPUS = ("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
            "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz", "Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz",
            "AMD EPYC 7763 64-Core Processor", "AMD EPYC 9654 96-Core Processor", "AMD EPYC 7R13 Processor")
ARM_CPUS = ("Neoverse-N1", "AWS Graviton2", "AWS Graviton3", "Ampere Altra Q80-30")
VIRTS = (("kvm", 45), ("vmware", 20), ("none", 20), ("hyperv", 10), ("xen", 5))
KCARE_VERSIONS = ("2.78-1", "2.81-1", "2.83-2", "2.85-1", "2.86-1", "2.88-1")
PATCH_TYPES = (("default", 85), ("extra", 10), ("free", 5))
PATCH_LEVELS = ((-1, 10), (1, 10), (2, 20), (3, 30), (4, 20), (5, 10))


def _pick(rng: random.Random, weighted):
    values = [v for v, _ in weighted]
    return rng.choices(values, weights=[w for _, w in weighted])[0]


def _tags(rng: random.Random, role: str, distro: Distro) -> str:
    tags = [f"env:{_pick(rng, (('prod', 70), ('staging', 25), ('dev', 5)))}", f"role:{role}"]
    if rng.random() < 0.6:
        tags.append(f"team:{rng.choice(TEAMS)}")
    if rng.random() < 0.5:
        tags.append(distro.tag)
    if rng.random() < 0.1:
        tags.append("pci")
    return ";".join(tags)


def generate_fleet(n: int, seed: int = 1, *, tags_ratio: float = 0.5) -> list[ServerInfo]:
    """``n`` servers with varied, consistent info; the same ``(n, seed, tags_ratio)`` gives the same fleet."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if not 0.0 <= tags_ratio <= 1.0:
        raise ValueError("tags_ratio must be between 0 and 1")
    rng = random.Random(seed)
    distro_weights = [(d, d.weight) for d in DISTROS]
    counters: dict[str, int] = {}
    servers = []
    for _ in range(n):
        role = _pick(rng, ROLES)
        counters[role] = counters.get(role, 0) + 1
        hostname = f"{role}-{counters[role]:03d}.{rng.choice(DATACENTERS)}.{DOMAIN}"
        distro = _pick(rng, distro_weights)
        kernel = rng.choice(distro.kernels)
        machine = "aarch64" if "aarch64" in distro.arches and rng.random() < 0.15 else "x86_64"
        release = distro.release(kernel, machine)
        if machine == "aarch64":
            virt = _pick(rng, (("kvm", 70), ("none", 30)))
            processor = rng.choice(ARM_CPUS)
        else:
            virt = _pick(rng, (("xen", 30), ("kvm", 70))) if distro.tag == "amzn" else _pick(rng, VIRTS)
            processor = rng.choice(X86_CPUS)
        uptime = 300 + int(rng.expovariate(1 / (30 * 86400)))
        servers.append(ServerInfo(
            hostname=hostname, distro=distro.name, distro_version=kernel.distro_version or distro.version,
            release=release, euname=release, version=kernel.uname_v,
            kernel_id=kernel_id_of(distro.proc_version(kernel, machine)),
            machine=machine, processor=processor, virt=virt, kcare_version=rng.choice(KCARE_VERSIONS),
            uptime=uptime, patch_type=_pick(rng, PATCH_TYPES), patch_level=_pick(rng, PATCH_LEVELS),
            tags=_tags(rng, role, distro) if rng.random() < tags_ratio else None))
    return servers


# --- the state file ---------------------------------------------------------------------------

@dataclass
class SimServer:
    """A registered simulated server: its identity and its info."""
    server_id: str
    info: ServerInfo


class StateError(Exception):
    pass


def save_state(path: str | os.PathLike, servers: list[SimServer], **meta) -> None:
    """Write the fleet as JSON to a temporary file in the same folder, then rename it into place."""
    path = Path(path)
    doc = {"format": STATE_FORMAT, "created": datetime.now(UTC).isoformat(timespec="seconds"), **meta,
           "servers": [{"server_id": s.server_id, "info": asdict(s.info)} for s in servers]}
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_state(path: str | os.PathLike) -> tuple[list[SimServer], dict]:
    """The servers and the metadata (``url``, ``seed``, ...) of a state file; StateError when unusable."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise StateError(f"{path}: no such file (run `eportal-sim register` first)") from None
    except (OSError, ValueError) as exc:
        raise StateError(f"{path}: cannot read the fleet state: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
        raise StateError(f"{path}: not an eportal-sim fleet file (format {STATE_FORMAT})")
    try:
        servers = [SimServer(s["server_id"], ServerInfo.from_dict(s["info"])) for s in doc["servers"]]
    except (KeyError, TypeError) as exc:
        raise StateError(f"{path}: malformed server entry ({exc})") from None
    meta = {k: v for k, v in doc.items() if k != "servers"}
    return servers, meta
