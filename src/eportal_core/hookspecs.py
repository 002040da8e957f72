"""Every hook eportal calls. Each docstring is the contract: when, arguments, return, ``None``.

Plugins implement these with ``@eportal_core.plugins.hookimpl`` and register under the entry
point group ``eportal``. ``firstresult`` hooks mean "one plugin handles this"; the others
collect a contribution from every plugin.
"""
import pluggy

hookspec = pluggy.HookspecMarker("eportal")


# --- configuration -------------------------------------------------------------------------

@hookspec
def eportal_settings():
    """Declare the ini settings this plugin reads.

    Called once at start-up, before the settings are validated. Return a list of
    :class:`eportal_core.settings.Setting`; their keys must live in the plugin's own namespace
    (``<plugin>.*``), which then becomes strict: unknown keys there stop start-up.
    Return ``None`` or ``[]`` when the plugin has no settings.
    """


@hookspec
def eportal_includeme(config):
    """Add routes, views, templates and static files to the Pyramid configurator.

    Called once while the WSGI app is assembled, after the core's own includes and before
    ``config.scan()``. Implementations should call ``config.include("<plugin>.web")`` so that
    asset specs resolve inside the plugin's package. Return value is ignored.
    """


# --- authentication -------------------------------------------------------------------------

@hookspec(firstresult=True)
def eportal_authenticate(request, login, password):
    """Decide who ``login`` is, given the ``password`` typed at the console or in Basic auth.

    Called on every login attempt, after throttling; the first non-``None`` answer wins. Return the
    :class:`eportal_core.models.User` when the credentials are good. A plugin backed by a directory
    gets that row from :func:`eportal_core.api.sync_external_user` (created on first login with the
    plugin's ``source``, role kept in line, audited), never by adding rows itself. Return ``False``
    when this plugin owns ``login`` and the password is wrong (the other plugins are not asked);
    return ``None`` when the plugin does not know ``login``. Never log the password.

    Order: the built-in ``local_auth`` is ``tryfirst`` (local users, including the admin who must
    be able to log in when the directory is down, are decided without a network round trip). A
    plugin that goes over the network (LDAP, RADIUS, an IdP) must be ``@hookimpl(trylast=True)``:
    it is then asked only for logins no local plugin owns, so a slow or unreachable directory never
    delays a local login and a directory entry can never shadow a local account.
    """


# --- patch sources, monitoring ----------------------------------------------------------------

@hookspec
def eportal_patch_source_types():
    """Contribute upstream patch source types.

    Called once at start-up (a type name offered by two plugins stops start-up with a message
    naming both) and whenever the patch source is configured or polled. Return a dict mapping a
    type name (``"http"``, ``"directory"``, ``"s3"``...) to a factory
    ``factory(settings, access_info) -> source``: ``access_info`` is an
    :class:`eportal_core.sources.AccessInfo`, the source follows the
    :class:`eportal_core.sources.Source` protocol (``index()`` and ``fetch(entry, progress)``), and
    the factory raises :class:`eportal_core.sources.SourceError` (with ``field``) for access info it
    cannot use. ``None`` when the plugin adds no types.
    """


@hookspec
def eportal_monitoring_formats():
    """Contribute output formats for fleet monitoring (Nagios, Zabbix, ...).

    Reserved for the monitoring plugin, which will be its consumer: no endpoint of the core calls it
    yet. Called once at start-up, where a format name offered by two plugins stops start-up with a
    message naming both. Return a dict mapping a format name to
    ``render(counts, problems) -> (content_type, body)``; ``None`` when the plugin adds none.
    """


# --- jobs, CLI, UI ------------------------------------------------------------------------

@hookspec
def eportal_scheduled_jobs(settings):
    """Contribute periodic jobs to the site scheduler.

    Called once when the scheduler starts, with the validated settings. Return a list of
    :class:`eportal_core.scheduler.Job`; ``None`` or ``[]`` when there are none. Jobs run only in
    the process holding the site's scheduler lease; an exception in a job is logged and shown in
    the health check, never propagated.
    """


