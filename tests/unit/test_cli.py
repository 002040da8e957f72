"""The real console scripts (``eportal`` and ``kc.eportal``) run as subprocesses.

Each test gets its own data dir (``EPORTAL_DATA_DIR``) next to the checkout's development.ini;
most start from a copy of one ``eportal init``-ed site, so only the init test pays for migrating.
"""
from __future__ import annotations

import os
import pty
import select
import shutil
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from eportal_core import testing
from eportal_core.services.passwords import verify_password

ROOT = Path(__file__).resolve().parents[2]
DEV_INI = ROOT / "development.ini"
BIN = Path(sys.executable).parent
EPORTAL = BIN / "eportal"
KC = BIN / "kc.eportal"

LIST_AFTER_ADD = "Num | Username\n--- + --------------------------------\n 1 | admin\n 2 | user\n"


def base_env(data_dir: Path, ini: Path | None = DEV_INI) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("EPORTAL_", "PYTHONWARNINGS", "COLUMNS"))}
    env["EPORTAL_DATA_DIR"] = str(data_dir)
    if ini is not None:
        env["EPORTAL_INI"] = str(ini)
    env["COLUMNS"] = "100"
    return env


def run(script: Path, *args: str, data_dir: Path, ini: Path | None = DEV_INI, stdin: str | None = None,
        expect: int | None = 0, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(script), *args], env=dict(base_env(data_dir, ini), **(extra_env or {})),
                          input=stdin if stdin is not None else "",
                          capture_output=True, text=True, timeout=60, start_new_session=True)
    if expect is not None:
        assert proc.returncode == expect, f"{script.name} {args}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def run_all(*calls: tuple) -> list[subprocess.CompletedProcess]:
    """Run independent invocations ``(script, args, kwargs)`` side by side (each costs ~1 s of imports)."""
    with ThreadPoolExecutor(max_workers=max(2, 2 * (os.cpu_count() or 1))) as pool:
        futures = [pool.submit(run, script, *args, **kw) for script, args, kw in calls]
        return [f.result() for f in futures]


def kc(*args, data_dir, **kw):
    return run(KC, *args, data_dir=data_dir, **kw)


def eportal(*args, data_dir, **kw):
    return run(EPORTAL, *args, data_dir=data_dir, **kw)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str, code: int | None = None) -> str:
    assert proc.returncode != 0, proc.stdout
    if code is not None:
        assert proc.returncode == code
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def password_hash(data_dir: Path, username: str, url: str | None = None) -> str | None:
    engine = sa.create_engine(url or f"sqlite:///{data_dir}/eportal.sqlite")
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.text("SELECT password_hash FROM users WHERE username = :u"), {"u": username})
    finally:
        engine.dispose()


