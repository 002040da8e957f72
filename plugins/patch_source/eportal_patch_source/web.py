"""The Patch Source console: the list of patchsets per feed with deploy and roll back buttons, the
access info form, "Check now" and the changelogs. Views are thin: the rules are in ``service`` and
``eportal_core.services.deploy``; network work goes to the background :class:`Runner`."""
from __future__ import annotations

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.view import view_config
from sqlalchemy import select

from eportal_core.api import (
    MAIN_FEED,
    STATUS_BLOCKED,
    Feed,
    Patchset,
    Permission,
    ServiceError,
    SourceError,
    client_ip,
    deploy,
    sentence,
    source_types,
    transaction_session,
)

from . import access as access_store
from . import presenters, service
from .runner import Runner
from .state import load_state

RUNNER = "patch_source.runner"
TYPE_LABELS = {"http": "HTTP(S) upstream", "directory": "Folder of archives"}


def runner(request) -> Runner:
    return request.registry[RUNNER]


def sessions_for(registry):
    """Sessions of their own (not the request's) for work that outlives or runs beside the request."""
    factory = registry["dbsession_factory"]
    return lambda: transaction_session(factory)


def context(request) -> service.Context:
    return service.Context(sessions=sessions_for(request.registry), settings=request.registry.settings,
                           pm=request.registry.pm, actor=request.identity.username)


def _bind_progress(ctx: service.Context, task) -> None:
    ctx.step = lambda text: setattr(task, "step", text)
    ctx.progress = lambda name, done, total: setattr(task, "step", presenters.progress_text(name, done, total))


def start_poll(request) -> bool:
    """Start "Check now" in the background; False when another console task is running."""
    ctx = context(request)

    def task(t):
        _bind_progress(ctx, t)
        # what the source did wrong is in the poll state, which the page shows
        return service.poll(ctx, trigger="console", retry_refused=True).summary()
    return runner(request).submit("Checking the patch source", task, kind="poll")


def _list_url(request, feed: str) -> str:
    return request.route_url("patch_source", _query={"feed": feed} if feed != MAIN_FEED else {})


# --- the list ---------------------------------------------------------------------------------------

@view_config(route_name="patch_source", renderer="eportal_patch_source:templates/list.pt", request_method="GET",
             permission=Permission.VIEW)
def patchsets(request):
    db = request.dbsession
    feeds = list(db.scalars(select(Feed).order_by(Feed.name != MAIN_FEED, Feed.name)))
    wanted = request.GET.get("feed", MAIN_FEED)
    feed = next((f for f in feeds if f.name == wanted), None)
    if feed is None:
        feed = next(f for f in feeds if f.name == MAIN_FEED)
        request.session.flash(f"There is no feed named '{wanted[:64]}': showing {MAIN_FEED}.", "error")
    info = access_store.load(db)
    state = load_state(db)
    rows = presenters.rows(request, db, feed, state)
    work = runner(request)
    return {
        "title": "Patch Source",
        "feed": feed.name,
        "tabs": [{"name": f.name, "url": _list_url(request, f.name), "current": f.id == feed.id} for f in feeds],
        "rows": rows,
        "show_product": len({r["product"] for r in rows}) > 1,
        "source": presenters.source_summary(info, TYPE_LABELS),
        "poll": presenters.poll_summary(state),
        "task": work.current,
        "last_task": work.last,
        "settings_url": request.route_url("patch_source_settings"),
        "check_url": request.route_url("patch_source_check"),
        "deploy_url": request.route_url("patch_source_deploy"),
        "rollback_url": request.route_url("patch_source_rollback"),
    }


@view_config(route_name="patch_source_changelog", renderer="eportal_patch_source:templates/changelog.pt",
             request_method="GET", permission=Permission.VIEW)
def changelog(request):
    patchset = request.dbsession.scalar(select(Patchset).where(Patchset.name == request.matchdict["name"]))
    if patchset is None:
        raise HTTPNotFound()
    return {"title": f"Changelog of {patchset.name}", "name": patchset.name,
            "released": presenters.when(patchset.released), "changelog": patchset.changelog or "",
            "downloaded": patchset.downloaded is not None, "blocked": patchset.status == STATUS_BLOCKED,
            "back_url": request.route_url("patch_source")}


# --- actions ----------------------------------------------------------------------------------------

@view_config(route_name="patch_source_check", request_method="POST", permission=Permission.MANAGE)
def check_now(request):
    if access_store.load(request.dbsession) is None:
        request.session.flash("Set the patch source's access info first.", "error")
        return HTTPSeeOther(request.route_url("patch_source_settings"))
    if start_poll(request):
        request.session.flash("Checking the patch source. This page shows the result when it is done.", "info")
    else:
        request.session.flash("Another patch source task is running: try again when it is done.", "error")
    return HTTPSeeOther(_list_url(request, request.POST.get("feed", MAIN_FEED)))


def _target(request):
    db = request.dbsession
    return service.feed_by_name(db, request.POST.get("feed", MAIN_FEED)), service.get_patchset(db, request.POST.get("patchset", ""))


