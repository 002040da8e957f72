"""What the Patch Source pages show, computed for the templates (which only display): the rows of a
feed with their statuses and the exact confirmation texts, which ``services.deploy.preview`` decides."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, true

from eportal_core.api import Feed, FeedPatchset, deploy, plural, sentence

from .state import FAILED, PollState

STATUS_TEXT = {
    deploy.ENABLED: ("enabled on {feed}", "pill-ok"),
    deploy.DISABLED: ("disabled on {feed}", "pill-warn"),
    deploy.UNDEPLOYED: ("downloaded", "pill-neutral"),
    deploy.NOT_DOWNLOADED: ("not downloaded", "pill-neutral"),
    deploy.BLOCKED: ("blocked upstream", "pill-bad"),
}


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def size_text(size: int | None) -> str:
    if size is None:
        return ""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def progress_text(name: str, done: int, total: int | None) -> str:
    if total:
        return f"downloading {name}: {size_text(done)} of {size_text(total)} ({100 * done // total}%)"
    return f"downloading {name}: {size_text(done)}"


def names_text(names: list[str]) -> str:
    return ", ".join(names)



def deploy_question(feed: str, enable: list, missing: list) -> str:
    text = f"On feed {feed}, enable {plural(len(enable), 'patchset')}: {names_text([p.name for p in enable])}."
    if missing:
        text += (f" Not downloaded yet, so downloaded from the source first: "
                 f"{names_text([p.name for p in missing])}.")
    return text


def rollback_question(feed: str, disable: list, remaining) -> str:
    text = f"On feed {feed}, disable {plural(len(disable), 'patchset')}: {names_text([p.name for p in disable])}."
    if remaining is not None:
        return text + f" Servers on {feed} go back to the patches of {remaining.name}."
    return text + f" Servers on {feed} are left with no patches of this product."


def rows(request, db, feed: Feed, state: PollState) -> list[dict]:
    """One dict per patchset, oldest first, for ``feed``."""
    statuses = deploy.status(db, feed)
    plans = deploy.preview(db, feed)
    enabled_on: dict[int, list[str]] = {}
    for patchset_id, name in db.execute(select(FeedPatchset.patchset_id, Feed.name)
                                        .join(Feed, Feed.id == FeedPatchset.feed_id)
                                        .where(FeedPatchset.enabled == true()).order_by(Feed.name)):
        enabled_on.setdefault(patchset_id, []).append(name)
    last_enabled: dict[str, object] = {}  # product -> the newest enabled patchset seen so far
    out = []
    for patchset, status in statuses:
        label, pill = STATUS_TEXT[status]
        failure = state.failures.get(patchset.name) if status == deploy.NOT_DOWNLOADED else None
        if failure:
            label = "download failed" if failure.get("kind") == FAILED else "refused"
            label, pill = ("not enough disk space" if failure.get("need") else label), "pill-bad"
        enable, disable = plans[patchset.id]
        row = {
            "name": patchset.name,
            "product": patchset.product,
            "released": when(patchset.released),
            "size": size_text(patchset.size),
            "downloaded": when(patchset.downloaded),
            "status": status,
            "status_text": label.format(feed=feed.name),
            "pill": pill,
            "failure": failure.get("error", "") if failure else "",
            "feeds": [name for name in enabled_on.get(patchset.id, []) if name != feed.name],
            "changelog_url": request.route_url("patch_source_changelog", name=patchset.name),
            "deploy": None,
            "rollback": None,
        }
        if enable and status != deploy.ENABLED:
            missing = [p for p in enable if p.downloaded is None]
            row["deploy"] = {"question": deploy_question(feed.name, enable, missing),
                             "title": f"Deploy {patchset.name} to {feed.name}"}
        if disable:
            row["rollback"] = {"question": rollback_question(feed.name, disable, last_enabled.get(patchset.product)),
                               "title": f"Roll back {patchset.name} on {feed.name}"}
        if status == deploy.ENABLED:
            last_enabled[patchset.product] = patchset
        out.append(row)
    return out


def source_summary(info, labels: dict) -> dict | None:
    if info is None:
        return None
    return {"type": labels.get(info.type, info.type), "location": info.location, "login": info.login,
            "password_set": bool(info.password), "is_http": info.type == "http"}


def _without_name(name: str, error: str) -> str:
    """The page names the patchset already: "K…: K… was refused: why" reads as "K… refused: why"."""
    for prefix in (f"{name} was refused: ", f"{name} was not imported: ", f"{name}: "):
        if error.startswith(prefix):
            return error[len(prefix):]
    return error


def poll_summary(state: PollState) -> dict | None:
    if not state.started:
        return None
    failures = [{"name": name, "error": _without_name(name, f.get("error", "")), "kind": f.get("kind", FAILED),
                 "at": f.get("at", "")} for name, f in sorted(state.failures.items())]
    return {"started": state.started, "finished": state.finished or "", "trigger": state.trigger,
            "error": sentence(state.error) if state.error else "", "failures": failures,
            "problems": state.problems, "listed": state.listed, "listed_text": plural(state.listed or 0, "patchset"), "ok": state.ok,
            "new": names_text(state.new), "downloaded": names_text(state.downloaded),
            "blocked": names_text(state.blocked), "unblocked": names_text(state.unblocked)}
