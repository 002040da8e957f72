"""Unexpected errors: logged with their traceback under a short incident id that the user sees
(console page, API answer or agent lane alike), never the traceback itself."""
import logging
import secrets

log = logging.getLogger(__name__)


def log_incident(method: str, path: str | None, exc: BaseException) -> str:
    """Log an unexpected error with its traceback under a short random incident id (returned: the
    user sees only the id, never the traceback)."""
    incident = secrets.token_hex(4)
    log.error("unexpected error %s on %s %s", incident, method, path, exc_info=exc)
    return incident
