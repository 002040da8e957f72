"""The agent protocol under ``PATCH_SERVER`` (protocol.md §2): ``latest.v2``, ``version``,
``kpatch.info`` and the files of a patch level.

Agents carry no console session and no CSRF token: every view here is public
(``NO_PERMISSION_REQUIRED``, ``require_csrf=False``) and GET-only. The caller is identified by
:func:`identify_agent` (HTTP Basic user = server_id), which also records the check-in; anonymous
callers are answered from the ``main`` feed and get patch binaries only when
``eportal.anonymous_patch_downloads`` is on. Files are found from validated ids and the patchset
name in the database (:func:`patchstore.find_patch_file`), never from URL text: waitress decodes
``%2F`` into PATH_INFO, and the route patterns let no ``/`` into a placeholder anyway.

The hot path (``latest.v2``) is one indexed lookup for the identity and one for the level, both on
the read connection, no ORM objects and no request transaction.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import os

from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from ..services import ServiceError, agents, patchstore
from .identity import identify_agent, main_feed_id

log = logging.getLogger(__name__)

_KERNEL = "{kernel_id:[0-9a-f]{40}}"
ROUTES = {
    "patch_latest": f"/{_KERNEL}/latest.v2",
    "patch_version": f"/{_KERNEL}/version",
    # level: canonical decimal (no leading zeros), so one file has one URL
    "patch_file": f"/{_KERNEL}/{{level:[1-9][0-9]{{0,8}}}}/{{filename}}",
}
#: always public: scanners (kcare-qualys and the like) read these without a server identity
PUBLIC_FILES = ("kpatch.info",)
#: an info blob is a few hundred bytes of JSON; anything near this is not an agent's
MAX_INFO = 8 * 1024


def _text(body: str, status: int = 200) -> Response:
    resp = Response(body, status=status, content_type="text/plain", charset="utf-8")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _not_found() -> Response:
    return _text("not found\n", 404)


def _info(request) -> dict | None:
    """The §4 fields of ``?info=<urlsafe base64 JSON>``; None when absent or malformed (never an error:
    the level is still answered)."""
    try:
        raw = request.GET.get("info")
    except UnicodeDecodeError:
        return None
    if not raw or len(raw) > MAX_INFO:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    try:
        info = agents.parse_info(data)
    except ServiceError as exc:
        log.debug("ignoring a bad info blob: %s", exc)
        return None
    info.pop("kernel_id", None)  # the path names the kernel
    return info or None


def _feed_id(request, agent) -> int:
    return agent.feed_id if agent is not None else main_feed_id(request.registry)


# agents carry no session: the unguessable server_id (or nothing: the main feed) is the credential
@view_config(route_name="patch_latest", request_method="GET", permission=NO_PERMISSION_REQUIRED, require_csrf=False)
def latest_v2(request):
    kernel_id = request.matchdict["kernel_id"]
    agent = identify_agent(request, kernel_id=kernel_id, info=_info(request))
    with request.registry["db_read"]() as conn:
        level = patchstore.latest_level(conn, _feed_id(request, agent), kernel_id)
    if level is None:
        return _not_found()
    return _text(str(level))


# agents carry no session: the unguessable server_id (or nothing) is the credential
@view_config(route_name="patch_version", request_method="GET", permission=NO_PERMISSION_REQUIRED, require_csrf=False)
def version(request):
    kernel_id = request.matchdict["kernel_id"]
    identify_agent(request, kernel_id=kernel_id)
    with request.registry["db_read"]() as conn:
        found = patchstore.has_patches(conn, kernel_id)
    return _text("") if found else _not_found()


# agents carry no session: the unguessable server_id is the credential (kpatch.info is public)
@view_config(route_name="patch_file", request_method="GET", permission=NO_PERMISSION_REQUIRED, require_csrf=False)
def patch_file(request):
    kernel_id = request.matchdict["kernel_id"]
    level = int(request.matchdict["level"])
    filename = request.matchdict["filename"]
    if not patchstore.FILE_NAME_RE.match(filename):
        return _not_found()
    agent = identify_agent(request, kernel_id=kernel_id)
    if agent is None and filename not in PUBLIC_FILES \
            and not request.registry.settings.get("eportal.anonymous_patch_downloads"):
        resp = _text("patch files need a registered server's id (HTTP Basic user)\n", 401)
        resp.headers["WWW-Authenticate"] = 'Basic realm="eportal patches"'
        return resp
    data_dir = request.registry.settings["eportal.data_dir"]
    with request.registry["db_read"]() as conn:
        found = patchstore.find_patch_file(conn, data_dir, _feed_id(request, agent), kernel_id, level, filename)
    if found is None:
        return _not_found()
    return _file_response(request, found, filename)


class FileIter:
    """A WSGI app_iter over an open file, read in blocks; ``app_iter_range`` seeks (webob calls it
    for a Range request) instead of reading up to the start; ``close`` closes the file even when
    the client went away mid-download."""

    block_size = 64 * 1024

    def __init__(self, file, start: int = 0, stop: int | None = None):
        self.file, self.start, self.stop = file, start, stop

    def __iter__(self):
        self.file.seek(self.start)
        left = None if self.stop is None else self.stop - self.start
        while left is None or left > 0:
            data = self.file.read(self.block_size if left is None else min(self.block_size, left))
            if not data:
                return
            if left is not None:
                left -= len(data)
            yield data

    def app_iter_range(self, start: int, stop: int) -> FileIter:
        return FileIter(self.file, start, stop)

    def close(self) -> None:
        self.file.close()


def _file_response(request, found: patchstore.PatchFile, filename: str) -> Response:
    """The file streamed from disk; webob's conditional response answers If-None-Match /
    If-Modified-Since (304), Range (206, 416) and If-Range. A whole file goes through the server's
    ``wsgi.file_wrapper`` when it has one (waitress sends it from its I/O thread: about half the
    CPU of handing it over block by block, bench/patch_bench.py)."""
    try:
        fd = os.open(found.path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return _not_found()
    f = os.fdopen(fd, "rb")
    st = os.fstat(fd)
    text = filename.endswith(".info")
    resp = Response(conditional_response=True, content_type="text/plain" if text else "application/octet-stream",
                    charset="utf-8" if text else None)
    wrapper = request.environ.get("wsgi.file_wrapper")
    if wrapper is not None and request.range is None:
        resp.app_iter = wrapper(f, FileIter.block_size)
    else:
        resp.app_iter = FileIter(f)
    resp.content_length = st.st_size
    resp.last_modified = st.st_mtime
    resp.etag = found.etag
    resp.accept_ranges = "bytes"
    # revalidate every time: which patchset serves a level can change when a feed is rolled back
    resp.headers["Cache-Control"] = "private, no-cache"
    return resp


def includeme(config):
    config.scan(__name__)
    # GET only (Pyramid answers HEAD too); the kernel id and level patterns keep these routes from
    # matching anything else under the site root (/admin, /static, /install-kernelcare)
    for name, pattern in ROUTES.items():
        config.add_route(name, pattern, request_method="GET")
