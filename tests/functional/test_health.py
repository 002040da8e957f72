"""GET /admin/health: JSON {status, checks, scheduler, checkins}; 200, or 503 when a check fails."""
from __future__ import annotations

from contextlib import contextmanager

from eportal_core.health import Check
from eportal_core.plugins import hookimpl


class ReportingPlugin:
    def __init__(self, *checks, raises: Exception | None = None):
        self.checks = list(checks)
        self.raises = raises
        self.calls = 0

    @hookimpl
    def eportal_health_checks(self, registry):
        self.calls += 1
        self.registry = registry
        if self.raises is not None:
            raise self.raises
        return self.checks or None


@contextmanager
def registered(app, plugin, name="test_health_plugin"):
    pm = app.registry.pm
    pm.register(plugin, name=name)
    try:
        yield plugin
    finally:
        pm.unregister(name=name)


def checks_by_name(body) -> dict:
    return {c["name"]: c for c in body["checks"]}


def test_health_is_public_json_and_ok(testapp):
    res = testapp.get("/admin/health", status=200)
    assert res.content_type == "application/json"
    body = res.json
    assert set(body) == {"status", "checks", "scheduler", "checkins"}
    assert body["status"] == "ok"
    checks = checks_by_name(body)
    assert checks["database"]["ok"] is True
    assert checks["database"]["detail"].startswith(testapp.app.registry["dbengine"].dialect.name)
    assert checks["scheduler"]["ok"] is True
    assert all(set(c) == {"name", "ok", "detail"} for c in body["checks"])
    # the tests run without a scheduler (eportal.scheduler = false)
    assert body["scheduler"] == {"running": False, "enabled": False}
    assert "no-store" in res.headers["Cache-Control"]
    assert "Set-Cookie" not in res.headers  # monitoring does not leave a session row per probe


def test_health_answers_head(testapp):
    res = testapp.head("/admin/health", status=200)
    assert res.body == b""


def test_health_refuses_post(testapp):
    res = testapp.post("/admin/health", status=404)
    assert res.json == {"error": "not-found"}


def test_a_plugin_adds_a_passing_check(testapp):
    with registered(testapp.app, ReportingPlugin(Check("license", True, "valid until 2099"))) as plugin:
        res = testapp.get("/admin/health", status=200)
    assert plugin.calls == 1
    assert checks_by_name(res.json)["license"] == {"name": "license", "ok": True, "detail": "valid until 2099"}
    assert res.json["status"] == "ok"


def test_a_failing_plugin_check_makes_it_503(testapp):
    plugin = ReportingPlugin(Check("license", True), Check("patch-store", False, "disk full"))
    with registered(testapp.app, plugin):
        res = testapp.get("/admin/health", status=503)
    body = res.json
    assert body["status"] == "fail"
    checks = checks_by_name(body)
    assert checks["patch-store"] == {"name": "patch-store", "ok": False, "detail": "disk full"}
    assert checks["database"]["ok"] is True and checks["license"]["ok"] is True
    assert "no-store" in res.headers["Cache-Control"]
    # unregistered again: healthy
    assert testapp.get("/admin/health", status=200).json["status"] == "ok"
    assert "patch-store" not in checks_by_name(testapp.get("/admin/health").json)


def test_a_plugin_with_nothing_to_report(testapp):
    with registered(testapp.app, ReportingPlugin()) as plugin:
        res = testapp.get("/admin/health", status=200)
    assert plugin.calls == 1
    assert set(checks_by_name(res.json)) == {"database", "scheduler", "checkins"}


def test_a_crashing_plugin_check_is_a_failed_check_without_traceback(testapp, as_admin, other_client):
    plugin = ReportingPlugin(raises=RuntimeError("secret internals"))
    with registered(testapp.app, plugin, name="crashy"):
        res = other_client().get("/admin/health", status=503)
        assert res.content_type == "application/json"
        assert "Traceback" not in res.text and "secret internals" not in res.text
        assert checks_by_name(res.json)["crashy"] == {"name": "crashy", "ok": False, "detail": "the check itself failed"}
        # a logged-in admin sees what went wrong
        detailed = checks_by_name(testapp.get("/admin/health", status=503).json)["crashy"]
    assert detailed["detail"] == "the check itself failed: RuntimeError: secret internals"
    assert checks_by_name(res.json)["database"]["ok"] is True  # the other checks still ran