@hookspec
def eportal_cli_commands():
    """Contribute click commands to both ``eportal`` and ``kc.eportal``.

    Called when either console script starts. Return a list of ``click.Command`` objects
    (``None`` or ``[]`` for none). A command needing the database takes the
    :class:`eportal_core.cli.env.CliEnv` from ``click.get_current_context().obj``.
    """


@hookspec
def eportal_legacy_flags():
    """Contribute top-level ``kc.eportal`` flags such as ``--get-latest``.

    Called when ``kc.eportal`` starts. Return a list of :class:`eportal_core.cli.kc.LegacyFlag`
    (a ``click.Option`` and ``run(env, value)``); ``None`` for none.
    """


@hookspec
def eportal_navigation(request):
    """Contribute entries to the console's navigation bar.

    Called on each console page render. Return a list of :class:`eportal_core.web.ui.NavItem`
    (title, route name, order, permission, ``also_for`` routes, ``group``); entries the user lacks
    permission for are hidden. Entries are sorted by (order, title). Entries with the same ``group``
    title (e.g. ``eportal_core.web.ui.SETTINGS``, ``"Settings"``, where the core puts Users and API
    tokens and the feeds plugin Feeds) form one item of the bar, standing where its first entry
    would, that opens a menu of them; a group with no entry left after the permission check is
    not shown. ``group=None`` (the default) is a top-level entry. ``None`` when the plugin adds
    no navigation.
    """


@hookspec
def eportal_ui_panels(request, slot, context):
    """Fill a named slot of a console page with HTML.

    Called when a template renders ``slot``, with whatever object that page is about as
    ``context``. The slots:

    - ``"dashboard"``: the start page, below the Key Inventory; ``context`` is ``None``.
    - ``"server"``: one server's page, below its record; ``context`` is the
      :class:`eportal_core.models.Server`.

    Return a :class:`markupsafe.Markup` (HTML the plugin built and escaped itself, e.g. from its own
    Chameleon template) or a plain ``str`` (shown as text: the core escapes it, so user data in it
    can never become markup); ``None`` to add nothing.
    """


@hookspec
def eportal_health_checks(registry):
    """Report the plugin's health.

    Called by ``GET /admin/health`` on each request and by ``eportal health`` on the command line,
    with the app's :class:`pyramid.registry.Registry` (``registry.settings``, ``registry.pm``,
    ``registry["dbengine"]``; in the app also ``registry["db_read"]``), never a request: a check
    must not depend on who asks. Return a list of :class:`eportal_core.health.Check`
    (``name``, ``ok``, ``detail``, ``private``): ``detail`` is shown to everyone, including
    anonymous load balancers, so it holds no URL, host, user or message text; ``private`` (an
    error message, a path) is added only for logged-in users and the command line. Any check with
    ``ok=False`` turns the answer into a 503. ``None`` when the plugin has nothing to report; an
    exception is reported as a failed check named after the plugin.
    """


# --- events -----------------------------------------------------------------------------

@hookspec
def eportal_server_registered(request, server):
    """A server registered with a key. Called after the row is flushed, inside the request's
    transaction; ``server`` is the :class:`eportal_core.models.Server`. Return value is ignored.
    """


@hookspec
def eportal_server_checked_in(server_id, info):
    """A server checked in. Called from the check-in flush (once a second, outside any request)
    with the server_id and the dict of reported fields. Keep it cheap. Return value is ignored.
    """


@hookspec
def eportal_server_unregistered(request, server):
    """A server is being removed (by the agent, the console, the API or a key removal).
    Called before the row is deleted. Return value is ignored.
    """


@hookspec
def eportal_patchset_downloaded(patchset):
    """A patchset archive was imported into the patch store. ``patchset`` is the
    :class:`eportal_core.models.Patchset` row. Return value is ignored.
    """


@hookspec
def eportal_patchset_enabled(patchset, feed):
    """``patchset`` was enabled on ``feed`` (a :class:`eportal_core.models.Feed`). Called once per
    patchset when a deploy enables several. Return value is ignored.
    """


@hookspec
def eportal_patchset_disabled(patchset, feed):
    """``patchset`` was disabled (rolled back or blocked) on ``feed``. Called once per patchset.
    Return value is ignored.
    """
