"""Who is calling a patch or check-in URL: one function, one indexed lookup, and the check-in
recorded in memory (protocol.md §2, "Who is calling")."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ..models import MAIN_FEED, Feed, utcnow
from ..security import basic_credentials
from ..services.agents import KERNEL_ID_RE, valid_server_id
from ..web.clientip import client_ip


@dataclass(frozen=True)
class Agent:
    pk: int
    server_id: str
    key_id: int | None
    #: the feed of the server's key (``main`` when the key is gone)
    feed_id: int


def identify_agent(request, *, server_id: str | None = None, kernel_id: str | None = None,
                   info: dict | None = None) -> Agent | None:
    """The calling server (HTTP Basic user = server_id), its feed, and a recorded check-in.

    ``None`` for anonymous or unknown callers (they are answered from the ``main`` feed). The
    password is not checked: the unguessable server_id is the credential, so it is never logged.
    """
    if server_id is None:  # patch requests name the server in HTTP Basic; check-ins may name it in the body
        creds = basic_credentials(request)
        server_id = creds[0] if creds else None
    if not valid_server_id(server_id):
        return None
    row = request.registry["agent_directory"].lookup(server_id)
    if row is None:
        return None
    agent = Agent(row[0], server_id, row[1], row[2] if row[2] is not None else main_feed_id(request.registry))
    _record(request, agent.pk, server_id, kernel_id, info)
    return agent


def record_checkin(request, server_id: str, info: dict | None = None) -> bool:
    """The check-in route's half of :func:`identify_agent`: the server is known (False: unknown) and
    its check-in recorded; no key or feed (the answer needs neither), so the server's pk may come
    from memory (directory.AgentDirectory.server_pk)."""
    if not valid_server_id(server_id):
        return False
    pk = request.registry["agent_directory"].server_pk(server_id)
    if pk is None:
        return False
    _record(request, pk, server_id, None, info)
    return True


def _record(request, pk: int, server_id: str, kernel_id: str | None, info: dict | None) -> None:
    values = {"checkin": utcnow(), "ip": client_ip(request)}
    if kernel_id and KERNEL_ID_RE.match(kernel_id):
        values["kernel_id"] = kernel_id
    if info:
        values.update(info)
    request.registry["checkins"].record(pk, server_id, values)


def main_feed_id(registry) -> int:
    """The id of ``main`` (it always exists and is never deleted), looked up once per process."""
    if "main_feed_id" not in registry:
        with registry["db_read"]() as conn:
            registry["main_feed_id"] = conn.execute(select(Feed.id).where(Feed.name == MAIN_FEED)).scalar_one()
    return registry["main_feed_id"]
