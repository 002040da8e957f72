"""Every server's id in memory, so a check-in needs no database round trip (PostgreSQL sites).

Why: on PostgreSQL the one indexed lookup of a check-in is a network round trip, and a threaded
Python server pays for it far beyond the lookup itself (the GIL given up and taken back, a
database backend woken per request): a check-in cost ~2x the bare route (bench/README.md). With
``eportal.agent_directory.in_memory`` (``auto``: on for PostgreSQL) each app process keeps
``server_id -> server pk`` for the whole fleet (~155 bytes a server: ~150 MiB at a million,
bench/directory_bench.py), loaded in the background at the first check-in (~5.5 s at a million)
and completed by lookups as servers register.

Coherence, without any cross-node messaging:

- a server registered on another node (or while loading) is not in memory yet: its first check-in
  here looks it up in the database and remembers it;
- a server removed through this process is forgotten at once (``forget``, called by
  ``services.servers.delete_servers_where`` with the removed ids);
- a server removed elsewhere (another node, the CLI) is forgotten when the check-in writer's next
  flush updates no row for it (``eportal.checkins.flush_seconds``, 1 s): until then its check-ins
  are answered "ok" and written nowhere, after that "unknown-server" as before.

Patch requests still read the server's key and feed from the database (AgentDirectory.lookup):
a key's feed may change at any time, on any node.
"""
from __future__ import annotations

import logging
import threading
import weakref

from sqlalchemy import text

log = logging.getLogger(__name__)

#: the memories of this process (one per app); services tell them about removed servers
_active: weakref.WeakSet[ServerMemory] = weakref.WeakSet()

_LOAD_SQL = text("SELECT id, server_id FROM servers WHERE id > :last ORDER BY id LIMIT :n")


def any_active() -> bool:
    return len(_active) > 0


def forget(server_ids) -> None:
    """Servers removed through this process: forgotten by every memory in it."""
    for memory in list(_active):
        memory.forget(server_ids)


class ServerMemory:
    LOAD_CHUNK = 50_000

    def __init__(self, engine):
        self.engine = engine
        self.pks: dict[str, int] = {}
        #: True once every server that existed when loading began was read
        self.loaded = False
        self._loader: threading.Thread | None = None
        self._lock = threading.Lock()
        _active.add(self)

    def get(self, server_id: str) -> int | None:
        if self._loader is None:
            self.start_loading()
        return self.pks.get(server_id)

    def remember(self, server_id: str, pk: int) -> None:
        self.pks[server_id] = pk

    def forget(self, server_ids) -> None:
        for server_id in server_ids:
            self.pks.pop(server_id, None)

    def start_loading(self) -> None:
        with self._lock:
            if self._loader is None:
                self._loader = threading.Thread(target=self._load, name="server-memory", daemon=True)
                self._loader.start()

    def _load(self) -> None:
        last, count = 0, 0
        try:
            with self.engine.connect() as conn:
                while True:
                    rows = conn.execute(_LOAD_SQL, {"last": last, "n": self.LOAD_CHUNK}).all()
                    for pk, server_id in rows:
                        self.pks.setdefault(server_id, pk)
                    count += len(rows)
                    if len(rows) < self.LOAD_CHUNK:
                        break
                    last = rows[-1][0]
            self.loaded = True
            log.info("agent directory: %d servers in memory", count)
        except Exception as exc:  # not fatal: servers not loaded are looked up in the database
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            log.warning("agent directory: loading servers into memory stopped after %d: %s", count, first_line[:300])
