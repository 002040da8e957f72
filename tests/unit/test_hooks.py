"""The hook contracts: every hookspec is documented and has a ``test_hook_<name>`` here proving
that the core calls it and uses what it returns (datasette style).

App-level tests build the real app with a probe plugin registered in code (the harness's
``make_app_client``) and drive it with WebTest; the requests run inside the test's rolled-back
transaction on SQLite and on PostgreSQL. The event hooks are driven through the app in
tests/functional/test_events.py; here they are checked against pluggy and ``events.notify``.
"""
from __future__ import annotations

import inspect
import json
from datetime import timedelta

import click
import pytest
from click.testing import CliRunner
from markupsafe import Markup
from pyramid.security import NO_PERMISSION_REQUIRED
from sqlalchemy import func, select

from eportal_core import cli, hookspecs, plugins, testing
from eportal_core.cli import kc as kc_cli
from eportal_core.cli.env import CliEnv
from eportal_core.health import Check
from eportal_core.models import AuditEvent, LoginFailure, User, utcnow
from eportal_core.permissions import Permission
from eportal_core.plugins import hookimpl, make_plugin_manager
from eportal_core.scheduler import Job, SiteScheduler
from eportal_core.services import ServiceError, events
from eportal_core.services.users import sync_external_user
from eportal_core.settings import Setting, SettingsError, int_between, load_settings, one_of
from eportal_core.sources import AccessInfo, SourceError, make_source
from eportal_core.web.ui import SETTINGS, NavItem

HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("eportal_"))
MIN_DOC = 60


# --- the contract ----------------------------------------------------------------------------

