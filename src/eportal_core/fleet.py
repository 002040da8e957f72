"""Process-wide parts of the agent path: the read connection factory and the check-in buffer."""
from .services.checkins import CheckinBuffer


def includeme(config):
    registry = config.registry
    engine = registry["dbengine"]
    # agent lookups read outside the request's (write) transaction; tests swap in their connection
    registry["db_read"] = engine.connect
    interval = registry.settings.get("eportal.checkins.flush_seconds") or 1
    registry["checkins"] = CheckinBuffer(engine, registry.pm, interval=interval)