def test_the_private_detail_is_for_logged_in_users_only(testapp, as_readonly, other_client):
    """The core decides once what an anonymous caller sees: a check's ``private`` part never
    reaches a load balancer, and the plugin does not get the request to decide it itself."""
    plugin = ReportingPlugin(Check("upstream", False, "the last poll failed", "https://user@mirror.example/ refused"))
    with registered(testapp.app, plugin):
        public = checks_by_name(other_client().get("/admin/health", status=503).json)["upstream"]
        detailed = checks_by_name(testapp.get("/admin/health", status=503).json)["upstream"]
    assert public == {"name": "upstream", "ok": False, "detail": "the last poll failed"}
    assert detailed["detail"] == "the last poll failed: https://user@mirror.example/ refused"
    assert plugin.registry is testapp.app.registry  # the registry, not a request


def test_a_broken_database_makes_it_503(make_app_client, tmp_path):
    """The database check itself: an app whose database cannot be opened answers 503, without details."""
    from eportal_core.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path}/missing-dir/eportal.sqlite")
    try:
        res = make_app_client(engine=engine).get("/admin/health", status=503)
    finally:
        engine.dispose()
    body = res.json
    assert body["status"] == "fail"
    database = checks_by_name(body)["database"]
    assert database["ok"] is False
    assert "cannot query the database" in database["detail"]
    assert "missing-dir" not in res.text  # no paths or driver messages for anonymous callers


@contextmanager
def scheduler_in_registry(app, *, running=True, leader=True, errors=None):
    """A real SiteScheduler object (not started: no threads) with the given state, as ``serve`` registers it."""
    from eportal_core.scheduler import JobStatus, SiteScheduler
    scheduler = SiteScheduler(app.registry.settings, app.registry["dbengine"], app.registry.pm)
    scheduler.running, scheduler.is_leader = running, leader
    scheduler.status = {"core.housekeeping": JobStatus("housekeeping", 3600, runs=3, last_error=None)}
    for job_id, error in (errors or {}).items():
        scheduler.status[job_id] = JobStatus(job_id, 60, runs=1, failures=1, last_error=error)
    app.registry["scheduler"] = scheduler
    try:
        yield scheduler
    finally:
        del app.registry["scheduler"]


def test_scheduler_leader_and_standby_are_healthy(testapp):
    with scheduler_in_registry(testapp.app, leader=True):
        body = testapp.get("/admin/health", status=200).json
    assert checks_by_name(body)["scheduler"] == {"name": "scheduler", "ok": True, "detail": "leader"}
    assert body["scheduler"]["running"] is True and body["scheduler"]["leader"] is True
    assert body["scheduler"]["jobs"]["core.housekeeping"]["runs"] == 3
    with scheduler_in_registry(testapp.app, leader=False):
        body = testapp.get("/admin/health", status=200).json
    assert checks_by_name(body)["scheduler"]["detail"].startswith("standby")


def test_failing_job_or_stopped_scheduler_is_503(testapp):
    with scheduler_in_registry(testapp.app, errors={"feeds.poll": "RuntimeError: upstream unreachable"}):
        body = testapp.get("/admin/health", status=503).json
    assert body["status"] == "fail"
    assert checks_by_name(body)["scheduler"] == {"name": "scheduler", "ok": False, "detail": "failing jobs: feeds.poll"}
    with scheduler_in_registry(testapp.app, running=False):
        body = testapp.get("/admin/health", status=503).json
    assert checks_by_name(body)["scheduler"] == {"name": "scheduler", "ok": False, "detail": "stopped"}
    assert testapp.get("/admin/health", status=200).json["scheduler"] == {"running": False, "enabled": False}
