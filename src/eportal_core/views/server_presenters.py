"""What the server pages show, computed for the templates (which only display): the list's rows,
column headers, page links and texts, and one server's fields. The views parse and call
``services.servers``; this module turns what they found into the dicts the templates render."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from ..models import utcnow
from ..services.key_counts import CHECKIN_WINDOW, in_hours
from ..services.levels import OUTOFDATE, UNSUPPORTED, UPTODATE
from ..services.servers import NO_KEY, TIME_FORMAT, Age
from ..web.ui import plural

PER_PAGE = 50
#: the filter bar's fields (all of them ServerFilter parameters)
FILTER_FIELDS = ("key", "feed", "hostname", "ip", "tag", "kernel", "checkin_age", "is_updated")
#: filters the bar does not show, kept when a link or the bar is used (the REST API's vocabulary)
HIDDEN_FILTERS = ("registered_age", "updated_age", "server_id")
#: check-in ages offered, as ServerFilter ages: "-7" = within 7 days, "7" = not in 7 days (or never); the
#: first of each kind is the start page's window, which its tiles link to
CHECKIN_CHOICES = (("", "Any time"),
                   (str(Age(CHECKIN_WINDOW, within=True)), f"Within {in_hours(CHECKIN_WINDOW)} hours"),
                   ("-7", "Within 7 days"),
                   (str(Age(CHECKIN_WINDOW, within=False)), f"Not in {in_hours(CHECKIN_WINDOW)} hours"),
                   ("7", "Not in 7 days"), ("30", "Not in 30 days"))
UPDATED_CHOICES = (("", "Any"), ("true", "Up to date"), ("false", "Not up to date"))
#: (sort name or None, heading); the sortable ones are exactly services.servers.SORTS' indexed columns
COLUMNS = (("ip", "IP"), ("hostname", "Hostname"), ("euname", "Effective kernel"), (None, "Patch level"),
           (None, "Tags"), (None, "Key"), ("registered", "Registered"), ("checkin", "Last check-in"))
DEFAULT_SORT = "registered"
#: a newly clicked column starts with these in ascending order, the dates newest first
ASCENDING_FIRST = {"ip", "hostname", "euname", "id"}
STATUS = {UPTODATE: ("up to date", "pill-ok"), OUTOFDATE: ("out of date", "pill-warn"),
          UNSUPPORTED: ("unsupported", "pill-neutral")}
#: (field, label) of protocol.md §4, in its order
RECORD_FIELDS = (
    ("id", "Server ID"), ("ip", "IP address"), ("hostname", "Hostname"), ("key", "Key"), ("feed", "Feed"),
    ("registered", "Registered"), ("checkin", "Last check-in"), ("updated", "Patch level changed"),
    ("euname", "Effective kernel"), ("release", "Kernel release"), ("kernel_id", "Kernel ID"),
    ("patch_level", "Patch level"), ("patch_type", "Patch type"), ("tags", "Tags"), ("uptime", "Uptime"),
    ("version", "Kernel version"), ("virt", "Virtualization"), ("kcare_version", "KernelCare version"),
    ("distro", "Distribution"), ("distro_version", "Distribution version"), ("machine", "Machine"),
    ("processor", "Processor"),
)
TIMESTAMPS = {"registered", "checkin", "updated"}


# --- small formatting helpers (the template shows, it does not compute) ---------------------------

def ago(stamp: str | None, now: datetime) -> str:
    """``"3 h ago"`` for a §4 timestamp; ``""`` when there is none."""
    if not stamp:
        return ""
    seconds = int((now - datetime.strptime(stamp, TIME_FORMAT)).total_seconds())
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def duration(seconds: int | None) -> str:
    if seconds is None:
        return ""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return " ".join(p for p in (f"{days} d" if days else "", f"{hours} h" if hours else "",
                                f"{minutes} min" if minutes and not days else "") if p) or f"{seconds} s"


def split_tags(tags: str | None) -> list[str]:
    return [t for t in (tags or "").split(";") if t]


def page_numbers(current: int, last: int, around: int = 2) -> list[int | None]:
    """Page links to show: the first, the last, ``around`` either side of the current; None is a gap."""
    wanted = {1, last} | set(range(max(1, current - around), min(last, current + around) + 1))
    out: list[int | None] = []
    for number in sorted(wanted):
        if out and number - out[-1] > 1:
            out.append(None if number - out[-1] > 2 else number - 1)
        out.append(number)
    return out


def checkin_choices(current: str) -> tuple:
    """The check-in select's options; an age typed into the address (``12h``) is kept as one more."""
    if current and current not in dict(CHECKIN_CHOICES):
        return CHECKIN_CHOICES + ((current, f"Custom: {current}"),)
    return CHECKIN_CHOICES


def status_of(record: dict) -> tuple[str, str]:
    return STATUS.get(record["status"], (record["status"], "pill-neutral"))


# --- the list ----------------------------------------------------------------------------------

def list_query(values: dict, **changes) -> dict:
    """Query parameters of a list link: the current filters and sort, with ``changes`` applied."""
    merged = {**values, **changes}
    return {k: v for k, v in merged.items() if v not in (None, "")}