def test_hookspecs_are_all_found_and_registered():
    assert len(HOOKS) >= 17
    pm = make_plugin_manager(load_entrypoints=False)
    for name in HOOKS:
        assert hasattr(getattr(hookspecs, name), "eportal_spec"), f"{name} is not marked @hookspec"
        assert getattr(pm.hook, name).spec is not None
    # and nothing outside hookspecs.py pretends to be a hook
    assert sorted(n for n in vars(pm.hook) if n.startswith("eportal_")) == HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_contract_docstring(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert len(doc) >= MIN_DOC, f"{hook}: docstring missing or shorter than {MIN_DOC} characters: {doc!r}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    test = globals().get(f"test_hook_{hook}")
    assert callable(test), f"tests/unit/test_hooks.py has no test_hook_{hook}"


# --- helpers ------------------------------------------------------------------------------------

# The contracts are the core's: plugins installed from plugins/* (entry points) would add their own
# navigation entries, jobs and source types to what these tests count, so every plugin manager and
# app here is made with load_entrypoints=False.

@pytest.fixture
def build(make_app_client):
    """``build(probe=plugin, ...)`` -> the harness's ``make_app_client`` with those plugins and no installed ones."""
    def factory(**plugins):
        return make_app_client(extra_plugins=plugins, load_entrypoints=False)
    return factory


def nav_titles(page) -> list[str]:
    return [a.get_text(strip=True) for a in page.html.select('nav[aria-label="Main"] a')]


def cli_env(tmp_path, **plugins) -> CliEnv:
    """A CliEnv whose settings and plugin manager the test controls (no ini is read)."""
    env = CliEnv()
    env.__dict__["_loaded"] = load_settings(testing.make_test_settings(tmp_path, f"sqlite:///{tmp_path}/cli.sqlite"),
                                            extra_plugins=plugins, load_entrypoints=False)
    return env


# --- configuration ------------------------------------------------------------------------------

class SettingsProbe:
    def __init__(self):
        self.calls = 0

    @hookimpl
    def eportal_settings(self):
        self.calls += 1
        return [Setting("probe.greeting", one_of("hello", "hi"), "hello", "How the probe greets."),
                Setting("probe.times", int_between(1, 3), 1)]


def test_hook_eportal_settings(tmp_path):
    probe = SettingsProbe()
    settings, _ = load_settings({"eportal.data_dir": str(tmp_path), "probe.times": "3"}, extra_plugins={"probe": probe}, load_entrypoints=False)
    assert probe.calls == 1
    assert settings["probe.greeting"] == "hello"  # default filled in
    assert settings["probe.times"] == 3  # parsed
    with pytest.raises(SettingsError, match=r"setting probe.times = '9' is not valid: expected a whole number from 1 to 3"):
        load_settings({"eportal.data_dir": str(tmp_path), "probe.times": "9"}, extra_plugins={"probe": SettingsProbe()}, load_entrypoints=False)
    with pytest.raises(SettingsError, match=r"unknown setting 'probe.greting'"):
        load_settings({"eportal.data_dir": str(tmp_path), "probe.greting": "hi"}, extra_plugins={"probe": SettingsProbe()}, load_entrypoints=False)


def test_hook_eportal_settings_reach_the_app(build):
    seen = {}

    class Probe(SettingsProbe):
        @hookimpl
        def eportal_includeme(self, config):
            def view(request):
                seen["greeting"] = request.registry.settings["probe.greeting"]
                return request.registry.settings["probe.greeting"]
            config.add_route("probe_greeting", "/admin/probe/greeting")
            config.add_view(view, route_name="probe_greeting", renderer="string", permission=NO_PERMISSION_REQUIRED)

    assert build(probe=Probe()).get("/admin/probe/greeting").text == "hello"


def test_hook_eportal_includeme(build, make_user):
    calls = []

    class Probe:
        @hookimpl
        def eportal_includeme(self, config):
            calls.append(config)
            config.add_route("probe_public", "/admin/probe/public")
            config.add_view(lambda request: "public probe page", route_name="probe_public", renderer="string",
                            permission=NO_PERMISSION_REQUIRED)
            config.add_route("probe_private", "/admin/probe/private")
            # no permission given: the core's default (VIEW) applies to plugin views too
            config.add_view(lambda request: f"private page for {request.identity.username}",
                            route_name="probe_private", renderer="string")

    app = build(probe=Probe())
    assert len(calls) == 1
    assert app.get("/admin/probe/public").text == "public probe page"
    res = app.get("/admin/probe/private", status=302)
    assert "/admin/login" in res.location
    make_user("alice")
    testing.login(app, "alice", "alice-Secret-123")
    assert app.get("/admin/probe/private").text == "private page for alice"


# --- authentication -----------------------------------------------------------------------------

class ExternalAuth:
    """A directory (over the network, hence ``trylast``) that knows 'ext-user' (password 'ext-pass')
    and every name in ``users``, and refuses every login in ``deny``."""

    def __init__(self, deny=(), users=(), source="probe"):
        self.deny = set(deny)
        self.users = {"ext-user", *users}
        self.source = source
        self.calls: list[str] = []

    @hookimpl(trylast=True)
    def eportal_authenticate(self, request, login, password):
        self.calls.append(login)
        if login in self.deny:
            return False
        if login not in self.users:
            return None
        if password != "ext-pass":
            return False
        return sync_external_user(request.dbsession, login, source=self.source, readonly=True)


class Greedy:
    """A plugin registered without an order marker that would refuse everybody."""

    def __init__(self):
        self.calls: list[str] = []

    @hookimpl
    def eportal_authenticate(self, request, login, password):
        self.calls.append(login)
        return False


def test_hook_eportal_authenticate(build, dbsession):
    probe = ExternalAuth()
    app = build(probe=probe)
    page = testing.login(app, "ext-user", "ext-pass").follow()
    assert probe.calls == ["ext-user"]
    assert page.html.select_one(".who .username").get_text(strip=True) == "ext-user"
    assert "Key Inventory" in page.text
    user = dbsession.scalar(select(User).where(User.username == "ext-user"))
    assert (user.source, user.password_hash, user.readonly, user.last_login is not None) == ("probe", None, True, True)
    added = dbsession.scalar(select(AuditEvent).where(AuditEvent.action == "user.add", AuditEvent.target == "ext-user"))
    assert (added.actor, added.detail) == ("probe", "readonly, from probe")

    # the plugin's False for a wrong password is a refusal, and is counted as a failure
    app.reset()
    res = testing.login(app, "ext-user", "wrong-pass", status=401)
    assert "Wrong user name or password." in res.text
    assert dbsession.scalar(select(func.count()).select_from(LoginFailure)
                            .where(LoginFailure.username == "ext-user")) == 1


def test_hook_eportal_authenticate_local_users_first(build, make_user):
    """local_auth is ``tryfirst``: whatever order plugins were registered in, a local user is
    decided locally, and a network plugin is not even asked."""
    make_user("alice", "Alice-Secret-1")
    greedy, directory = Greedy(), ExternalAuth(deny={"alice"})
    app = build(greedy=greedy, directory=directory)
    testing.login(app, "alice", "Alice-Secret-1", status=303)
    app.reset()
    testing.login(app, "alice", "wrong-password", status=401)  # local says False: nobody else is asked
    assert greedy.calls == [] and directory.calls == []
    # a name local auth does not know goes on: the unmarked plugin before the trylast one
    testing.login(app, "ext-user", "ext-pass", status=401)
    assert greedy.calls == ["ext-user"] and directory.calls == []


def test_hook_eportal_authenticate_a_directory_cannot_take_over_a_local_user(make_app_client, make_user, dbsession):
    """With local auth blocked, a directory that also has 'alice' cannot turn the local account into
    one of its own: the login is refused and the reason is in the audit trail."""
    make_user("alice", "Alice-Secret-1")
    app = make_app_client(extra_plugins={"directory": ExternalAuth(users={"alice"})}, load_entrypoints=False,
                          **{"eportal.plugins.disabled": "local_auth"})
    res = testing.login(app, "alice", "ext-pass", status=401)
    assert "Wrong user name or password." in res.text
    user = dbsession.scalar(select(User).where(User.username == "alice"))
    assert user.source == "local" and user.password_hash
    failed = dbsession.scalar(select(AuditEvent).where(AuditEvent.action == "login.failed"))
    assert "exists here as a local user" in failed.detail


def test_sync_external_user_keeps_the_role_in_line(dbsession):
    user = sync_external_user(dbsession, "carol", source="ldap", readonly=True)
    assert (user.source, user.role, user.password_hash) == ("ldap", "readonly", None)
    assert sync_external_user(dbsession, "carol", source="ldap", readonly=False) is user and user.role == "admin"
    actions = dbsession.scalars(select(AuditEvent.detail).where(AuditEvent.target == "carol")
                                .order_by(AuditEvent.id)).all()
    assert actions == ["readonly, from ldap", "admin, from ldap"]
    sync_external_user(dbsession, "carol", source="ldap", readonly=False)  # unchanged: no new event
    assert dbsession.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.target == "carol")) == 2
    with pytest.raises(ServiceError, match="exists here as a ldap user"):
        sync_external_user(dbsession, "carol", source="radius", readonly=True)
    with pytest.raises(ServiceError, match="invalid user source"):
        sync_external_user(dbsession, "dave", source="local", readonly=True)
    with pytest.raises(ServiceError, match="invalid user name"):
        sync_external_user(dbsession, "bad name", source="ldap", readonly=True)


