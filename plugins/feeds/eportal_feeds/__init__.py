"""eportal-feeds: feed management (entry point ``feeds = eportal_feeds`` in the group ``eportal``).

- console: Settings → Feeds (``/admin/feeds/``): list, create, edit, delete (keys move to ``main``);
- auto update: a scheduled job (every ``feeds.auto_update_seconds``) and ``kc.eportal --auto-update``;
- CLI: ``kc.eportal feed`` / ``eportal feed``;
- REST API: ``/admin/api/feeds/``, ``/admin/api/patchsets/``, ``/admin/api/patchsets/manage`` (protocol.md §6).

The feed rules live in ``eportal_core.services.feeds`` (the core keeps ``main`` and its keys sound
without this plugin), the auto-update rule in :mod:`eportal_feeds.service`, the deploy order in
``eportal_core.services.deploy``.
"""
from eportal_core.api import SETTINGS, NavItem, Permission, Setting, hookimpl, int_between

JOB_ID = "feeds.auto_update"


@hookimpl
def eportal_settings():
    return [Setting("feeds.auto_update_seconds", int_between(10, 86400), 60,
                    "How often auto feeds enable the patchsets that are due (seconds).")]


@hookimpl
def eportal_includeme(config):
    config.include("eportal_feeds.web")  # routes, views, templates and API docs resolve in this package


@hookimpl
def eportal_navigation(request):
    # Settings → Feeds, as the product documentation has it
    return [NavItem("Feeds", "feeds", order=800, permission=Permission.VIEW, also_for=("feed_add", "feed_edit"),
                    group=SETTINGS)]


@hookimpl
def eportal_scheduled_jobs(settings):
    from eportal_core.api import Job

    from .jobs import auto_update_job
    return [Job(JOB_ID, auto_update_job, seconds=settings["feeds.auto_update_seconds"],
                description="Enable the patchsets that are due on auto-update feeds")]


@hookimpl
def eportal_cli_commands():
    from .cli import feed_command
    return [feed_command]


@hookimpl
def eportal_legacy_flags():
    from .cli import auto_update_flag
    return [auto_update_flag()]


@hookimpl
def eportal_health_checks(registry):
    from .jobs import health_check
    check = health_check(registry)
    return [check] if check is not None else None
