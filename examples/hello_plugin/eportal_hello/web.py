"""The plugin's console page: a route, a view and a template that fills the core layout."""
from pyramid.view import view_config

from eportal_core.api import Permission


@view_config(route_name="hello", renderer="eportal_hello:templates/hello.pt", permission=Permission.VIEW,
             request_method="GET")
def hello(request):
    return {"title": "Hello", "username": request.identity.username}


def includeme(config):
    config.add_route("hello", "/admin/hello")
    config.scan(__name__)