def user_rows(data_dir: Path, url: str | None = None) -> list[tuple]:
    engine = sa.create_engine(url or f"sqlite:///{data_dir}/eportal.sqlite")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text("SELECT id, username, readonly FROM users ORDER BY id"))]
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def initialized_site(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("site-template")
    proc = eportal("init", data_dir=data_dir)
    assert proc.stdout.startswith("admin password: ")
    return data_dir


@pytest.fixture
def site(initialized_site, tmp_path) -> Path:
    """A data dir with a migrated database holding only 'admin' (a copy of the template)."""
    data_dir = tmp_path / "data"
    shutil.copytree(initialized_site, data_dir)
    return data_dir


# --- eportal init -----------------------------------------------------------------------------

def test_init_prints_the_admin_password_once_and_stores_it_privately(tmp_path):
    data_dir = tmp_path / "data"
    first = eportal("init", data_dir=data_dir)
    lines = first.stdout.splitlines()
    assert lines[0].startswith("admin password: ")
    password = lines[0].removeprefix("admin password: ")
    assert len(password) == 20 and password.isalnum()
    assert first.stdout.count(password) == 1
    assert password not in first.stderr

    stored = data_dir / "initial-admin-password"
    assert stored.read_text() == f"admin password: {password}\n"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert verify_password(password_hash(data_dir, "admin"), password)
    assert sorted(p.name for p in data_dir.iterdir() if p.is_dir()) == ["config", "logs", "patches"]
    assert not [p for p in data_dir.iterdir() if p.name.startswith(".initial-admin-password")]  # no temp file left

    second = eportal("init", data_dir=data_dir)
    assert "admin password" not in second.stdout
    assert second.stdout.strip() == "database ready; users exist already"
    assert stored.read_text() == f"admin password: {password}\n"  # not replaced
    assert user_rows(data_dir) == [(1, "admin", False)]


# --- kc.eportal, the documented flags -----------------------------------------------------------

def test_kc_eportal_documented_session(site):
    assert kc("-a", "user", "-p", "User-Pass-123", data_dir=site).stdout == "User 'user' added\n"
    assert kc("-l", data_dir=site).stdout == LIST_AFTER_ADD

    assert kc("-r", "user", data_dir=site).stdout == "User 'user' is now readonly\n"
    assert user_rows(site)[1] == (2, "user", True)

    old_hash = password_hash(site, "user")
    assert verify_password(old_hash, "User-Pass-123")
    assert kc("-c", "user", "-p", "Brand-New-456", data_dir=site).stdout == "Password for user 'user' changed\n"
    new_hash = password_hash(site, "user")
    assert verify_password(new_hash, "Brand-New-456")
    assert not verify_password(new_hash, "User-Pass-123")

    assert kc("-d", "user", data_dir=site).stdout == "User 'user' deleted\n"
    assert user_rows(site) == [(1, "admin", False)]
    assert kc("-l", data_dir=site).stdout == "Num | Username\n--- + --------------------------------\n 1 | admin\n"


def test_kc_eportal_add_readonly_and_long_options(site):
    out = kc("--add-user", "viewer", "--password", "Viewer-Pass-1", "-r", data_dir=site).stdout
    assert out == "User 'viewer' added (readonly)\n"
    assert user_rows(site)[1] == (2, "viewer", True)
    kc("--change-password", "viewer", "--password", "Viewer-Pass-2", data_dir=site)
    assert verify_password(password_hash(site, "viewer"), "Viewer-Pass-2")
    kc("--delete-user", "viewer", data_dir=site)
    assert [r[1] for r in user_rows(site)] == ["admin"]


ERRORS = [
    (("-a", "admin", "-p", "Another-Pass-1"), "error: user 'admin' already exists"),
    (("-d", "nobody"), "error: user 'nobody' does not exist"),
    (("-c", "nobody", "-p", "Another-Pass-1"), "error: user 'nobody' does not exist"),
    (("-r", "nobody"), "error: user 'nobody' does not exist"),
    (("-a", "weak", "-p", "short"), "error: password is too short: use at least 10 characters"),
    (("-a", "weak", "-p", "aaaaaaaaaaaa"), "error: password is too simple"),
    (("-a", "bad name", "-p", "Another-Pass-1"), "error: invalid user name 'bad name'"),
    (("-d", "admin"), "error: cannot delete 'admin': it is the last admin user"),
    (("-r", "admin"), "error: cannot make read-only 'admin': it is the last admin user"),
]


def test_kc_eportal_errors_are_one_line(site):
    results = run_all(*((KC, args, {"data_dir": site, "expect": None}) for args, _ in ERRORS))
    for (args, fragment), proc in zip(ERRORS, results):
        assert_one_line_error(proc, fragment, code=1)
        assert proc.stdout == "", args
    assert user_rows(site) == [(1, "admin", False)]  # nothing changed


def test_kc_eportal_usage_errors(site):
    both, stray_password = run_all((KC, ("-l", "-d", "admin"), {"data_dir": site, "expect": None}),
                                   (KC, ("-l", "-p", "Some-Pass-123"), {"data_dir": site, "expect": None}))
    assert both.returncode == 2
    assert "use one action at a time (got -l, -d)" in both.stderr
    assert "Traceback" not in both.stderr
    proc = stray_password
    assert proc.returncode == 2
    assert "-p/--password goes with -a/--add-user or -c/--change-password" in proc.stderr
    assert user_rows(site) == [(1, "admin", False)]


def test_bad_ini_path(site, tmp_path):
    missing = tmp_path / "missing.ini"
    results = run_all((KC, ("--ini", str(missing), "-l"), {"data_dir": site, "expect": None}),
                      (EPORTAL, ("--ini", str(missing), "user", "list"), {"data_dir": site, "expect": None}),
                      (KC, ("-l",), {"data_dir": site, "ini": missing, "expect": None}))  # via EPORTAL_INI
    for proc in results:
        assert_one_line_error(proc, f"error: ini file {missing} does not exist", "EPORTAL_INI", code=2)


def test_bad_or_unknown_setting_in_the_ini(site, tmp_path):
    ini = tmp_path / "site.ini"
    ini.write_text(DEV_INI.read_text().replace("[app:main]\n", "[app:main]\neportal.session.idle_minutes = abc\n", 1))
    typo = tmp_path / "typo.ini"
    typo.write_text(DEV_INI.read_text().replace("[app:main]\n", "[app:main]\neportal.sesion.idle_minutes = 5\n", 1))
    *bad, unknown = run_all(*((script, args, {"data_dir": site, "ini": ini, "expect": None})
                             for script, args in ((KC, ("--ini", str(ini), "-l")),
                                                  (EPORTAL, ("--ini", str(ini), "user", "list")),
                                                  (EPORTAL, ("init",)),  # via EPORTAL_INI
                                                  # plugins' commands are not loaded: not "No such command"
                                                  (EPORTAL, ("a-plugin-command",)))),
                            (KC, ("-l",), {"data_dir": site, "ini": typo, "expect": None}))
    for proc in bad:
        line = assert_one_line_error(proc, code=2)
        assert line == ("error: setting eportal.session.idle_minutes = 'abc' is not valid: "
                        "expected a whole number from 1 to 1440")
    assert_one_line_error(unknown, "error: unknown setting 'eportal.sesion.idle_minutes'", code=2)


def test_unmigrated_database_is_one_line(tmp_path):
    proc = kc("-l", data_dir=tmp_path / "empty", expect=None)
    assert_one_line_error(proc, "error: database error", "run 'eportal migrate'", code=3)


def test_missing_password_is_prompted_from_stdin(site):
    proc = kc("-a", "user", data_dir=site, stdin="Typed-Pass-123\nTyped-Pass-123\n")
    assert "User 'user' added" in proc.stdout
    assert "Typed-Pass-123" not in proc.stdout + proc.stderr
    assert "Password for 'user'" in proc.stdout + proc.stderr
    assert verify_password(password_hash(site, "user"), "Typed-Pass-123")

    proc = kc("-c", "user", data_dir=site, stdin="Other-Pass-456\nOther-Pass-456\n")
    assert "Password for user 'user' changed" in proc.stdout
    assert verify_password(password_hash(site, "user"), "Other-Pass-456")


def test_prompt_confirmation_mismatch_adds_nobody(site):
    proc = kc("-a", "user", data_dir=site, stdin="Typed-Pass-123\nTyped-Pass-999\n", expect=None)
    assert proc.returncode != 0
    assert "do not match" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert [r[1] for r in user_rows(site)] == ["admin"]


def _read_until(fd: int, needle: bytes, buf: bytearray, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while needle not in buf:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out waiting for {needle!r}; got {bytes(buf)!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            assert chunk, f"process closed the terminal before {needle!r}; got {bytes(buf)!r}"
            buf.extend(chunk)


def test_password_prompt_on_a_terminal_does_not_echo(site):
    """On a real (pseudo) terminal the typed password must not be echoed back."""
    import fcntl
    import termios

    master, slave = pty.openpty()

    def controlling_tty():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([str(KC), "-a", "user"], stdin=slave, stdout=slave, stderr=slave,
                            env=base_env(site), preexec_fn=controlling_tty, close_fds=True)
    os.close(slave)
    out = bytearray()
    try:
        _read_until(master, b"Password for 'user': ", out)
        os.write(master, b"Tty-Secret-789\n")
        _read_until(master, b"Repeat for confirmation: ", out)
        os.write(master, b"Tty-Secret-789\n")
        _read_until(master, b"added", out)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert b"Tty-Secret-789" not in out
    assert verify_password(password_hash(site, "user"), "Tty-Secret-789")


def test_kc_eportal_help_shows_the_documented_flags(site):
    for proc in run_all((KC, ("-h",), {"data_dir": site}), (KC, ("--help",), {"data_dir": site}),
                        (KC, (), {"data_dir": site})):  # no arguments at all: the help too
        out = proc.stdout
        assert out.startswith("Usage: kc.eportal [OPTIONS]")
        for short, long, doc in (("-l", "--list-users", "list all users"), ("-a", "--add-user", "add a user"),
                                 ("-d", "--delete-user", "delete a user"),
                                 ("-c", "--change-password", "change a user password"),
                                 ("-p", "--password", "provide a password for a user"),
                                 ("-r", "--readonly", "read-only"), ("-h", "--help", "")):
            line = next((ln for ln in out.splitlines() if ln.strip().startswith(f"{short}, {long}")), None)
            assert line is not None, f"{short}, {long} missing from:\n{out}"
            assert doc in line


# --- eportal user ... ---------------------------------------------------------------------------

def test_eportal_user_subcommands(site):
    assert eportal("user", "add", "user", "-p", "User-Pass-123", data_dir=site).stdout == "User 'user' added\n"
    assert eportal("user", "list", data_dir=site).stdout == LIST_AFTER_ADD
    assert eportal("user", "readonly", "user", data_dir=site).stdout == "User 'user' is now readonly\n"
    assert user_rows(site)[1] == (2, "user", True)
    assert eportal("user", "readonly", "--off", "user", data_dir=site).stdout == "User 'user' is now admin\n"
    assert user_rows(site)[1] == (2, "user", False)
    assert eportal("user", "passwd", "user", "-p", "Brand-New-456", data_dir=site).stdout == \
        "Password for user 'user' changed\n"
    assert verify_password(password_hash(site, "user"), "Brand-New-456")
    assert eportal("user", "delete", "user", data_dir=site).stdout == "User 'user' deleted\n"
    assert user_rows(site) == [(1, "admin", False)]


def test_eportal_user_add_readonly_prompted(site):
    proc = eportal("user", "add", "viewer", "--readonly", data_dir=site, stdin="Viewer-Pass-1\nViewer-Pass-1\n")
    assert "User 'viewer' added (readonly)" in proc.stdout
    assert user_rows(site)[1] == (2, "viewer", True)


def test_eportal_user_errors_are_one_line(site):
    cases = ((("user", "add", "admin", "-p", "Another-Pass-1"), "error: user 'admin' already exists"),
             (("user", "delete", "nobody"), "error: user 'nobody' does not exist"),
             (("user", "passwd", "admin", "-p", "short"), "error: password is too short"),
             (("user", "delete", "admin"), "error: cannot delete 'admin': it is the last admin"))
    results = run_all(*((EPORTAL, args, {"data_dir": site, "expect": None}) for args, _ in cases))
    for (_, fragment), proc in zip(cases, results):
        assert_one_line_error(proc, fragment, code=1)


def test_eportal_help(site):
    top, user = run_all((EPORTAL, ("-h",), {"data_dir": site}), (EPORTAL, ("user", "--help"), {"data_dir": site}))
    for command in ("init", "migrate", "plugins", "serve", "user"):
        assert any(ln.strip().startswith(command + " ") for ln in top.stdout.splitlines()), top.stdout
    for command in ("add", "delete", "list", "passwd", "readonly"):
        assert any(ln.strip().startswith(command + " ") for ln in user.stdout.splitlines()), user.stdout


def test_eportal_plugins_lists_plugins_with_versions(site, tmp_path):
    from importlib.metadata import version
    ini = tmp_path / "site.ini"
    ini.write_text(DEV_INI.read_text().replace("[app:main]\n", "[app:main]\neportal.plugins.disabled = core_jobs\n", 1))
    default, disabled = run_all((EPORTAL, ("plugins",), {"data_dir": site}),
                                (EPORTAL, ("plugins",), {"data_dir": site, "ini": ini}))
    out = default.stdout.splitlines()
    assert out[0].split() == ["plugin", "distribution", "version", "status"]
    rows = {line.split()[0]: line.split()[1:] for line in out[1:]}
    core = version("eportal-core")
    for builtin in ("local_auth", "core_jobs", "core_ui"):
        assert rows[builtin] == ["eportal-core", core, "loaded"]

    out = disabled.stdout.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in out[1:]}
    assert rows["core_jobs"] == ["eportal-core", core, "disabled"]
    assert rows["local_auth"][-1] == "loaded"
    assert out[-1].split()[0] == "core_jobs"  # disabled plugins come last


def test_entry_point_plugin_in_the_real_scripts(site, tmp_path):
    """The example plugin, found through a dist-info on PYTHONPATH: listed, and its command runs."""
    dist_info = tmp_path / "pp" / "eportal_hello-0.1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: eportal-hello\nVersion: 0.1.0\n")
    (dist_info / "entry_points.txt").write_text("[eportal]\nhello = eportal_hello\n")
    extra = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "pp"), str(ROOT / "examples" / "hello_plugin")])}
    plugins, hello, kc_hello = run_all((EPORTAL, ("plugins",), {"data_dir": site, "extra_env": extra}),
                                       (EPORTAL, ("hello",), {"data_dir": site, "extra_env": extra}),
                                       (KC, ("hello",), {"data_dir": site, "extra_env": extra}))
    assert ["hello", "eportal-hello", "0.1.0", "loaded"] in [ln.split() for ln in plugins.stdout.splitlines()]
    assert hello.stdout == kc_hello.stdout == "hello from a plugin\n"