def row(request, record: dict, now: datetime) -> dict:
    label, pill = status_of(record)
    return {
        "id": record["id"], "url": request.route_url("kcserver", server_id=record["id"]),
        "ip": record["ip"], "hostname": record["hostname"], "euname": record["euname"],
        "label": record["hostname"] or record["id"],
        "patch_level": "–" if record["patch_level"] is None else str(record["patch_level"]),
        "status": label, "pill": pill, "tags": split_tags(record["tags"]),
        "key": record["key"],
        "key_url": request.route_url("kcserver_list", _query={"key": record["key"]}) if record["key"] else "",
        "registered_date": (record["registered"] or "")[:10], "registered_time": (record["registered"] or "")[11:16],
        "registered_full": record["registered"] or "",
        "checkin": (record["checkin"] or "")[:16], "checkin_full": record["checkin"] or "",
        "checkin_ago": ago(record["checkin"], now),
    }


@dataclass(frozen=True)
class Listing:
    """One page of the list as the view found it."""

    #: the filter fields as given (FILTER_FIELDS + HIDDEN_FILTERS, stripped)
    values: dict
    sort: str
    descending: bool
    #: the page's §4 records (services.servers.find_servers)
    records: list
    count: int
    page: int
    #: the refusal of a bad filter, as page text ("" when the filters were good)
    error: str = ""


def last_page(count: int) -> int:
    return max(1, -(-count // PER_PAGE))


def server_list(request, listing: Listing, *, feeds: list[str], key_names: list[str], key_exists: bool) -> dict:
    """The list page: rows, sortable headers, page links, the filter bar's values and choices."""
    values, sort, descending, page = listing.values, listing.sort, listing.descending, listing.page
    state = dict(values, sort="", dir="")
    if sort != DEFAULT_SORT or not descending:  # the default order needs no parameters in the links
        state.update(sort=sort, dir="desc" if descending else "asc")

    def list_url(**changes):
        return request.route_url("kcserver_list", _query=list_query(state, **changes))

    headers = []
    for name, title in COLUMNS:
        if name is None:
            headers.append({"title": title, "url": None, "css": "", "aria": None})
            continue
        active = name == sort
        next_desc = (not descending) if active else name not in ASCENDING_FIRST
        headers.append({"title": title, "url": list_url(sort=name, dir="desc" if next_desc else "asc", page=None),
                        "css": ("sorted-desc" if descending else "sorted-asc") if active else "",
                        "aria": ("descending" if descending else "ascending") if active else None})

    now = utcnow()
    rows = [row(request, r, now) for r in listing.records]
    count, last = listing.count, last_page(listing.count)
    pages = [{"number": n, "url": list_url(page=n) if n else None, "current": n == page} for n in page_numbers(page, last)]
    first_row = (page - 1) * PER_PAGE + 1 if rows else 0
    filtered = any(values.values())
    key_filter = values["key"]
    return {
        "title": f"Servers of key {key_filter}" if key_filter and key_filter != NO_KEY else "Servers",
        "key_filter": key_filter, "no_key": key_filter == NO_KEY, "no_key_value": NO_KEY,
        "filters": values, "filtered": filtered, "error": listing.error,
        "hidden": [(n, values[n]) for n in HIDDEN_FILTERS if values[n]],
        "sort_state": [(n, state[n]) for n in ("sort", "dir") if state[n]],
        "checkin_choices": checkin_choices(values["checkin_age"]),
        "updated_choices": UPDATED_CHOICES,
        "feeds": feeds, "key_names": key_names,
        "headers": headers, "rows": rows, "count": count, "count_text": plural(count, "server") + (
            (" matches" if count == 1 else " match") + " the filters" if filtered else " registered"),
        "summary": f"{first_row:,}–{first_row + len(rows) - 1:,} of {count:,}" if rows else f"0 of {count:,}",
        "pages": pages, "multipage": last > 1,
        "prev_url": list_url(page=page - 1) if page > 1 else None,
        "next_url": list_url(page=page + 1) if page < last else None,
        "back": urlencode(list_query(state, page=page if page > 1 else None)),
        "reset_url": request.route_url("kcserver_list"),
        "key_edit_url": request.route_url("key_edit", key=key_filter) if key_exists else "",
    }


# --- one server ---------------------------------------------------------------------------------

def server_detail(request, server, record: dict, *, tags_value: str | None = None, error: str = "") -> dict:
    """One server's page from its §4 record (services.servers.records)."""
    now = utcnow()
    label, pill = status_of(record)
    fields = []
    for name, title in RECORD_FIELDS:
        value = record[name]
        item = {"name": name, "title": title, "value": "" if value is None else str(value), "note": "",
                "url": None, "tags": None}
        if name in TIMESTAMPS and value:
            item["note"] = f"UTC · {ago(value, now)}"
        elif name == "uptime" and value is not None:
            item["value"], item["note"] = duration(value), f"{value:,} s"
        elif name == "key" and value:
            item["url"] = request.route_url("kcserver_list", _query={"key": value})
        elif name == "tags":
            item["tags"] = split_tags(value)
        elif name == "patch_level" and record["latest_level"] is not None:
            item["note"] = f"latest in its feed: {record['latest_level']}"
        fields.append(item)
    name = record["hostname"] or record["id"]
    return {
        "title": name, "name": name, "record": record, "status": label, "pill": pill,
        "groups": [("Identity and kernel", fields[:11]), ("Patches and system", fields[11:])],
        "tags": split_tags(record["tags"]),
        "tags_value": (record["tags"] or "") if tags_value is None else tags_value, "error": error,
        "tags_url": request.route_url("kcserver_tags", server_id=record["id"]),
        "delete_url": request.route_url("kcserver_delete", server_id=record["id"]),
        "key_url": request.route_url("kcserver_list", _query={"key": record["key"]}) if record["key"] else "",
        "list_url": request.route_url("kcserver_list"),
        "confirm": f"Remove server {name}? It disappears from the console and must register again to get patches.",
        "server": server,
    }


