"""Domain logic shared by console, REST API, CLI and jobs. No HTTP in here."""


class ServiceError(ValueError):
    """A request the domain refuses; ``str(exc)`` is a one-line message for the user.

    ``field`` names the parameter the refusal is about (``"feed"``, ``"server_limit"``; empty: the
    request as a whole), so a form can mark that field without reading the message.
    """

    def __init__(self, message: str = "", *, field: str = ""):
        super().__init__(message)
        self.field = field
