"""The auto-update job the site scheduler runs, and its health check."""
from __future__ import annotations

import threading

from eportal_core.api import Check

from . import JOB_ID
from .service import run_auto_update

#: what the last run in this process did (the scheduler keeps its time and error)
_last = {"enabled": 0, "feeds": 0}
_lock = threading.Lock()


def auto_update_job(ctx) -> None:
    """Enable what is due on every auto feed, in one transaction (events fire through services.deploy)."""
    with ctx.dbsession() as db:
        results = run_auto_update(db, pm=ctx.pm)
        enabled = sum(len(r.enabled) for r in results)
    with _lock:
        _last.update(enabled=enabled, feeds=len(results))


def health_check(registry) -> Check | None:
    """The job's last run; its error's type for everyone, the message for logged-in users only (the
    page is public). None in a process without the scheduler (the core's scheduler check says so)."""
    name = JOB_ID
    scheduler = registry.get("scheduler")
    if scheduler is None:
        return None
    status = scheduler.status.get(name)
    if status is None:
        return Check(name, True, "not scheduled in this process")
    if status.last_error:
        kind, _, message = status.last_error.partition(":")
        return Check(name, False, f"the last run at {status.last_run} UTC failed: {kind}", message.strip())
    if not status.last_run:
        return Check(name, True, "not run yet")
    with _lock:
        last = dict(_last)
    return Check(name, True, f"last run {status.last_run} UTC: {last['feeds']} auto feed(s), "
                             f"{last['enabled']} patchset(s) enabled")