def test_eportal_migrate(tmp_path):
    data_dir = tmp_path / "data"
    first = eportal("migrate", data_dir=data_dir).stdout.strip()
    assert first.startswith("database at revision ") and first.endswith("(was empty)")
    second = eportal("migrate", data_dir=data_dir).stdout.strip()
    assert second == first.removesuffix(" (was empty)")
    assert user_rows(data_dir) == []  # migrate creates no users


# --- PostgreSQL -------------------------------------------------------------------------------

def test_cli_against_postgresql(request, tmp_path, tmp_path_factory):
    url = testing.new_database_url(request, "postgresql", tmp_path_factory)
    ini = tmp_path / "pg.ini"
    ini.write_text(DEV_INI.read_text().replace(
        "[app:main]\n", f"[app:main]\nsqlalchemy.url = {url.replace('%', '%%')}\n", 1))
    data_dir = tmp_path / "data"

    out = eportal("--ini", str(ini), "init", data_dir=data_dir).stdout
    password = out.splitlines()[0].removeprefix("admin password: ")
    assert not (data_dir / "eportal.sqlite").exists()  # the database is PostgreSQL, not the default file
    assert verify_password(password_hash(data_dir, "admin", url), password)

    assert kc("--ini", str(ini), "-a", "user", "-p", "User-Pass-123", data_dir=data_dir).stdout == "User 'user' added\n"
    listed, readonly = run_all((KC, ("--ini", str(ini), "-l"), {"data_dir": data_dir}),
                               (KC, ("--ini", str(ini), "-r", "user"), {"data_dir": data_dir}))
    assert listed.stdout == LIST_AFTER_ADD
    assert readonly.stdout == "User 'user' is now readonly\n"
    assert user_rows(data_dir, url) == [(1, "admin", False), (2, "user", True)]
    proc = kc("--ini", str(ini), "-d", "admin", data_dir=data_dir, expect=None)
    assert_one_line_error(proc, "error: cannot delete 'admin': it is the last admin user", code=1)
