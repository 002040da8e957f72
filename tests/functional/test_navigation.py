"""The navigation bar's groups (``NavItem.group``): one item in the bar that opens a menu of its entries.

Only the core's plugins and the probe below are loaded, so the bar is the same whichever plugins
(feeds, patch_source, ...) the test environment has installed.
"""
from __future__ import annotations

import pytest

from eportal_core.permissions import Permission
from eportal_core.plugins import hookimpl
from eportal_core.testing import login
from eportal_core.web.ui import SETTINGS, NavItem

MAIN = 'nav[aria-label="Main"]'


class GroupProbe:
    @hookimpl
    def eportal_navigation(self, request):
        return [
            NavItem("Flat", "kcserver_list", order=25),  # no group: a link in the bar, as before groups
            NavItem("Site setup", "user_add", order=920, permission=Permission.MANAGE, group=SETTINGS),
            # a group whose every entry needs MANAGE: read-only users must not see an empty menu
            NavItem("Health", "health", order=700, permission=Permission.MANAGE, group="Admin tools"),
            NavItem("Ping", "ping", order=710, permission=Permission.MANAGE, group="Admin tools"),
        ]


@pytest.fixture
def client(make_testapp, make_user):
    make_user("root", "Root-Secret-1")
    make_user("rita", "Rita-Secret-1", readonly=True)
    return make_testapp(extra_plugins={"group_probe": GroupProbe()}, load_entrypoints=False)


def bar(page) -> list[str]:
    """The bar's top-level items in order: links by title, groups as ``title[entry, ...]``."""
    out = []
    for el in page.html.select(f"{MAIN} > a, {MAIN} > .nav-group"):
        if el.name == "a":
            out.append(el.get_text(strip=True))
        else:
            entries = [a.get_text(strip=True) for a in el.select(".nav-menu a")]
            out.append(f"{el.select_one('.nav-group-toggle').get_text(strip=True)}{entries}")
    return out


def group(page, title: str):
    for el in page.html.select(f"{MAIN} > .nav-group"):
        if el.select_one(".nav-group-toggle").get_text(strip=True) == title:
            return el
    return None


def test_groups_render_as_one_item_with_a_menu(client):
    login(client, "root", "Root-Secret-1")
    page = client.get("/admin/")
    # a group stands where its first entry would; entries keep their (order, title) inside it
    assert bar(page) == ["Keys", "Servers", "Flat", "Admin tools['Health', 'Ping']",
                         "Settings['Users', 'Site setup', 'API tokens']"]
    settings = group(page, "Settings")
    toggle = settings.select_one("button.nav-group-toggle")
    menu = settings.select_one(".nav-menu")
    # a disclosure: a real button that names the menu it controls; the menu is labelled by the group
    assert toggle["type"] == "button" and toggle["aria-expanded"] == "false"
    assert toggle["aria-controls"] == menu["id"] == "nav-settings"
    assert menu["role"] == "group"
    assert page.html.find(id=menu["aria-labelledby"]).get_text(strip=True) == "Settings"
    links = {a.get_text(strip=True): a["href"] for a in menu.select("a")}
    assert links == {"Users": "http://eportal.test/admin/users/", "Site setup": "http://eportal.test/admin/users/add",
                     "API tokens": "http://eportal.test/admin/tokens/"}
    # two groups, two ids
    assert group(page, "Admin tools").select_one(".nav-menu")["id"] == "nav-admin-tools"
    # on the start page no group is the current one
    assert page.html.select(f"{MAIN} .nav-group.current") == []
    assert page.html.select(f"{MAIN} .nav-group-toggle[aria-current]") == []
    assert [a.get_text(strip=True) for a in page.html.select(f'{MAIN} a[aria-current="page"]')] == ["Keys"]


def test_a_group_is_current_when_one_of_its_entries_is(client):
    login(client, "root", "Root-Secret-1")
    page = client.get("/admin/tokens/")
    settings = group(page, "Settings")
    assert "current" in settings["class"]
    assert settings.select_one(".nav-group-toggle")["aria-current"] == "true"
    assert [a.get_text(strip=True) for a in page.html.select(f'{MAIN} a[aria-current="page"]')] == ["API tokens"]
    assert "current" not in group(page, "Admin tools")["class"]
    # also_for routes count: the user form is under Users, so under Settings
    page = client.get("/admin/users/add")
    assert "current" in group(page, "Settings")["class"]
    assert {a.get_text(strip=True) for a in page.html.select(f'{MAIN} a[aria-current="page"]')} == {"Users",
                                                                                                   "Site setup"}


def test_entries_without_permission_are_hidden_and_an_empty_group_is_not_shown(client):
    login(client, "rita", "Rita-Secret-1")
    page = client.get("/admin/")
    assert bar(page) == ["Keys", "Servers", "Flat", "Settings['Users', 'API tokens']"]
    assert "Admin tools" not in page.text and "Site setup" not in page.text
    assert page.html.find(id="nav-admin-tools") is None
