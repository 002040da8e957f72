"""Settings: validation of every key, data dir and database defaults, the ini lookup, plugin settings."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from eportal_core import settings as s
from eportal_core.plugins import hookimpl
from eportal_core.settings import (
    CORE_SETTINGS,
    Setting,
    SettingsError,
    find_ini,
    load_settings,
    resolve_paths,
    validate_settings,
)


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv("EPORTAL_DATA_DIR", raising=False)
    monkeypatch.delenv("EPORTAL_INI", raising=False)


# --- validate_settings ------------------------------------------------------------------------

def test_defaults_are_filled_in():
    out = validate_settings({}, CORE_SETTINGS)
    assert out["eportal.data_dir"] == "/var/lib/eportal"
    assert out["sqlalchemy.url"] is None
    assert out["eportal.plugins.disabled"] == []
    assert out["eportal.session.idle_minutes"] == 30
    assert out["eportal.session.max_hours"] == 12
    assert out["eportal.secure_cookies"] == "auto"
    assert out["eportal.login.max_failures_per_user"] == 5
    assert out["eportal.login.max_failures_per_ip"] == 20
    assert out["eportal.login.lockout_minutes"] == 15
    assert out["eportal.scheduler"] is True
    assert out["eportal.scheduler.lease_seconds"] == 60
    assert out["eportal.trusted_proxies"] == []
    assert out["eportal.api_key_header"] == "X-Api-Key"
    assert out["eportal.password_min_length"] == 10
    assert set(out) == {spec.key for spec in CORE_SETTINGS}


def test_blank_value_means_the_default():
    out = validate_settings({"eportal.session.idle_minutes": "  ", "eportal.secure_cookies": ""}, CORE_SETTINGS)
    assert out["eportal.session.idle_minutes"] == 30
    assert out["eportal.secure_cookies"] == "auto"


def test_blank_database_url_means_the_default_sqlite_file(tmp_path):
    """``sqlalchemy.url =`` left empty in the ini is the default, not an invalid URL."""
    out = validate_settings({"sqlalchemy.url": "", "eportal.data_dir": str(tmp_path)}, CORE_SETTINGS)
    assert out["sqlalchemy.url"] is None
    assert resolve_paths(out, None)["sqlalchemy.url"] == f"sqlite:///{tmp_path.resolve()}/eportal.sqlite"


def test_values_are_parsed():
    out = validate_settings({
        "eportal.session.idle_minutes": " 45 ",
        "eportal.scheduler": "Off",
        "eportal.secure_cookies": "TRUE",
        "eportal.trusted_proxies": "10.0.0.0/8, 192.0.2.7  ::1",
        "eportal.plugins.disabled": "feeds, nagios ldap",
        "eportal.api_key_header": "X-Portal-Token",
        "sqlalchemy.url": "postgresql+psycopg://u:p@db:5432/eportal",
    }, CORE_SETTINGS)
    assert out["eportal.session.idle_minutes"] == 45
    assert out["eportal.scheduler"] is False
    assert out["eportal.secure_cookies"] == "true"
    assert out["eportal.trusted_proxies"] == [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.0.2.7/32"),
                                              ipaddress.ip_network("::1/128")]
    assert out["eportal.plugins.disabled"] == ["feeds", "nagios", "ldap"]
    assert out["eportal.api_key_header"] == "X-Portal-Token"
    assert out["sqlalchemy.url"] == "postgresql+psycopg://u:p@db:5432/eportal"


def test_keys_outside_the_owned_namespaces_pass_through():
    out = validate_settings({"pyramid.reload_templates": "true", "tm.attempts": "3"}, CORE_SETTINGS)
    assert out["pyramid.reload_templates"] == "true"
    assert out["tm.attempts"] == "3"


@pytest.mark.parametrize("key, bad, allowed", [
    ("eportal.session.idle_minutes", "abc", "a whole number from 1 to 1440"),
    ("eportal.session.max_hours", "0", "a whole number from 1 to 720"),
    ("eportal.login.max_failures_per_user", "1001", "a whole number from 1 to 1000"),
    ("eportal.login.max_failures_per_ip", "-1", "a whole number from 1 to 10000"),
    ("eportal.login.lockout_minutes", "1.5", "a whole number from 1 to 1440"),
    ("eportal.scheduler.lease_seconds", "5", "a whole number from 10 to 3600"),
    ("eportal.password_min_length", "7", "a whole number from 8 to 128"),
    ("eportal.scheduler", "maybe", "one of true, false, yes, no, on, off, 1, 0"),
    ("eportal.secure_cookies", "sometimes", "one of auto, true, false"),
    ("eportal.trusted_proxies", "10.0.0.0/8 proxy.example.com", "IP addresses or networks separated by spaces (bad entry 'proxy.example.com')"),
    ("eportal.api_key_header", "X Api Key", "an HTTP header name made of letters, digits and '-'"),
    ("eportal.api_key_header", "X-Api-Key:", "an HTTP header name made of letters, digits and '-'"),
    ("eportal.agent_directory.in_memory", "sometimes", "one of auto, true, false"),
    ("eportal.start_page.live_count_under", "-1", "a whole number from 0 to 1000000000"),
    ("eportal.start_page.refresh_seconds", "1", "a whole number from 5 to 3600"),
])
def test_bad_value_names_key_value_and_what_is_allowed(key, bad, allowed):
    with pytest.raises(SettingsError) as exc:
        validate_settings({key: bad}, CORE_SETTINGS)
    assert str(exc.value) == f"setting {key} = {bad!r} is not valid: expected {allowed}"


def test_secret_values_are_not_echoed():
    url = "mysql://eportal:hunter2-secret@db.example.com/eportal"
    with pytest.raises(SettingsError) as exc:
        validate_settings({"sqlalchemy.url": url}, CORE_SETTINGS)
    message = str(exc.value)
    assert "hunter2-secret" not in message and "db.example.com" not in message
    assert "sqlalchemy.url" in message
    assert "(hidden)" in message
    assert "postgresql+psycopg://" in message and "sqlite:///" in message  # what is allowed


def test_secret_flag_works_for_any_setting():
    spec = Setting("probe.token", s.int_between(1, 2), 1, secret=True)
    with pytest.raises(SettingsError) as exc:
        validate_settings({"probe.token": "s3cr3t-value"}, [spec], ("probe.",))
    assert "s3cr3t-value" not in str(exc.value)
    assert "probe.token" in str(exc.value)


def test_unknown_eportal_key_is_refused_by_name():
    with pytest.raises(SettingsError) as exc:
        validate_settings({"eportal.sesion.idle_minutes": "5"}, CORE_SETTINGS)
    message = str(exc.value)
    assert message.startswith("unknown setting 'eportal.sesion.idle_minutes'")
    assert "eportal.session.idle_minutes" in message  # the known keys help spot the typo


# --- the individual parsers -------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [("1", True), ("yes", True), ("ON", True), (True, True),
                                           ("0", False), ("no", False), (" false ", False), (False, False)])
def test_as_bool(raw, expected):
    assert s.as_bool(raw) is expected


def test_as_list_accepts_commas_spaces_and_lists():
    assert s.as_list("a, b  c,,d") == ["a", "b", "c", "d"]
    assert s.as_list("") == []
    assert s.as_list(["x", 1]) == ["x", "1"]


def test_int_between_bounds_are_inclusive():
    parse = s.int_between(10, 20)
    assert parse("10") == 10 and parse("20") == 20
    for bad in ("9", "21", "", "ten"):
        with pytest.raises(ValueError):
            parse(bad)


def test_sqlalchemy_url_accepts_only_the_supported_databases():
    assert s.sqlalchemy_url(" sqlite:////var/lib/eportal/eportal.sqlite ") == "sqlite:////var/lib/eportal/eportal.sqlite"
    for bad in ("postgresql://u:p@h/db", "mysql://u:p@h/db", "sqlite:relative"):
        with pytest.raises(ValueError):
            s.sqlalchemy_url(bad)


# --- resolve_paths ----------------------------------------------------------------------------

def test_relative_data_dir_is_taken_from_the_ini_dir(tmp_path):
    out = resolve_paths({"eportal.data_dir": "var/data"}, tmp_path)
    assert out["eportal.data_dir"] == str((tmp_path / "var" / "data").resolve())


def test_relative_data_dir_without_ini_dir_uses_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = resolve_paths({"eportal.data_dir": "here"}, None)
    assert out["eportal.data_dir"] == str((tmp_path / "here").resolve())


def test_eportal_data_dir_overrides_the_ini(tmp_path, monkeypatch):
    monkeypatch.setenv("EPORTAL_DATA_DIR", str(tmp_path / "from-env"))
    out = resolve_paths({"eportal.data_dir": "/somewhere/else"}, tmp_path)
    assert out["eportal.data_dir"] == str((tmp_path / "from-env").resolve())
    assert out["sqlalchemy.url"] == f"sqlite:///{(tmp_path / 'from-env').resolve()}/eportal.sqlite"


def test_default_database_is_sqlite_inside_the_data_dir(tmp_path):
    out = resolve_paths({"eportal.data_dir": str(tmp_path), "sqlalchemy.url": None}, None)
    assert out["sqlalchemy.url"] == f"sqlite:///{tmp_path.resolve()}/eportal.sqlite"
    assert out["sqlalchemy.url"].startswith("sqlite:////")  # four slashes: an absolute path


def test_explicit_database_url_is_kept(tmp_path):
    url = "postgresql+psycopg://eportal:pw@127.0.0.1:5432/eportal"
    out = resolve_paths({"eportal.data_dir": str(tmp_path), "sqlalchemy.url": url}, None)
    assert out["sqlalchemy.url"] == url


def test_ensure_data_dir_creates_the_layout(tmp_path):
    root = s.ensure_data_dir({"eportal.data_dir": str(tmp_path / "d")})
    assert sorted(p.name for p in root.iterdir()) == ["config", "logs", "patches"]


def test_ensure_data_dir_failure_is_a_settings_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(SettingsError, match=r"cannot create data dir .*file/sub"):
        s.ensure_data_dir({"eportal.data_dir": str(blocker / "sub")})


# --- find_ini ---------------------------------------------------------------------------------

def test_find_ini_explicit(tmp_path):
    ini = tmp_path / "site.ini"
    ini.write_text("[app:main]\n")
    assert find_ini(str(ini)) == ini.resolve()


def test_find_ini_explicit_beats_the_environment(tmp_path, monkeypatch):
    a, b = tmp_path / "a.ini", tmp_path / "b.ini"
    a.write_text("")
    b.write_text("")
    monkeypatch.setenv("EPORTAL_INI", str(b))
    assert find_ini(str(a)) == a.resolve()


def test_find_ini_from_environment(tmp_path, monkeypatch):
    ini = tmp_path / "env.ini"
    ini.write_text("")
    monkeypatch.setenv("EPORTAL_INI", str(ini))
    assert find_ini() == ini.resolve()


@pytest.mark.parametrize("via_env", [False, True])
def test_find_ini_missing_file_message(tmp_path, monkeypatch, via_env):
    missing = tmp_path / "nope.ini"
    if via_env:
        monkeypatch.setenv("EPORTAL_INI", str(missing))
    with pytest.raises(SettingsError) as exc:
        find_ini(None if via_env else str(missing))
    assert str(exc.value) == f"ini file {missing} does not exist (set EPORTAL_INI or --ini to an existing file)"


def test_find_ini_falls_back_to_the_checkout_then_etc(tmp_path, monkeypatch):
    assert find_ini() == s.CHECKOUT_INI  # this checkout has a development.ini
    monkeypatch.setattr(s, "CHECKOUT_INI", tmp_path / "no-checkout.ini")
    system = tmp_path / "eportal.ini"
    system.write_text("")
    monkeypatch.setattr(s, "SYSTEM_INI", system)
    assert find_ini() == system
    monkeypatch.setattr(s, "SYSTEM_INI", tmp_path / "no-system.ini")
    with pytest.raises(SettingsError, match=r"no ini file found: set EPORTAL_INI, or create .*no-system.ini"):
        find_ini()


# --- load_settings with plugin settings ---------------------------------------------------------

class ProbeSettings:
    @hookimpl
    def eportal_settings(self):
        return [Setting("probe.color", s.one_of("red", "blue"), "red", "Color of the probe."),
                Setting("probe.retries", s.int_between(0, 5), 2)]


def raw_settings(tmp_path, **extra):
    raw = {"eportal.data_dir": str(tmp_path), "eportal.scheduler": "false"}
    raw.update(extra)
    return raw


def test_load_settings_validates_core_settings(tmp_path):
    with pytest.raises(SettingsError, match=r"eportal.session.idle_minutes = 'abc'"):
        load_settings(raw_settings(tmp_path, **{"eportal.session.idle_minutes": "abc"}))


def test_load_settings_resolves_paths(tmp_path):
    settings, _pm = load_settings({"eportal.data_dir": "rel"}, tmp_path)
    assert settings["eportal.data_dir"] == str((tmp_path / "rel").resolve())
    assert settings["sqlalchemy.url"] == f"sqlite:///{(tmp_path / 'rel').resolve()}/eportal.sqlite"


def test_plugin_settings_get_defaults_and_are_parsed(tmp_path):
    settings, pm = load_settings(raw_settings(tmp_path), extra_plugins={"probe": ProbeSettings()})
    assert pm.get_plugin("probe") is not None
    assert settings["probe.color"] == "red"
    assert settings["probe.retries"] == 2
    settings, _ = load_settings(raw_settings(tmp_path, **{"probe.color": "BLUE", "probe.retries": "5"}),
                                extra_plugins={"probe": ProbeSettings()})
    assert settings["probe.color"] == "blue"
    assert settings["probe.retries"] == 5


def test_plugin_setting_bad_value(tmp_path):
    with pytest.raises(SettingsError) as exc:
        load_settings(raw_settings(tmp_path, **{"probe.color": "green"}), extra_plugins={"probe": ProbeSettings()})
    assert str(exc.value) == "setting probe.color = 'green' is not valid: expected one of red, blue"


def test_plugin_namespace_becomes_strict(tmp_path):
    raw = raw_settings(tmp_path, **{"probe.colour": "red"})
    # without the plugin nobody owns probe.*: the key passes through untouched
    settings, _ = load_settings(dict(raw))
    assert settings["probe.colour"] == "red"
    # with it, a typo in its namespace stops start-up, naming the key
    with pytest.raises(SettingsError) as exc:
        load_settings(dict(raw), extra_plugins={"probe": ProbeSettings()})
    assert str(exc.value).startswith("unknown setting 'probe.colour'")
    assert "probe.color" in str(exc.value)


def test_disabled_plugin_contributes_no_settings(tmp_path):
    raw = raw_settings(tmp_path, **{"eportal.plugins.disabled": "probe", "probe.colour": "x"})
    settings, pm = load_settings(raw, extra_plugins={"probe": ProbeSettings()})
    assert pm.get_plugin("probe") is None
    assert "probe.color" not in settings
    assert settings["eportal.plugins.disabled"] == ["probe"]


def test_a_setting_declared_twice_is_refused(tmp_path):
    class Again:
        @hookimpl
        def eportal_settings(self):
            return [Setting("probe.color", s.as_str, "green")]

    with pytest.raises(SettingsError, match="settings declared twice by plugins: probe.color"):
        load_settings(raw_settings(tmp_path), extra_plugins={"probe": ProbeSettings(), "again": Again()})


def test_development_ini_loads_cleanly():
    """The shipped ini files hold only known keys with valid values."""
    from pyramid.paster import get_appsettings
    root = Path(__file__).resolve().parents[2]
    for name in ("development.ini", "production.ini"):
        raw = dict(get_appsettings(str(root / name), name="main"))
        settings, _ = load_settings(raw, root)
        assert settings["eportal.session.idle_minutes"] == 30
