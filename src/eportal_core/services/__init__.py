"""Domain logic shared by console, REST API, CLI and jobs. No HTTP in here."""


class ServiceError(ValueError):
    """A request the domain refuses; ``str(exc)`` is a one-line message for the user."""
