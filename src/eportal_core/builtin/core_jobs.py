"""The core's housekeeping job: expired console sessions and old login failures."""
from ..plugins import hookimpl
from ..scheduler import Job
from ..services.login import prune_failures
from ..session import prune_sessions


def housekeeping(ctx):
    with ctx.dbsession() as db:
        prune_sessions(db, ctx.settings)
        prune_failures(db, ctx.settings)


@hookimpl
def eportal_scheduled_jobs(settings):
    return [Job("core.housekeeping", housekeeping, seconds=3600,
                description="Delete expired console sessions and old login failures")]
