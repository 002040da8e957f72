"""The commands as an admin types them (subprocesses of this venv's ``kc.eportal`` and ``eportal``
against a real ``eportal serve`` and the test upstream), on SQLite and PostgreSQL: patch-source
set/--show/--check, --get-latest, --unroll [--feed], kcare deploy/unroll/list, one-line errors."""
from __future__ import annotations

import pytest
from patch_source_helpers import agent_get, offer, register_agent

from eportal_core.testing.patches import KERNEL_IDS, make_archive

pytestmark = pytest.mark.e2e
K0 = KERNEL_IDS[0]


def ok(server, *args, program="kc.eportal", input=None) -> str:
    result = server.run_cli(program, *args, check=False, input=input)
    assert result.returncode == 0, f"{program} {' '.join(args)}: {result.stdout}{result.stderr}"
    assert result.stderr == "", result.stderr  # no progress bar without a terminal, no warnings
    return result.stdout


def fails(server, *args, code=1, program="kc.eportal") -> str:
    result = server.run_cli(program, *args, check=False)
    assert result.returncode == code, f"{result.stdout}{result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr.strip()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_commands(backend, start_ps_server, upstream, upstream_archives, tmp_path):
    server = start_ps_server(backend)
    good = upstream_archives.good
    names = [a.name for a in good]
    password = upstream.password

    # --- access info ---------------------------------------------------------------------
    assert ok(server, "patch-source").startswith("no patch source configured")
    out = ok(server, "patch-source", "--url", upstream.url, "--user", upstream.login, "--password", password)
    assert out == f"patch source set: http {upstream.url} (login {upstream.login}, password set)\n"
    shown = ok(server, "patch-source", "--show", program="eportal")
    assert password not in shown
    assert shown.splitlines()[:4] == ["type:      http", f"url:       {upstream.url}",
                                      f"login:     {upstream.login}", "password:  (set)"]
    assert fails(server, "patch-source", "--url", "ftp://patches.example.com") == \
        "error: the URL must start with http:// or https:// and name a host"
    assert fails(server, "patch-source", "--type", "directory", "--path", str(tmp_path / "nope")) == \
        f"error: the folder {tmp_path / 'nope'} does not exist (or is not a folder)"
    # the password from stdin (kept out of the process list)
    ok(server, "patch-source", "--password", "-", input="Wrong-Pass-1\n")
    offer(upstream, good[:3])
    assert fails(server, "--get-latest") == \
        f"error: the source refused the login (HTTP 401 at {upstream.url}/patchsets.json): check the login and password"
    ok(server, "patch-source", "--password", "-", input=password + "\n")
    assert "Wrong-Pass-1" not in ok(server, "patch-source") and password not in ok(server, "patch-source")

    # --- --get-latest: download what is new, deploy the newest to main ----------------------
    out = ok(server, "--get-latest")
    assert out.splitlines() == [f"downloaded {n}" for n in names[:3]] + [f"enabled on main: {', '.join(names[:3])}"]
    ok(server, "key", "-a", "cli-key")
    agent = register_agent(server, "cli-key", "cli-agent")
    assert agent_get(server, f"/{K0}/latest.v2", agent) == (200, str(good[2].kernels[K0]).encode())
    offer(upstream, good[3:])
    assert ok(server, "--get-latest").splitlines()[-1] == f"enabled on main: {names[3]}, {names[4]}"
    assert ok(server, "--get-latest") == f"main is up to date (kernel: {names[4]} is the newest)\n"
    status, body = agent_get(server, f"/{K0}/{good[4].kernels[K0]}/kpatch.bin", agent)
    assert (status, body) == (200, good[4].payload(K0))

    # --- --unroll NAME [--feed F] -----------------------------------------------------------
    assert ok(server, "--unroll", names[3]) == f"rolled back on main: {names[3]}, {names[4]}\n"
    assert agent_get(server, f"/{K0}/latest.v2", agent) == (200, str(good[2].kernels[K0]).encode())
    assert ok(server, "--unroll", names[3]) == f"{names[3]} was not enabled on main: nothing to roll back\n"
    assert fails(server, "--unroll", names[1], "--feed", "nope") == "error: feed 'nope' does not exist"
    usage = server.run_cli("kc.eportal", "--feed", "main", check=False)
    assert usage.returncode == 2 and usage.stderr.splitlines()[-1] == "Error: --feed goes with --unroll"
    assert fails(server, "--unroll", "K20990101_01") == "error: there is no patchset named 'K20990101_01'"

    # --- kcare deploy / unroll / list (air-gapped sites) --------------------------------------
    extra = make_archive(tmp_path, "K20240601_01", "2024-06-01T10:00:00", {K0: 7})
    out = ok(server, "kcare", "deploy", str(extra.path))
    assert out.splitlines() == ["imported K20240601_01", f"enabled on main: {names[3]}, {names[4]}, K20240601_01"]
    assert agent_get(server, f"/{K0}/latest.v2", agent) == (200, b"7")
    later = make_archive(tmp_path, "K20240701_01", "2024-07-01T10:00:00", {K0: 8})
    assert ok(server, "kcare", "deploy", "--disabled", str(later.path), program="eportal") == "imported K20240701_01\n"
    assert agent_get(server, f"/{K0}/latest.v2", agent) == (200, b"7")
    listing = ok(server, "kcare", "list").splitlines()
    assert listing[0].split() == ["Patchset", "Released", "Status", "on", "main"]
    assert [line.split()[0] for line in listing[1:]] == names + ["K20240601_01", "K20240701_01"]
    assert [line.split()[-1] for line in listing[1:]] == ["enabled"] * 6 + ["undeployed"]
    bad = make_archive(tmp_path / "bad", "K20240801_01", "2024-08-01T10:00:00", {K0: 9}, corrupt="dotdot")
    assert fails(server, "kcare", "deploy", str(bad.path)) == \
        "error: member 'K20240801_01/../evil.txt' climbs out of its folder with '..'"
    assert fails(server, "kcare", "deploy", str(tmp_path / "missing.tar.bz2")) == \
        f"error: {tmp_path / 'missing.tar.bz2'} is not a file"
    assert fails(server, "kcare", "deploy", "--feed", "nope", str(later.path)) == "error: feed 'nope' does not exist"

    assert ok(server, "kcare", "unroll", "K20240601_01") == "rolled back on main: K20240601_01\n"
    assert agent_get(server, f"/{K0}/latest.v2", agent) == (200, str(good[4].kernels[K0]).encode())
    out = ok(server, "kcare", "unroll", "--delete", "K20240701_01")
    assert out == ("K20240701_01 was not enabled on any feed\n"
                   "deleted K20240701_01 (files and rows); polls will not fetch it again\n")
    assert not (server.data_dir / "patches" / "K20240701_01").exists()
    assert "K20240701_01" not in ok(server, "kcare", "list")

    # --- --check: a corrupted archive upstream is refused, one line each, exit 1 ---------------
    upstream.add(upstream_archives.corrupt["symlink"])
    result = server.run_cli("kc.eportal", "patch-source", "--check", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    name = upstream_archives.corrupt["symlink"].name
    assert result.stderr.startswith(f"error: {name}: {name} was refused: member ")
    assert "is a symbolic link" in result.stderr
    assert "last poll:" in ok(server, "patch-source") and "1 patchset(s) failed" in ok(server, "patch-source")

    # --- --get-latest never deploys past a patchset it could not download ----------------------
    upstream.remove(name)  # the refused one above is withdrawn upstream: the next poll forgets it
    gap = make_archive(tmp_path / "gap", "K20241101_01", "2024-11-01T10:00:00", {K0: 11})
    after = make_archive(tmp_path / "gap", "K20241201_01", "2024-12-01T10:00:00", {K0: 12})
    upstream.add(gap, sha256="f" * 64)  # announced with a checksum its archive does not have
    upstream.add(after)
    result = server.run_cli("kc.eportal", "--get-latest", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: K20241101_01: ")
    lines = result.stdout.splitlines()
    assert "downloaded K20241201_01" in lines
    assert lines[-1] == "not enabled yet: K20241201_01 (they come after K20241101_01, which is not downloaded)"
    assert agent_get(server, f"/{K0}/latest.v2", agent)[1] != b"12"
