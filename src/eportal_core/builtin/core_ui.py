"""The core's own navigation entries."""
from ..permissions import Permission
from ..plugins import hookimpl
from ..web.ui import SETTINGS, NavItem


@hookimpl
def eportal_navigation(request):
    return [
        NavItem("Keys", "home", order=10, also_for=("key_add", "key_edit")),
        NavItem("Servers", "kcserver_list", order=20, also_for=("kcserver",)),
        # the Settings menu (Settings → Users): the feeds plugin adds Feeds to it
        NavItem("Users", "users", order=900, permission=Permission.VIEW, also_for=("user_add",), group=SETTINGS),
        NavItem("API tokens", "tokens", order=950, permission=Permission.VIEW, group=SETTINGS),
    ]
