"""Parameters from the query string, a form body or a JSON object body, read the same way by the
agent endpoints and the REST API: strictly UTF-8, size-limited, one error vocabulary."""
from __future__ import annotations

import json
from urllib.parse import unquote_to_bytes

#: methods whose body is never read
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ParamError(Exception):
    """Unreadable input, answered as ``{"error": slug, "message": message}`` with ``status``."""

    def __init__(self, slug: str, message: str, status: int = 400):
        super().__init__(message)
        self.slug, self.message, self.status = slug, message, status


def parse_urlencoded(body: bytes) -> list[tuple[str, str]]:
    """``a=1&b=%C3%A9`` strictly as UTF-8 (WebOb would silently put U+FFFD in place of bad bytes)."""
    pairs = []
    for part in body.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        pairs.append((_unquote(name), _unquote(value)))
    return pairs


def _unquote(raw: bytes) -> str:
    if b"%" in raw or b"+" in raw:
        raw = unquote_to_bytes(raw.replace(b"+", b" "))
    return raw.decode("utf-8")  # strict: bad bytes raise UnicodeDecodeError


def read_params(request, *, max_body: int, example: str) -> tuple[list[tuple[str, str]], dict | list | None]:
    """``(query pairs, body)``: body is the JSON object (a dict), the form's pairs (a list) or None
    (no body: an empty one, or the JSON literal ``null``; the query string then has the parameters).

    Raises ParamError: 400 bad-encoding / bad-json / bad-param, 413 too-large, 415 for other body
    types. ``example`` shows the expected JSON object in the not-an-object message.
    """
    try:
        # WebOb decodes the query lazily and raises UnicodeDecodeError on bad bytes
        query = list(request.GET.items())
    except UnicodeDecodeError:
        raise ParamError("bad-encoding", "the query string is not valid UTF-8") from None
    if request.method in SAFE_METHODS:
        return query, None
    if request.content_length is not None and request.content_length > max_body:
        raise ParamError("too-large", f"the request body is larger than {max_body} bytes", 413)
    body = request.body
    if len(body) > max_body:
        raise ParamError("too-large", f"the request body is larger than {max_body} bytes", 413)
    if not body.strip():
        return query, None
    ctype = (request.content_type or "").lower()
    if ctype == "application/json" or ctype.endswith("+json") or (not ctype and body.lstrip()[:1] in (b"{", b"[")):
        try:
            data = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise ParamError("bad-encoding", "the JSON body is not valid UTF-8") from None
        except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." nested too deep
            raise ParamError("bad-json", f"the body is not valid JSON: {str(exc)[:80]}") from None
        if data is None:
            # "no body": axios sends the literal null for post(url, null, {params}); the query has the parameters
            return query, None
        if not isinstance(data, dict):
            raise ParamError("bad-json", f"the JSON body must be an object like {example}")
        return query, data
    if ctype in ("application/x-www-form-urlencoded", ""):
        try:
            return query, parse_urlencoded(body)
        except UnicodeDecodeError:
            raise ParamError("bad-encoding", "the form body is not valid UTF-8") from None
    if ctype == "multipart/form-data":
        pairs = []
        for name, value in request.POST.items():
            if not isinstance(value, str):
                raise ParamError("bad-param", f"{str(name)[:40]} must be text, not a file")
            if "\ufffd" in value:  # WebOb's stand-in for bytes that were not UTF-8
                raise ParamError("bad-encoding", "the form body is not valid UTF-8")
            pairs.append((name, value))
        return query, pairs
    raise ParamError("unsupported-media-type",
                     "send parameters in the query, as a form (application/x-www-form-urlencoded) or as a JSON object", 415)