@view_config(route_name="patch_source_deploy", request_method="POST", permission=Permission.MANAGE)
def deploy_view(request):
    """"Deploy this patch, and all before it": at once when everything is downloaded, else in the
    background after the downloads."""
    feed_name = request.POST.get("feed", MAIN_FEED)
    try:
        feed, patchset = _target(request)
        if patchset.status == STATUS_BLOCKED:
            raise ServiceError(f"{patchset.name} is blocked upstream and cannot be deployed")
        missing = [p.name for p in service.missing_for(request.dbsession, feed, patchset)]
        if not missing:
            enabled = deploy.enable_upto(request.dbsession, feed, patchset, pm=request.registry.pm,
                                         actor=request.identity.username)
            _flash_changes(request, f"Enabled on {feed.name}", enabled,
                           f"Nothing to do: {patchset.name} is enabled on {feed.name} already.")
        else:
            ctx = context(request)
            name, target = patchset.name, feed.name

            def task(t):
                _bind_progress(ctx, t)
                return service.deploy_upto(ctx, target, name).summary()
            if runner(request).submit(f"Deploying {name} to {target}", task, kind="deploy"):
                request.session.flash(f"Downloading {', '.join(missing)} first; then {name} is deployed to {target}.",
                                      "info")
            else:
                request.session.flash("Another patch source task is running: try again when it is done.", "error")
    except ServiceError as exc:
        request.session.flash(sentence(str(exc)), "error")
    return HTTPSeeOther(_list_url(request, feed_name))


def _flash_changes(request, done: str, patchsets, nothing: str) -> None:
    """``done: A, B.`` when a deploy or rollback changed patchsets, else ``nothing`` as information."""
    if patchsets:
        request.session.flash(f"{done}: {', '.join(p.name for p in patchsets)}.", "ok")
    else:
        request.session.flash(nothing, "info")


@view_config(route_name="patch_source_rollback", request_method="POST", permission=Permission.MANAGE)
def rollback_view(request):
    """"Roll back this patch, and all after it" on one feed."""
    feed_name = request.POST.get("feed", MAIN_FEED)
    try:
        feed, patchset = _target(request)
        disabled = deploy.rollback_from(request.dbsession, feed, patchset, pm=request.registry.pm,
                                        actor=request.identity.username)
        _flash_changes(request, f"Disabled on {feed.name}", disabled,
                       f"Nothing to roll back: {patchset.name} is not enabled on {feed.name}.")
    except ServiceError as exc:
        request.session.flash(sentence(str(exc)), "error")
    return HTTPSeeOther(_list_url(request, feed_name))


# --- settings ---------------------------------------------------------------------------------------

def _settings_page(request, form: dict, error: str = "", error_field: str = "") -> dict:
    info = access_store.load(request.dbsession)
    order = list(TYPE_LABELS)
    types = sorted(source_types(request.registry.pm), key=lambda t: (order.index(t) if t in order else len(order), t))
    return {"title": "Patch Source settings", "form": form, "error": sentence(error) if error else "",
            "error_field": error_field, "password_set": bool(info and info.password),
            "types": [{"name": t, "label": TYPE_LABELS.get(t, t)} for t in types],
            "action_url": request.route_url("patch_source_settings"), "back_url": request.route_url("patch_source")}


@view_config(route_name="patch_source_settings", renderer="eportal_patch_source:templates/settings.pt",
             request_method="GET", permission=Permission.VIEW)
def settings_form(request):
    info = access_store.load(request.dbsession) or access_store.AccessInfo()
    form = {"type": info.type, "url": info.url, "path": info.path, "login": info.login}
    return _settings_page(request, form)


@view_config(route_name="patch_source_settings", renderer="eportal_patch_source:templates/settings.pt",
             request_method="POST", permission=Permission.MANAGE)
def settings_save(request):
    form = {name: request.POST.get(name, "").strip() for name in ("type", "url", "path", "login")}
    password = request.POST.get("password", "")
    try:
        with request.dbsession.begin_nested():  # a refusal stores nothing
            access_store.save(request.dbsession, access_store.AccessInfo(password=password, **form),
                              pm=request.registry.pm, settings=request.registry.settings,
                              keep_password=not request.POST.get("clear_password"),
                              actor=request.identity.username, ip=client_ip(request))
    except SourceError as exc:
        request.response.status_int = 400
        return _settings_page(request, form, str(exc), exc.field)
    request.session.flash("Patch source saved.", "ok")
    # the check runs once this request has committed what it saved (its own sessions wait for that)
    request.tm.get().addAfterCommitHook(lambda ok: ok and start_poll(request))
    return HTTPSeeOther(request.route_url("patch_source"))


def includeme(config):
    config.registry[RUNNER] = Runner()
    config.add_route("patch_source", "/admin/patch-source/")
    config.add_route("patch_source_settings", "/admin/patch-source/settings")
    config.add_route("patch_source_check", "/admin/patch-source/check")
    config.add_route("patch_source_deploy", "/admin/patch-source/deploy")
    config.add_route("patch_source_rollback", "/admin/patch-source/rollback")
    config.add_route("patch_source_changelog", r"/admin/patch-source/{name:[A-Za-z0-9_]{1,64}}/changelog")
    config.scan(__name__)
