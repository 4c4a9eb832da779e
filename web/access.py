"""The optional access token: `?token=` (links from a phone) or `Authorization: Bearer` (scripts).

With no token configured the page is open to the LAN, like a printer's status
page; it is read-only and shows no secret either way. The comparison takes
constant time, and the answers are plain text a person can act on.
"""

from __future__ import annotations

import hmac

from flask import Request, Response

REALM = 'Bearer realm="pikube status page"'


def offered(request: Request) -> str | None:
    """The token a request carries, if any (the header wins over the query)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.args.get("token")


def refusal(request: Request, token: str) -> Response | None:
    """None when the request may see the page; else the 401/403 answer."""
    if not token:
        return None
    given = offered(request)
    if given is None:
        return Response("This status page needs an access token: open it as /?token=<token>, "
                        "or send 'Authorization: Bearer <token>'.\n", 401, mimetype="text/plain",
                        headers={"WWW-Authenticate": REALM})
    if not hmac.compare_digest(given.encode(), token.encode()):
        return Response("Wrong access token for this status page.\n", 403, mimetype="text/plain")
    return None
