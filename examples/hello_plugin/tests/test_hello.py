"""The example plugin, loaded through a real ``eportal`` entry point (but not pip-installed).

A temporary ``eportal_hello-0.1.0.dist-info`` (METADATA and entry_points.txt) and the plugin's
source directory go on ``sys.path``; ``importlib.metadata`` then finds the distribution exactly as
it finds an installed one, and ``make_plugin_manager()`` loads it like any other plugin.
"""
from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from eportal_core import testing
from eportal_core.api import CliEnv
from eportal_core.testing.core import (
    PluginInfo,
    build_eportal_cli,
    build_kc_cli,
    describe_plugins,
    load_settings,
    make_plugin_manager,
)

PLUGIN_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture
def hello_installed(tmp_path, monkeypatch):
    """Make ``eportal-hello 0.1.0`` discoverable through its entry point for this test only."""
    site = tmp_path / "site-packages"
    dist_info = site / "eportal_hello-0.1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: eportal-hello\nVersion: 0.1.0\n"
                                        "Summary: Example eportal plugin\n")
    (dist_info / "entry_points.txt").write_text("[eportal]\nhello = eportal_hello\n")
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    monkeypatch.syspath_prepend(str(site))
    yield
    for name in [m for m in sys.modules if m == "eportal_hello" or m.startswith("eportal_hello.")]:
        del sys.modules[name]


def test_entry_point_is_discovered(hello_installed, tmp_path):
    dist = metadata.distribution("eportal-hello")
    assert Path(str(dist.locate_file(""))).resolve() == (tmp_path / "site-packages").resolve()  # ours, not an install
    pm = make_plugin_manager()
    plugin = pm.get_plugin("hello")
    assert plugin is not None
    assert plugin.__name__ == "eportal_hello"
    assert Path(plugin.__file__).resolve().parent == PLUGIN_DIR / "eportal_hello"
    assert PluginInfo("hello", "eportal-hello", "0.1.0", "loaded") in describe_plugins(pm)


def test_load_entrypoints_false_leaves_it_out(hello_installed, tmp_path):
    """What the core's own tests use: installed plugins are not loaded, plugins given in code are."""
    class InCode:
        pass

    pm = make_plugin_manager(extra={"in_code": InCode()}, load_entrypoints=False)
    assert pm.get_plugin("hello") is None and not pm.is_blocked("hello")
    assert pm.get_plugin("in_code") is not None
    assert {name for name, _ in pm.list_name_plugin()} == {"local_auth", "core_jobs", "core_ui", "in_code"}
    _, pm = load_settings({"eportal.data_dir": str(tmp_path)}, load_entrypoints=False)
    assert pm.get_plugin("hello") is None
    assert make_plugin_manager().get_plugin("hello") is not None  # and it is there by default


def test_disabled_switches_it_off(hello_installed, tmp_path):
    settings, pm = load_settings(testing.make_test_settings(tmp_path, f"sqlite:///{tmp_path}/x.sqlite",
                                                            **{"eportal.plugins.disabled": "hello"}))
    assert pm.get_plugin("hello") is None
    assert pm.is_blocked("hello")
    rows = describe_plugins(pm, settings["eportal.plugins.disabled"])
    assert PluginInfo("hello", "eportal-hello", "0.1.0", "disabled") in rows
    assert not [r for r in rows if r.name == "hello" and r.status == "loaded"]


def cli_env(tmp_path, **raw) -> CliEnv:
    env = CliEnv()
    env.__dict__["_loaded"] = load_settings(testing.make_test_settings(tmp_path, f"sqlite:///{tmp_path}/x.sqlite", **raw))
    return env


def test_eportal_plugins_command_lists_it(hello_installed, tmp_path):
    runner = CliRunner()
    out = runner.invoke(build_eportal_cli(cli_env(tmp_path)), ["plugins"]).output
    assert ["hello", "eportal-hello", "0.1.0", "loaded"] in [line.split() for line in out.splitlines()]
    out = runner.invoke(build_eportal_cli(cli_env(tmp_path, **{"eportal.plugins.disabled": "hello"})), ["plugins"]).output
    assert ["hello", "eportal-hello", "0.1.0", "disabled"] in [line.split() for line in out.splitlines()]


def test_hello_command_in_both_scripts(hello_installed, tmp_path):
    runner = CliRunner()
    env = cli_env(tmp_path)
    for group in (build_eportal_cli(env), build_kc_cli(env)):
        result = runner.invoke(group, ["hello"])
        assert (result.exit_code, result.output) == (0, "hello from a plugin\n")
    disabled = cli_env(tmp_path, **{"eportal.plugins.disabled": "hello"})
    assert runner.invoke(build_eportal_cli(disabled), ["hello"]).exit_code == 2  # no such command


def test_hello_page_renders_inside_the_layout(hello_installed, make_app_client, make_user):
    app = make_app_client()
    assert "/admin/login" in app.get("/admin/hello", status=302).location  # the core's security applies
    make_user("alice")
    testing.login(app, "alice", "alice-Secret-123")
    page = app.get("/admin/hello")
    assert page.content_type == "text/html"
    html = page.html
    # the plugin's content sits in the layout's content slot, under the core's header and navigation
    assert html.select_one("main #hello-plugin") is not None
    assert "Hello, alice!" in html.select_one("main #hello-plugin").get_text()
    assert html.select_one("main h1").get_text(strip=True) == "Hello"
    assert html.select_one("header .username").get_text(strip=True) == "alice"
    assert html.title.get_text().startswith("Hello")
    nav = {a.get_text(strip=True): a for a in html.select('nav[aria-label="Main"] a')}
    assert nav["Hello"]["href"].endswith("/admin/hello")
    assert nav["Hello"].get("aria-current") == "page"
    assert "Content-Security-Policy" in page.headers  # the core's headers apply to plugin pages


def test_hello_page_readonly_user_may_view(hello_installed, make_app_client, make_user):
    app = make_app_client()
    make_user("reader", readonly=True)
    testing.login(app, "reader", "reader-Secret-123")
    assert "Hello, reader!" in app.get("/admin/hello").text


def test_disabled_plugin_has_no_page_and_no_navigation(hello_installed, make_app_client, make_user):
    app = make_app_client(**{"eportal.plugins.disabled": "hello"})
    make_user("alice")
    page = testing.login(app, "alice", "alice-Secret-123").follow()
    assert "Hello" not in [a.get_text(strip=True) for a in page.html.select('nav[aria-label="Main"] a')]
    app.get("/admin/hello", status=404)
