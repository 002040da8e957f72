"""Process-wide parts of the agent path: the server directory, the read connection factory and
the check-in buffer."""
from ..db import make_engine
from .checkins import CheckinBuffer
from .directory import AgentDirectory
from .memory import ServerMemory


def includeme(config):
    registry = config.registry
    engine = registry["dbengine"]
    # its own small engine: every worker thread keeps one connection of it for the hot lookup
    registry["agent_directory"] = AgentDirectory(make_engine(registry.settings["sqlalchemy.url"], pool_size=32,
                                                             max_overflow=32))
    # agent requests read outside the request's (write) transaction; tests swap in their connection.
    # PostgreSQL: through the directory's per-thread connection (one round trip per read, see
    # AgentDirectory.reading); SQLite: a pooled connection each time (in-process, cheap)
    registry["db_read"] = registry["agent_directory"].reading if engine.dialect.name == "postgresql" \
        else engine.connect
    settings = registry.settings  # validated: every key is there, defaults filled in
    registry["checkins"] = CheckinBuffer(engine, registry.pm, interval=settings["eportal.checkins.flush_seconds"])
    in_memory = settings["eportal.agent_directory.in_memory"]
    if in_memory == "true" or (in_memory == "auto" and engine.dialect.name == "postgresql"):
        memory = ServerMemory(engine)
        registry["agent_directory"].memory = memory
        registry["checkins"].on_missing = memory.forget