def test_hook_eportal_authenticate_blocked_local_auth(make_app_client, make_user):
    """Blocking the built-in local_auth plugin really removes local passwords."""
    make_user("alice", "Alice-Secret-1")
    app = make_app_client(load_entrypoints=False, **{"eportal.plugins.disabled": "local_auth"})
    testing.login(app, "alice", "Alice-Secret-1", status=401)


# --- patch sources, monitoring ------------------------------------------------------------------

def http_source(settings, access_info):
    return ("http", access_info)


def directory_source(settings, access_info):
    return ("directory", access_info)


class SourcesA:
    @hookimpl
    def eportal_patch_source_types(self):
        return {"http": http_source}

    @hookimpl
    def eportal_monitoring_formats(self):
        return {"nagios": lambda counts, problems: ("text/plain", "OK")}


class SourcesB:
    @hookimpl
    def eportal_patch_source_types(self):
        return {"directory": directory_source}

    @hookimpl
    def eportal_monitoring_formats(self):
        return None


class SourcesClash:
    @hookimpl
    def eportal_patch_source_types(self):
        return {"http": directory_source}

    @hookimpl
    def eportal_monitoring_formats(self):
        return {"nagios": lambda counts, problems: ("text/plain", "clash")}


def test_hook_eportal_patch_source_types(tmp_path):
    types = plugins.patch_source_types(make_plugin_manager(extra={"a": SourcesA(), "b": SourcesB()}, load_entrypoints=False))
    assert types == {"http": http_source, "directory": directory_source}
    assert types["directory"]({}, "/srv/patches") == ("directory", "/srv/patches")
    with pytest.raises(plugins.RegistryError, match="patch source type 'http' is offered by both a and clash"):
        plugins.patch_source_types(make_plugin_manager(extra={"a": SourcesA(), "clash": SourcesClash()}, load_entrypoints=False))
    assert plugins.patch_source_types(make_plugin_manager(load_entrypoints=False)) == {}
    # the core's make_source turns access info into a source of the named type
    access = AccessInfo(type="directory", path="/srv/patches")
    pm = make_plugin_manager(extra={"a": SourcesA(), "b": SourcesB()}, load_entrypoints=False)
    assert make_source(pm, {}, access) == ("directory", access)
    with pytest.raises(SourceError, match=r"unknown patch source type 's3' \(known: directory, http\)") as refused:
        make_source(pm, {}, AccessInfo(type="s3"))
    assert refused.value.field == "type"


