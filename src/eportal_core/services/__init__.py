"""Domain logic shared by console, REST API, CLI and jobs. No HTTP in here."""


class ServiceError(ValueError):
    """A request the domain refuses; ``str(exc)`` is a one-line message for the user.

    ``field`` names the parameter the refusal is about (``"feed"``, ``"server_limit"``; empty: the
    request as a whole), so a form can mark that field without reading the message.
    """

    def __init__(self, message: str = "", *, field: str = ""):
        super().__init__(message)
        self.field = field


def whole_number(value, *, name: str, field: str, high: int, zero: str, unit: str = "") -> int:
    """``value`` (form, REST API or CLI text) as a whole number from 0 to ``high``; blank is 0.
    ``zero`` says what 0 means (``"unlimited"``), ``unit`` what is counted (``"hours"``)."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return 0
    try:
        number = int(str(value).strip())
    except ValueError:
        kind = f"a whole number of {unit}" if unit else f"a whole number (0 = {zero})"
        raise ServiceError(f"{name} must be {kind}, not {str(value)[:40]!r}", field=field) from None
    if not 0 <= number <= high:
        raise ServiceError(f"{name} must be between 0 ({zero}) and {high}{' ' + unit if unit else ''}", field=field)
    return number
