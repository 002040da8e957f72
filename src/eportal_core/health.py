"""``GET /admin/health`` and ``eportal health``: database, scheduler, check-in and plugin checks;
200 (exit 0) when all pass, else 503 (exit 1). One place decides what an anonymous caller sees."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from pyramid.registry import Registry
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config
from sqlalchemy import text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    """One health check. ``detail`` is public (anonymous load balancers read it: no URL, host, user
    or error text); ``private`` adds what only a logged-in user or the command line may see."""

    name: str
    ok: bool
    detail: str = ""
    private: str = ""

    def shown(self, private: bool) -> dict:
        detail = f"{self.detail}: {self.private}" if private and self.private else self.detail
        return {"name": self.name, "ok": self.ok, "detail": detail}


def database_check(engine) -> Check:
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return Check("database", False, f"{type(exc).__name__}: cannot query the database")
    return Check("database", True, f"{engine.dialect.name}, {1000 * (time.perf_counter() - started):.1f} ms")


def scheduler_check(registry) -> tuple[Check, dict]:
    scheduler = registry.get("scheduler")
    if scheduler is None:
        enabled = registry.settings.get("eportal.scheduler")
        return Check("scheduler", True, "not run in this process"), {"running": False, "enabled": bool(enabled)}
    info = scheduler.describe()
    failing = [jid for jid, st in info["jobs"].items() if st["last_error"]]
    ok = info["running"] and not failing
    detail = "leader" if info["leader"] else "standby (another process runs the jobs)"
    if not info["running"]:
        detail = "stopped"
    elif failing:
        detail = "failing jobs: " + ", ".join(sorted(failing))
    return Check("scheduler", ok, detail), info


def checkins_check(registry) -> tuple[Check, dict]:
    """The coalesced check-in writer: what waits in memory, what was written, whether the last write failed."""
    buf = registry.get("checkins")
    if buf is None:
        return Check("checkins", True, "no check-in buffer in this process"), {}
    # only the exception's type: its text may name hosts, users or SQL, and this page is public
    last_error = buf.last_error.split(":", 1)[0] if buf.last_error else None
    info = {"pending": buf.pending(), "flushed": buf.flushed, "errors": buf.errors, "last_error": last_error}
    directory = registry.get("agent_directory")
    memory = getattr(directory, "memory", None)
    # server ids kept in memory for check-ins (agent/memory.py): how many, and whether loading finished
    info["in_memory"] = None if memory is None else {"servers": len(memory.pks), "loaded": memory.loaded}
    if last_error:
        return Check("checkins", False, f"the last write failed ({last_error}), {info['pending']} pending; see the log"), info
    return Check("checkins", True, f"{info['pending']} pending, {info['flushed']} written"), info


def plugin_checks(registry) -> list[Check]:
    """Every plugin's checks; a plugin whose check raises is itself a failed check (logged, its
    message kept private)."""
    checks: list[Check] = []
    for impl in reversed(registry.pm.hook.eportal_health_checks.get_hookimpls()):  # pluggy's call order
        try:
            checks.extend(impl.function(registry=registry) or [])
        except Exception as exc:
            log.exception("health check of plugin %s failed", impl.plugin_name)
            checks.append(Check(impl.plugin_name, False, "the check itself failed", f"{type(exc).__name__}: {exc}"))
    return checks


def run_checks(registry, *, private: bool) -> dict:
    """The whole health report: ``status``, ``checks`` (each with its private detail only when
    ``private``), and the scheduler's and check-in writer's state."""
    db = database_check(registry["dbengine"])
    sched, sched_info = scheduler_check(registry)
    checkins, checkins_info = checkins_check(registry)
    checks = [db, sched, checkins, *plugin_checks(registry)]
    if not private:
        # anonymous callers (load balancers) get the exception type only, never its message
        for job in sched_info.get("jobs", {}).values():
            if job.get("last_error"):
                job["last_error"] = job["last_error"].split(":", 1)[0]
    ok = all(c.ok for c in checks)
    return {
        "status": "ok" if ok else "fail",
        "checks": [c.shown(private) for c in checks],
        "scheduler": sched_info,
        "checkins": checkins_info,
    }


@view_config(route_name="health", renderer="json", permission=NO_PERMISSION_REQUIRED, request_method=("GET", "HEAD"))
def health(request):
    report = run_checks(request.registry, private=request.identity is not None)
    request.response.status_int = 200 if report["status"] == "ok" else 503
    request.response.headers["Cache-Control"] = "no-store"
    return report


def offline_registry(settings: dict, pm, engine) -> Registry:
    """What a check gets outside the app (``eportal health``): settings, plugins and the database,
    with no scheduler and no check-in writer of its own (those belong to the serving processes)."""
    registry = Registry("eportal-offline")
    registry.settings = settings
    registry.pm = pm
    registry["dbengine"] = engine
    registry["db_read"] = engine.connect
    return registry


def includeme(config):
    config.add_route("health", "/admin/health")
    config.scan(__name__)
