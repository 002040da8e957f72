"""The server inventory (/admin/kcserver/): filters, sorting, pages, remove selected; one server's page
with every §4 field, its tags and removal."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from eportal_core.models import Server, ServerTag
from eportal_core.services import keys as keys_service
from eportal_core.services.servers import get_server
from eportal_core.testing import csrf_token
from eportal_core.views.server_presenters import RECORD_FIELDS, page_numbers

from .fleet import KERNEL_ID, add_feed, add_orphan, add_server, hostnames, server_ids

LIST = "/admin/kcserver/"


@pytest.fixture
def fleet(dbsession):
    """Two keys on two feeds, tagged servers with various kernels and check-ins, one orphan."""
    add_feed(dbsession, "beta")
    keys_service.create_key(dbsession, "alpha")
    keys_service.create_key(dbsession, "bravo", feed="beta")
    s = {
        "web1": add_server(dbsession, "alpha", "web1", "10.0.0.1", tags="env:prod;ubuntu", euname="5.4.0-100-generic",
                           kernel_id=KERNEL_ID),
        "web2": add_server(dbsession, "alpha", "web2", "10.0.0.2", tags="env:dev;ubuntu", euname="5.4.0-90-generic",
                           checkin_ago=timedelta(hours=30)),
        "db1": add_server(dbsession, "bravo", "db1", "10.1.0.1", tags="env:prod;centos", euname="4.18.0-305.el8",
                          checkin_ago=timedelta(days=3)),
        "db2": add_server(dbsession, "bravo", "db2", "192.168.5.7", euname="4.18.0-305.el8",
                          checkin_ago=timedelta(days=9)),
        "lost": add_orphan(dbsession, "lost", "10.9.9.9", tags="ubuntu"),
    }
    dbsession.commit()
    return s


def names(client, **params) -> set[str]:
    return set(hostnames(client.get(LIST, params)))


# --- the list and its filters --------------------------------------------------------------------

def test_all_servers_are_listed_including_orphans(testapp, as_admin, fleet):
    page = testapp.get(LIST)
    assert page.html.h1.get_text(strip=True) == "Servers"
    assert set(hostnames(page)) == {"web1", "web2", "db1", "db2", "lost"}
    # the columns
    heads = [th.get_text(strip=True) for th in page.html.select("table.server-table thead th")][1:]
    assert heads == ["IP", "Hostname", "Effective kernel", "Patch level", "Tags", "Key", "Registered", "Last check-in"]
    row = [tr for tr in page.html.select("table.server-table tbody tr") if "web1" in tr.get_text()][0]
    cells = [td.get_text(" ", strip=True) for td in row.find_all("td")][1:]
    assert cells[0] == "10.0.0.1" and cells[2] == "5.4.0-100-generic"
    assert cells[3] == "– unsupported"  # no patch level, no patches for its kernel in its feed
    assert cells[4] == "env:prod ubuntu" and cells[5] == "alpha"
    assert row.select_one(".pill.pill-neutral") is not None
    orphan = [tr for tr in page.html.select("table.server-table tbody tr") if "lost" in tr.get_text()][0]
    assert "(none)" in orphan.get_text()


@pytest.mark.parametrize("params, expected", [
    ({"key": "alpha"}, {"web1", "web2"}),
    ({"key": "(none)"}, {"lost"}),
    ({"key": "nosuchkey"}, set()),
    ({"feed": "beta"}, {"db1", "db2"}),
    ({"feed": "main"}, {"web1", "web2"}),
    ({"hostname": "web2"}, {"web2"}),
    ({"hostname": "db%"}, {"db1", "db2"}),
    ({"hostname": "%1"}, {"web1", "db1"}),
    ({"ip": "10.0.%"}, {"web1", "web2"}),
    ({"ip": "192.168.5.7"}, {"db2"}),
    ({"ip": "10.%"}, {"web1", "web2", "db1", "lost"}),
    ({"tag": "env:prod"}, {"web1", "db1"}),
    ({"tag": "env"}, {"web1", "web2", "db1"}),
    ({"tag": "ubuntu"}, {"web1", "web2", "lost"}),
    ({"tag": "env:qa"}, set()),
    ({"kernel": "4.18.0-305.el8"}, {"db1", "db2"}),
    ({"kernel": KERNEL_ID}, {"web1"}),
    ({"kernel": "5.4.0-%"}, {"web1", "web2"}),
    ({"checkin_age": "-2"}, {"web1", "web2", "lost"}),
    ({"checkin_age": "-7"}, {"web1", "web2", "db1", "lost"}),
    ({"checkin_age": "2"}, {"db1", "db2"}),
    ({"checkin_age": "7"}, {"db2"}),
    ({"checkin_age": "30"}, set()),
    ({"is_updated": "true"}, set()),
    ({"key": "alpha", "tag": "env:prod", "checkin_age": "-2"}, {"web1"}),
    ({"feed": "beta", "hostname": "db%", "checkin_age": "7"}, {"db2"}),
])
def test_each_filter_narrows_the_list(testapp, as_admin, fleet, params, expected):
    assert names(testapp, **params) == expected


def test_filter_bar_shows_the_applied_filters_and_reset(testapp, as_admin, fleet):
    page = testapp.get(LIST, {"key": "alpha", "tag": "ubuntu", "checkin_age": "-2", "hostname": "web%"})
    assert page.html.h1.get_text(" ", strip=True) == "Servers of key alpha"
    form = [f for f in page.forms.values() if f.method.upper() == "GET"][0]
    assert form.action == "http://eportal.test/admin/kcserver/"
    assert (form["key"].value, form["tag"].value, form["checkin_age"].value, form["hostname"].value) == \
        ("alpha", "ubuntu", "-2", "web%")
    assert [o[0] for o in form["checkin_age"].options] == ["", "-2", "-7", "2", "7", "30"]
    reset = [a for a in page.html.select(".filter-actions a") if a.get_text(strip=True) == "Reset filters"][0]
    assert reset["href"] == "http://eportal.test/admin/kcserver/"
    # Apply submits the bar: changing a field narrows again
    form["hostname"] = "web2"
    assert hostnames(form.submit()) == ["web2"]
    assert set(hostnames(testapp.get(reset["href"]))) == {"web1", "web2", "db1", "db2", "lost"}


def test_a_key_on_the_start_page_links_to_its_servers(testapp, as_admin, fleet):
    start = testapp.get("/admin/")
    link = [a for a in start.html.select("table.key-table a.key-link") if a.get_text(strip=True) == "bravo"][0]
    assert set(hostnames(testapp.get(link["href"]))) == {"db1", "db2"}


def test_a_bad_filter_value_is_a_message_not_a_crash(testapp, as_admin, fleet):
    res = testapp.get(LIST, {"checkin_age": "soon"}, status=400)
    assert "Checkin_age must be a number of days" in res.text
    assert hostnames(res) == []
    assert "Custom: soon" in res.text  # the select keeps the typed value


# --- sorting -------------------------------------------------------------------------------------

def test_sorting_by_an_indexed_column_toggles_and_keeps_the_filters(testapp, as_admin, fleet):
    page = testapp.get(LIST, {"key": "alpha", "sort": "hostname", "dir": "asc"})
    assert hostnames(page) == ["web1", "web2"]
    th = [t for t in page.html.select("table.server-table th") if t.get_text(strip=True) == "Hostname"][0]
    assert "sorted-asc" in th["class"] and th["aria-sort"] == "ascending"
    query = parse_qs(urlsplit(th.a["href"]).query)
    assert query == {"key": ["alpha"], "sort": ["hostname"], "dir": ["desc"]}
    page = testapp.get(th.a["href"])
    assert hostnames(page) == ["web2", "web1"]
    th = [t for t in page.html.select("table.server-table th") if t.get_text(strip=True) == "Hostname"][0]
    assert "sorted-desc" in th["class"] and parse_qs(urlsplit(th.a["href"]).query)["dir"] == ["asc"]

    page = testapp.get(LIST, {"sort": "ip", "dir": "asc"})
    assert hostnames(page) == ["web1", "web2", "db1", "lost", "db2"]  # text order of the IPs
    page = testapp.get(LIST, {"sort": "checkin", "dir": "desc"})
    assert hostnames(page)[-2:] == ["db1", "db2"]
    # only indexed columns sort: tags, key and patch level have no links; an unknown sort is the default
    sortable = [t.get_text(strip=True) for t in page.html.select("table.server-table th.sortable")]
    assert sortable == ["IP", "Hostname", "Effective kernel", "Registered", "Last check-in"]
    assert testapp.get(LIST, {"sort": "tags"}).status_int == 200


# --- pages ---------------------------------------------------------------------------------------

def test_pages_of_fifty_with_links_that_keep_filters(testapp, as_admin, dbsession):
    keys_service.create_key(dbsession, "big")
    keys_service.create_key(dbsession, "small")
    for i in range(120):
        add_server(dbsession, "big", f"host{i:03d}", f"10.2.{i // 100}.{i % 100}")
    add_server(dbsession, "small", "elsewhere")
    dbsession.commit()

    page = testapp.get(LIST, {"key": "big", "sort": "hostname", "dir": "asc"})
    assert hostnames(page) == [f"host{i:03d}" for i in range(50)]
    nav = page.html.select_one("nav.pagination")
    assert nav.select_one(".pagination-summary").get_text(strip=True) == "1–50 of 120"
    assert nav.select_one(".current").get_text(strip=True) == "1"
    assert nav.select_one(".disabled").get_text(strip=True) == "‹ Previous"
    links = {a.get_text(strip=True): a["href"] for a in nav.select("a")}
    assert set(links) == {"2", "3", "Next ›"}
    assert parse_qs(urlsplit(links["3"]).query) == {"key": ["big"], "sort": ["hostname"], "dir": ["asc"], "page": ["3"]}

    page = testapp.get(links["Next ›"])
    assert hostnames(page)[0] == "host050"
    assert page.html.select_one(".pagination-summary").get_text(strip=True) == "51–100 of 120"
    page = testapp.get(links["3"])
    assert hostnames(page) == [f"host{i:03d}" for i in range(100, 120)]
    assert page.html.select_one(".pagination-summary").get_text(strip=True) == "101–120 of 120"
    assert [s.get_text(strip=True) for s in page.html.select("nav.pagination .disabled")] == ["Next ›"]
    # past the end: the last page; nonsense: the first
    assert hostnames(testapp.get(LIST, {"key": "big", "sort": "hostname", "dir": "asc", "page": "99"}))[0] == "host100"
    assert hostnames(testapp.get(LIST, {"key": "big", "sort": "hostname", "dir": "asc", "page": "x"}))[0] == "host000"
    # sorting starts over at page 1
    th = [t for t in page.html.select("table.server-table th") if t.get_text(strip=True) == "Hostname"][0]
    assert "page" not in parse_qs(urlsplit(th.a["href"]).query)
    # the whole fleet: 121 servers, 3 pages
    assert testapp.get(LIST).html.select_one(".pagination-summary").get_text(strip=True) == "1–50 of 121"


def test_page_numbers_show_gaps():
    assert page_numbers(1, 1) == [1]
    assert page_numbers(1, 3) == [1, 2, 3]
    assert page_numbers(10, 40) == [1, None, 8, 9, 10, 11, 12, None, 40]
    assert page_numbers(4, 40) == [1, 2, 3, 4, 5, 6, None, 40]  # a gap of one page shows the page
    assert page_numbers(40, 40) == [1, None, 38, 39, 40]


def test_no_servers_shows_the_empty_state(testapp, as_admin, fleet):
    page = testapp.get(LIST, {"hostname": "nothing-like-this"})
    assert "No servers match these filters" in page.text
    assert page.html.select_one("table.server-table") is None


# --- remove selected -----------------------------------------------------------------------------

def test_remove_selected_removes_exactly_the_checked_servers(testapp, as_admin, fleet, dbsession):
    ids = {name: server.server_id for name, server in fleet.items()}
    page = testapp.get(LIST, {"key": "alpha"})
    form_node = page.html.select_one("form#remove-selected")
    assert form_node["data-confirm-count"] == "server_id" and "{n} selected servers" in form_node["data-confirm"]
    boxes = page.html.select("input[type=checkbox][name=server_id]")
    assert sorted(b["value"] for b in boxes) == sorted([ids["web1"], ids["web2"]])
    assert all(b["form"] == "remove-selected" for b in boxes)
    form = page.forms["remove-selected"]
    form["server_id"] = [ids["web1"]]  # webtest: the checked values of the checkbox group
    res = form.submit(status=303)
    # back to the same filtered list
    assert parse_qs(urlsplit(res.headers["Location"]).query) == {"key": ["alpha"]}
    page = res.follow()
    assert "Removed 1 server." in page.text
    assert hostnames(page) == ["web2"]
    dbsession.expire_all()
    assert get_server(dbsession, ids["web1"]) is None
    assert dbsession.scalar(select(func.count()).select_from(Server)) == 4

    token = csrf_token(testapp)
    res = testapp.post("/admin/kcserver/remove-selected",
                       [("csrf_token", token), ("server_id", ids["db1"]), ("server_id", ids["lost"]),
                        ("back", "feed=beta&evil=https://x.example&page=2")], status=303)
    assert res.headers["Location"] == "http://eportal.test/admin/kcserver/?feed=beta&page=2"
    assert "Removed 2 servers." in res.follow().text
    res = testapp.post("/admin/kcserver/remove-selected", {"csrf_token": token}, status=303)
    assert "Select the servers to remove first." in res.follow().text
    assert dbsession.scalar(select(func.count()).select_from(Server)) == 2


# --- one server ----------------------------------------------------------------------------------

def test_server_page_shows_every_field_of_the_record(testapp, as_admin, dbsession):
    keys_service.create_key(dbsession, "kfull")
    s = add_server(dbsession, "kfull", "full.example", "10.5.5.5", tags="env:prod;ubuntu", euname="5.15.0-91-generic",
                   release="5.15.0-91-generic", kernel_id=KERNEL_ID, patch_level=3, patch_type="extra",
                   uptime=90061, version="#101-Ubuntu SMP", virt="kvm", kcare_version="2.80-1",
                   distro="Ubuntu", distro_version="22.04", machine="x86_64", processor="Intel Xeon")
    dbsession.commit()
    page = testapp.get(f"{LIST}{s.server_id}")
    assert page.html.h1.get_text(strip=True) == "full.example"
    dts = [dt.select_one(".field-name").get_text(strip=True) for dt in page.html.select("dl.server-record dt")]
    assert dts == [name for name, _ in RECORD_FIELDS]
    assert dts == ["id", "ip", "hostname", "key", "feed", "registered", "checkin", "updated", "euname", "release",
                   "kernel_id", "patch_level", "patch_type", "tags", "uptime", "version", "virt", "kcare_version",
                   "distro", "distro_version", "machine", "processor"]
    values = {dt.select_one(".field-name").get_text(strip=True): dd.get_text(" ", strip=True)
              for dt, dd in zip(page.html.select("dl.server-record dt"), page.html.select("dl.server-record dd"))}
    expected = {"id": s.server_id, "ip": "10.5.5.5", "hostname": "full.example", "key": "kfull", "feed": "main",
                "euname": "5.15.0-91-generic", "release": "5.15.0-91-generic", "kernel_id": KERNEL_ID,
                "patch_type": "extra", "tags": "env:prod ubuntu", "version": "#101-Ubuntu SMP", "virt": "kvm",
                "kcare_version": "2.80-1", "distro": "Ubuntu", "distro_version": "22.04", "machine": "x86_64",
                "processor": "Intel Xeon", "updated": "–"}
    for name, value in expected.items():
        assert values[name] == value, name
    assert values["patch_level"] == "3"
    assert values["uptime"] == "1 d 1 h (90,061 s)"
    assert values["registered"].startswith(s.registered.strftime("%Y-%m-%d %H:%M:%S")) and "UTC" in values["registered"]
    assert values["checkin"].startswith(s.checkin.strftime("%Y-%m-%d %H:%M"))
    assert page.html.select_one("dl.server-record a[href='http://eportal.test/admin/kcserver/?key=kfull']") is not None


def test_unknown_server_is_a_404_page(testapp, as_admin):
    res = testapp.get(f"{LIST}Abcdefghijklmnop", status=404)
    assert "Page not found" in res.text
    assert testapp.get(f"{LIST}remove-selected", status=404)


def test_tags_edit_valid_invalid_and_empty(testapp, as_admin, fleet, dbsession):
    sid = fleet["web2"].server_id
    url = f"{LIST}{sid}"

    def tags_form():
        page = testapp.get(url)
        return [f for f in page.forms.values() if f.action.endswith("/tags")][0]

    form = tags_form()
    assert form["tags"].value == "env:dev;ubuntu"
    form["tags"] = " env:prod ; ubuntu;role:web "
    res = form.submit(status=303)
    assert res.headers["Location"] == f"http://eportal.test{url}"
    page = res.follow()
    assert "Tags of web2 saved." in page.text
    dbsession.expire_all()
    assert get_server(dbsession, sid).tags == "env:prod;ubuntu;role:web"
    assert names(testapp, tag="role:web") == {"web2"}
    assert names(testapp, tag="env:prod") == {"web1", "web2", "db1"}

    form = tags_form()
    form["tags"] = "ok;:nameless"
    res = form.submit(status=400)
    assert "has no name" in res.html.select_one(".tags-form .flash-error").get_text()
    assert res.html.select_one(".tags-form .field-error") is not None
    assert [f for f in res.forms.values() if f.action.endswith("/tags")][0]["tags"].value == "ok;:nameless"
    dbsession.expire_all()
    assert get_server(dbsession, sid).tags == "env:prod;ubuntu;role:web"  # unchanged

    form = tags_form()
    form["tags"] = ""
    page = form.submit(status=303).follow()
    assert "Tags of web2 removed." in page.text and "No tags" in page.text
    dbsession.expire_all()
    assert get_server(dbsession, sid).tags is None
    assert dbsession.scalar(select(func.count()).select_from(ServerTag).where(ServerTag.server_pk == fleet["web2"].id)) == 0


def test_remove_one_server_from_its_page(testapp, as_admin, fleet, dbsession):
    sid = fleet["db2"].server_id
    page = testapp.get(f"{LIST}{sid}")
    node = page.html.select_one("form[data-confirm]")
    assert node["data-confirm"].startswith("Remove server db2?")
    form = [f for f in page.forms.values() if f.action.endswith("/delete")][0]
    res = form.submit(status=303)
    assert res.headers["Location"] == "http://eportal.test/admin/kcserver/"
    assert "Server db2 removed." in res.follow().text
    dbsession.expire_all()
    assert get_server(dbsession, sid) is None
    # a second click (another tab) is a message, not an error page
    res = testapp.post(f"{LIST}{sid}/delete", {"csrf_token": csrf_token(testapp)}, status=303)
    assert "does not exist" in res.follow().text


# --- read-only users -----------------------------------------------------------------------------

def test_readonly_sees_servers_without_controls(testapp, as_readonly, fleet):
    page = testapp.get(LIST)
    assert len(hostnames(page)) == 5
    assert page.html.select("input[type=checkbox]") == []
    assert {f.action for f in page.forms.values() if f.method.upper() == "POST"} == {"http://eportal.test/admin/logout"}
    detail = testapp.get(f"{LIST}{fleet['web1'].server_id}")
    assert "env:prod" in detail.text
    assert {f.action for f in detail.forms.values()} == {"http://eportal.test/admin/logout"}
    assert "Remove server" not in detail.text


def test_navigation_has_keys_and_servers(testapp, as_admin, fleet):
    page = testapp.get(f"{LIST}{fleet['web1'].server_id}")
    nav = page.html.select('nav[aria-label="Main"] a')
    titles = [a.get_text(strip=True) for a in nav]
    assert titles[:2] == ["Keys", "Servers"]
    current = [a.get_text(strip=True) for a in nav if a.get("aria-current") == "page"]
    assert current == ["Servers"]
    assert server_ids(testapp.get(LIST, {"hostname": "web1"})) == [fleet["web1"].server_id]