class FormatClash:
    @hookimpl
    def eportal_monitoring_formats(self):
        return {"nagios": lambda counts, problems: ("text/plain", "clash")}


@pytest.mark.parametrize("clash, what", [(SourcesClash, "patch source type 'http'"),
                                         (FormatClash, "monitoring format 'nagios'")])
def test_a_name_offered_twice_stops_start_up(tmp_path, clash, what):
    """Not the first poll: start-up itself refuses two plugins offering the same name."""
    with pytest.raises(SettingsError, match=f"{what} is offered by both a and clash: disable one of them"):
        load_settings(testing.make_test_settings(tmp_path, f"sqlite:///{tmp_path}/x.sqlite"),
                      extra_plugins={"a": SourcesA(), "clash": clash()}, load_entrypoints=False)


def test_hook_eportal_monitoring_formats():
    formats = plugins.monitoring_formats(make_plugin_manager(extra={"a": SourcesA(), "b": SourcesB()}, load_entrypoints=False))
    assert list(formats) == ["nagios"]
    assert formats["nagios"]({"servers": 1}, []) == ("text/plain", "OK")
    with pytest.raises(plugins.RegistryError, match="monitoring format 'nagios' is offered by both a and clash"):
        plugins.monitoring_formats(make_plugin_manager(extra={"a": SourcesA(), "clash": SourcesClash()}, load_entrypoints=False))


# --- jobs, CLI, UI ------------------------------------------------------------------------------

def test_hook_eportal_scheduled_jobs():
    received = []
    ran = []

    class Probe:
        @hookimpl
        def eportal_scheduled_jobs(self, settings):
            received.append(settings)
            return [Job("probe.sync", lambda ctx: ran.append(ctx.settings), seconds=600, description="sync")]

    class Nothing:
        @hookimpl
        def eportal_scheduled_jobs(self, settings):
            return None

    settings = {"eportal.scheduler.lease_seconds": 60}
    sched = SiteScheduler(settings, None, make_plugin_manager(extra={"probe": Probe(), "nothing": Nothing()}, load_entrypoints=False))
    jobs = {job.id: job for job in sched.collect_jobs()}
    assert set(jobs) == {"core.housekeeping", "probe.sync"}
    assert received == [settings]
    assert (jobs["probe.sync"].seconds, jobs["probe.sync"].description) == (600, "sync")
    # the lease itself is tested in test_scheduler.py
    sched.is_leader, sched.lease_expires = True, utcnow() + timedelta(seconds=60)
    sched.run_job(jobs["probe.sync"])
    assert ran == [settings]
    assert sched.status["probe.sync"].runs == 1


