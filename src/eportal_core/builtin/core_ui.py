"""The core's own navigation entries."""
from ..permissions import Permission
from ..plugins import hookimpl
from ..ui import NavItem


@hookimpl
def eportal_navigation(request):
    return [
        NavItem("Dashboard", "home", order=10),
        NavItem("Users", "users", order=900, permission=Permission.VIEW, also_for=("user_add",)),
    ]
