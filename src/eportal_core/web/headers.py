"""Security headers on every response."""

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
       "object-src 'none'; frame-ancestors 'none'")

_EVERY_RESPONSE = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"),
                   ("X-Frame-Options", "DENY"))
_HTTPS_ONLY = (("Strict-Transport-Security", "max-age=31536000"),)


def static_security_headers(scheme: str | None) -> tuple[tuple[str, str], ...]:
    """The headers every answer carries whatever its type (HSTS only over HTTPS)."""
    return _EVERY_RESPONSE + _HTTPS_ONLY if scheme == "https" else _EVERY_RESPONSE


def add_missing(headerlist: list, extra) -> None:
    """Append the ``extra`` headers the list does not carry yet (case-insensitive names)."""
    present = {name.lower() for name, _ in headerlist}
    headerlist.extend(h for h in extra if h[0].lower() not in present)


def security_headers_tween_factory(handler, registry):
    def security_headers_tween(request):
        response = handler(request)
        add_missing(response.headerlist, static_security_headers(request.scheme))
        if response.content_type == "text/html":
            headers = response.headers
            headers.setdefault("Content-Security-Policy", CSP)
            # console pages carry user data: never keep them in a shared or browser cache
            headers.setdefault("Cache-Control", "no-store")
        return response
    return security_headers_tween


def includeme(config):
    config.add_tween("eportal_core.web.headers.security_headers_tween_factory")
