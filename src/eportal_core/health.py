"""``GET /admin/health``: database, scheduler and plugin checks; 200 when all pass, else 503."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config
from sqlalchemy import text


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


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


@view_config(route_name="health", renderer="json", permission=NO_PERMISSION_REQUIRED, request_method=("GET", "HEAD"))
def health(request):
    db = database_check(request.registry["dbengine"])
    sched, sched_info = scheduler_check(request.registry)
    checkins, checkins_info = checkins_check(request.registry)
    checks = [db, sched, checkins]
    for contributed in request.registry.pm.hook.eportal_health_checks(request=request):
        checks.extend(contributed or [])
    if request.identity is None:
        # anonymous callers (load balancers) get the exception type only, never its message
        for job in sched_info.get("jobs", {}).values():
            if job.get("last_error"):
                job["last_error"] = job["last_error"].split(":", 1)[0]
    ok = all(c.ok for c in checks)
    request.response.status_int = 200 if ok else 503
    request.response.headers["Cache-Control"] = "no-store"
    return {
        "status": "ok" if ok else "fail",
        "checks": [asdict(c) for c in checks],
        "scheduler": sched_info,
        "checkins": checkins_info,
    }


def includeme(config):
    config.add_route("health", "/admin/health")
    config.scan(__name__)
