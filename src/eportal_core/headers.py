"""Security headers on every response."""

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
       "object-src 'none'; frame-ancestors 'none'")


def security_headers_tween_factory(handler, registry):
    def security_headers_tween(request):
        response = handler(request)
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        if response.content_type == "text/html":
            headers.setdefault("Content-Security-Policy", CSP)
            # console pages carry user data: never keep them in a shared or browser cache
            headers.setdefault("Cache-Control", "no-store")
        if request.scheme == "https":
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
    return security_headers_tween


def includeme(config):
    config.add_tween("eportal_core.headers.security_headers_tween_factory")
