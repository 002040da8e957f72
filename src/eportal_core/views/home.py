"""The start page."""
from importlib import metadata

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config
from sqlalchemy import func, select

from ..models import Feed, Key, Patchset, Server, User


@view_config(route_name="admin_root", request_method="GET")
def admin_root(request):
    return HTTPSeeOther(request.route_url("home"))


@view_config(route_name="home", renderer="eportal_core:templates/home.pt", request_method="GET")
def home(request):
    db = request.dbsession

    def count(model):
        return db.scalar(select(func.count()).select_from(model)) or 0

    return {
        "title": "Dashboard",
        "counts": [("Keys", count(Key)), ("Servers", count(Server)), ("Feeds", count(Feed)),
                   ("Patchsets", count(Patchset)), ("Users", count(User))],
        "version": metadata.version("eportal-core"),
    }


def includeme(config):
    config.add_route("admin_root", "/admin")
    config.add_route("home", "/admin/")
