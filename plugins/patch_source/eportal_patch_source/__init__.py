"""eportal-patch-source: the patch source (entry point ``patch_source = eportal_patch_source``).

Source types ``http`` and ``directory`` (through ``eportal_patch_source_types``), the Patch Source
console, the poll job, the health check, the ``patch-source`` and ``kcare`` commands and the
``kc.eportal --get-latest`` / ``--unroll`` flags.
"""
from __future__ import annotations

import json
import logging

from sqlalchemy import select

from eportal_core.api import Check, Job, NavItem, Setting, SiteSetting, SourceError, as_bool, hookimpl, int_between

from .access import PREFIX, STATE_KEY
from .directory_source import directory_source
from .http_source import http_source
from .state import PollState
from .tls import ca_file

log = logging.getLogger(__name__)

SETTINGS = [
    Setting("patch_source.poll_minutes", int_between(1, 1440), 10, "How often the source is polled, in minutes."),
    Setting("patch_source.auto_download", as_bool, True,
            "Download new patchsets when polling (they are never deployed by the poll)."),
    Setting("patch_source.timeout_seconds", int_between(1, 3600), 60, "Network timeout of each request to the source."),
    Setting("patch_source.retries", int_between(0, 20), 3,
            "How often a failed request or an interrupted download is tried again (downloads resume)."),
    Setting("patch_source.retry_backoff_seconds", int_between(0, 600), 2,
            "Wait before the first retry; doubled for each further one."),
    Setting("patch_source.ca_file", ca_file, "",
            "Absolute path of a PEM file with the CA(s) that sign the source's (or an https:// proxy's) "
            "certificate, trusted instead of the system's CAs; empty = the system's."),
]


@hookimpl
def eportal_settings():
    return SETTINGS


@hookimpl
def eportal_patch_source_types():
    return {"http": http_source, "directory": directory_source}


@hookimpl
def eportal_includeme(config):
    config.include("eportal_patch_source.web")  # routes, views and templates resolve in this package


@hookimpl
def eportal_navigation(request):
    return [NavItem("Patch Source", "patch_source", order=30,
                    also_for=("patch_source_settings", "patch_source_changelog"))]


def poll_job(ctx) -> None:
    """The scheduled poll. What the source does wrong is recorded (page, health check), not raised."""
    from . import service
    try:
        result = service.poll(service.Context(sessions=ctx.dbsession, settings=ctx.settings, pm=ctx.pm,
                                              actor="scheduler"), trigger="scheduler")
    except SourceError as exc:  # another poll holds the lock: it does the work
        log.info("patch source poll skipped: %s", exc)
        return
    if result.configured:
        (log.info if result.ok else log.warning)("patch source poll: %s", result.summary())


@hookimpl
def eportal_scheduled_jobs(settings):
    return [Job("patch_source.poll", poll_job, seconds=60 * settings.get("patch_source.poll_minutes", 10),
                description="Poll the patch source: record and download new patchsets, apply upstream blocks")]


@hookimpl
def eportal_health_checks(registry):
    try:
        with registry["db_read"]() as conn:
            stored = dict(conn.execute(select(SiteSetting.name, SiteSetting.value)
                                       .where(SiteSetting.name.in_([PREFIX + "type", STATE_KEY]))).all())
    except Exception:  # the database check reports that already
        log.debug("patch source health: cannot read the state", exc_info=True)
        return None
    if not stored.get(PREFIX + "type"):
        return None  # nothing to report: no source configured (air-gapped sites import by hand)
    try:
        state = PollState.from_json(json.loads(stored.get(STATE_KEY) or "{}"))
    except ValueError:
        state = PollState()
    if not state.started:
        return [Check("patch_source", True, "not polled yet")]
    # the URL and the messages are private: the core shows them to logged-in users only
    if state.error:
        return [Check("patch_source", False, f"the last poll failed ({state.finished} UTC)", state.error)]
    if state.failures:
        names = ", ".join(sorted(state.failures))
        return [Check("patch_source", False, f"{len(state.failures)} patchset(s) failed: {names}",
                      "; ".join(f["error"] for f in state.failures.values())[:500])]
    return [Check("patch_source", True, f"last poll {state.finished} UTC: {state.listed} patchset(s) listed")]


@hookimpl
def eportal_cli_commands():
    from .cli import commands
    return commands()


@hookimpl
def eportal_legacy_flags():
    from .cli import legacy_flags
    return legacy_flags()