class CliProbe:
    @hookimpl
    def eportal_cli_commands(self):
        @click.command("probe-hello")
        @click.option("--name", default="world")
        def probe_hello(name):
            """Say hello from the probe plugin."""
            env = click.get_current_context().obj
            click.echo(f"hello {name}; data dir {env.settings['eportal.data_dir']}")
        return [probe_hello]


def test_hook_eportal_cli_commands(tmp_path):
    env = cli_env(tmp_path, probe=CliProbe())
    runner = CliRunner()
    for group in (cli.build(env), kc_cli.build(env)):
        result = runner.invoke(group, ["probe-hello", "--name", "ops"])
        assert result.exit_code == 0, result.output
        assert result.output == f"hello ops; data dir {tmp_path.resolve()}\n"
        help_text = runner.invoke(group, ["--help"]).output
        assert "probe-hello" in help_text and "Say hello from the probe plugin." in help_text
    # without the plugin there is no such command
    result = runner.invoke(cli.build(cli_env(tmp_path)), ["probe-hello"])
    assert result.exit_code == 2 and "No such command 'probe-hello'" in result.output


def test_hook_eportal_legacy_flags(tmp_path):
    ran = []

    class Probe:
        @hookimpl
        def eportal_legacy_flags(self):
            return [
                kc_cli.LegacyFlag(click.Option(["--hello"], is_flag=True, help="Say hello."),
                                  lambda env, value: (ran.append((env, value)), click.echo("hello from a flag"))),
                kc_cli.LegacyFlag(click.Option(["--greet"], metavar="NAME", help="Greet NAME."),
                                  lambda env, value: click.echo(f"greetings, {value}")),
            ]

    env = cli_env(tmp_path, probe=Probe())
    runner = CliRunner()
    group = kc_cli.build(env)
    result = runner.invoke(group, ["--hello"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello from a flag\n"
    assert ran == [(env, True)]
    assert runner.invoke(group, ["--greet", "ops"]).output == "greetings, ops\n"
    help_text = runner.invoke(group, ["-h"]).output
    assert "--hello" in help_text and "Say hello." in help_text and "--greet NAME" in help_text
    # one action at a time, plugin flags included
    result = runner.invoke(group, ["--hello", "--greet", "ops"])
    assert result.exit_code == 2 and "use one action at a time (got --hello, --greet)" in result.output
    # legacy flags belong to kc.eportal only
    assert "--hello" not in runner.invoke(cli.build(env), ["-h"]).output


class NavProbe:
    def __init__(self):
        self.requests = []

    @hookimpl
    def eportal_navigation(self, request):
        self.requests.append(request)
        return [NavItem("Probe Page", "home", order=15),
                NavItem("Probe Admin", "user_add", order=950, permission=Permission.MANAGE),
                # into the core's Settings group, between Users (900) and API tokens (950)
                NavItem("Probe Setting", "health", order=920, group=SETTINGS),
                # a group of its own, only for those who may manage
                NavItem("Probe Tool", "ping", order=40, permission=Permission.MANAGE, group="Probe Tools")]


def nav_bar(page) -> list[str | tuple[str, list[str]]]:
    """The bar's top-level items: a link's title, or (group title, its entries' titles)."""
    out = []
    for el in page.html.select('nav[aria-label="Main"] > a, nav[aria-label="Main"] > .nav-group'):
        if el.name == "a":
            out.append(el.get_text(strip=True))
        else:
            out.append((el.select_one("button.nav-group-toggle").get_text(strip=True),
                        [a.get_text(strip=True) for a in el.select(".nav-menu a")]))
    return out


def test_hook_eportal_navigation(build, make_user):
    probe = NavProbe()
    app = build(probe=probe)
    make_user("alice")
    make_user("reader", readonly=True)
    page = testing.login(app, "alice", "alice-Secret-123").follow()
    assert probe.requests and probe.requests[-1].path == "/admin/"
    # sorted by (order, title); a group stands where its first entry would and lists its entries in order
    assert nav_bar(page) == ["Keys", "Probe Page", "Servers", ("Probe Tools", ["Probe Tool"]),
                             ("Settings", ["Users", "Probe Setting", "API tokens"]), "Probe Admin"]
    link = page.html.select_one('nav[aria-label="Main"] a[href$="/admin/users/add"]')
    assert link.get_text(strip=True) == "Probe Admin"
    link = page.html.select_one('nav[aria-label="Main"] #nav-settings a[href$="/admin/health"]')
    assert link.get_text(strip=True) == "Probe Setting"

    app.reset()
    page = testing.login(app, "reader", "reader-Secret-123").follow()
    # the MANAGE entries are hidden, and with its only entry gone the Probe Tools group too
    assert nav_bar(page) == ["Keys", "Probe Page", "Servers", ("Settings", ["Users", "Probe Setting", "API tokens"])]
    assert nav_titles(page) == ["Keys", "Probe Page", "Servers", "Users", "Probe Setting", "API tokens"]


def test_hook_eportal_navigation_not_shown_to_anonymous(build):
    probe = NavProbe()
    page = build(probe=probe).get("/admin/login")
    assert nav_titles(page) == []
    assert probe.requests == []


def test_hook_eportal_ui_panels(build, make_user):
    calls = []

    class Probe:
        @hookimpl
        def eportal_ui_panels(self, request, slot, context):
            calls.append((slot, context))
            if slot == "dashboard":
                return Markup('<section id="probe-panel" class="card">Probe says <b>hi</b></section>')
            return None

    class PlainText:
        @hookimpl
        def eportal_ui_panels(self, request, slot, context):
            # a plain string holding user data: shown as text, never as markup
            return '<script id="planted">alert(1)</script> from host <b>evil</b>' if slot == "dashboard" else None

    class Quiet:
        @hookimpl
        def eportal_ui_panels(self, request, slot, context):
            return None

    app = build(probe=Probe(), plain=PlainText(), quiet=Quiet())
    make_user("alice")
    page = testing.login(app, "alice", "alice-Secret-123").follow()
    panel = page.html.select_one("main #probe-panel")
    assert panel is not None, page.text
    assert panel.b.get_text() == "hi"  # Markup is rendered as HTML, not escaped
    assert ("dashboard", None) in calls
    assert page.html.select_one("#planted") is None and page.html.select_one("main b:-soup-contains('evil')") is None
    assert '<script id="planted">alert(1)</script> from host <b>evil</b>' in page.html.select_one("main").get_text()
    assert "&lt;script id=&#34;planted&#34;&gt;" in page.text


def test_hook_eportal_health_checks(build):
    state = {"ok": False}
    seen = []

    class Probe:
        @hookimpl
        def eportal_health_checks(self, registry):
            seen.append(registry)
            return [Check("probe.disk", state["ok"], "disk full" if not state["ok"] else "42% used", "/var/lib/x")]

    class Nothing:
        @hookimpl
        def eportal_health_checks(self, registry):
            return None

    app = build(probe=Probe(), nothing=Nothing())
    res = app.get("/admin/health", status=503)
    body = json.loads(res.text)
    assert body["status"] == "fail"
    assert {"name": "probe.disk", "ok": False, "detail": "disk full"} in body["checks"]  # anonymous: no private part
    assert [c["name"] for c in body["checks"]][:2] == ["database", "scheduler"]
    assert seen[-1] is app.app.registry
    state["ok"] = True
    body = app.get("/admin/health", status=200).json
    assert body["status"] == "ok"
    assert {"name": "probe.disk", "ok": True, "detail": "42% used"} in body["checks"]


def test_health_checks_run_from_the_command_line(tmp_path):
    """``eportal health``: the same checks with no request and no running app; the private detail is
    shown (the operator is on the machine); exit 1 when one fails."""
    state = {"ok": False}

    class Probe:
        @hookimpl
        def eportal_health_checks(self, registry):
            with registry["db_read"]() as conn:  # the database is reachable through the registry
                conn.exec_driver_sql("SELECT 1")
            return [Check("probe.disk", state["ok"], "disk full", "/var/lib/eportal has 1 MiB left")]

    env = cli_env(tmp_path, probe=Probe())
    result = CliRunner().invoke(cli.build(env), ["health"])
    assert result.exit_code == 1, result.output
    assert "FAIL  probe.disk: disk full: /var/lib/eportal has 1 MiB left" in result.output
    assert "ok    database: sqlite" in result.output
    state["ok"] = True
    result = CliRunner().invoke(cli.build(env), ["health"])
    assert result.exit_code == 0, result.output


# --- events -------------------------------------------------------------------------------------
# These prove the documented argument names through pm.hook and through notify() (the helper the
# core fires them with); tests/functional/test_events.py drives each one through the app.

class Recorder:
    def __init__(self):
        self.events: list[tuple[str, dict]] = []

    @hookimpl
    def eportal_server_registered(self, request, server):
        self.events.append(("server_registered", {"request": request, "server": server}))

    @hookimpl
    def eportal_server_checked_in(self, server_id, info):
        self.events.append(("server_checked_in", {"server_id": server_id, "info": info}))

    @hookimpl
    def eportal_server_unregistered(self, request, server):
        self.events.append(("server_unregistered", {"request": request, "server": server}))

    @hookimpl
    def eportal_patchset_downloaded(self, patchset):
        self.events.append(("patchset_downloaded", {"patchset": patchset}))

    @hookimpl
    def eportal_patchset_enabled(self, patchset, feed):
        self.events.append(("patchset_enabled", {"patchset": patchset, "feed": feed}))

    @hookimpl
    def eportal_patchset_disabled(self, patchset, feed):
        self.events.append(("patchset_disabled", {"patchset": patchset, "feed": feed}))


def fire(event: str, **kwargs):
    recorder = Recorder()
    pm = make_plugin_manager(extra={"recorder": recorder}, load_entrypoints=False)
    results = getattr(pm.hook, f"eportal_{event}")(**kwargs)
    assert results == []  # return values are ignored: the recorder returns None
    events.notify(pm, event, **kwargs)
    assert recorder.events == [(event, kwargs), (event, kwargs)]
    events.notify(make_plugin_manager(load_entrypoints=False), event, **kwargs)  # nobody listening: a no-op, no error


def test_hook_eportal_server_registered():
    fire("server_registered", request=object(), server=object())


def test_hook_eportal_server_checked_in():
    fire("server_checked_in", server_id="abcdef0123456789", info={"kernel_id": "k1", "patch_level": 3})


def test_hook_eportal_server_unregistered():
    fire("server_unregistered", request=object(), server=object())


def test_hook_eportal_patchset_downloaded():
    fire("patchset_downloaded", patchset=object())


def test_hook_eportal_patchset_enabled():
    fire("patchset_enabled", patchset=object(), feed=object())


def test_hook_eportal_patchset_disabled():
    fire("patchset_disabled", patchset=object(), feed=object())


def test_event_hook_argument_names_are_enforced():
    """A listener spelling an argument the spec does not have is refused at registration."""
    class Wrong:
        @hookimpl
        def eportal_patchset_enabled(self, patchset, channel):
            pass

    from pluggy import PluginValidationError
    with pytest.raises(PluginValidationError):
        make_plugin_manager(extra={"wrong": Wrong()}, load_entrypoints=False)
