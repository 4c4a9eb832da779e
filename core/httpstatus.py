"""HTTP reason phrases as Go's net/http writes them, so a response's status line reads as kube-apiserver's.

Clients copy the phrase: the official Python client puts it in
`ApiException.reason`, and scripts compare it. Werkzeug's are upper case
(`409 CONFLICT`) and some RFC 9110 names differ from Go's (`Payload Too Large`
where Go keeps `Request Entity Too Large`), so every server pikube runs
(core/httpserver.py) rewrites the phrase from this table, Go's `StatusText`.
"""

from __future__ import annotations

GO_STATUS_TEXT: dict[int, str] = {
    100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",
    200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information", 204: "No Content",
    205: "Reset Content", 206: "Partial Content", 207: "Multi-Status", 208: "Already Reported", 226: "IM Used",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
    305: "Use Proxy", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
    409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed",
    413: "Request Entity Too Large", 414: "Request URI Too Long", 415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable", 417: "Expectation Failed", 418: "I'm a teapot",
    421: "Misdirected Request", 422: "Unprocessable Entity", 423: "Locked", 424: "Failed Dependency",
    425: "Too Early", 426: "Upgrade Required", 428: "Precondition Required", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout", 505: "HTTP Version Not Supported", 506: "Variant Also Negotiates",
    507: "Insufficient Storage", 508: "Loop Detected", 510: "Not Extended", 511: "Network Authentication Required",
}


def status_line_text(status: str) -> str:
    """A WSGI status ("409 CONFLICT") with Go's phrase ("409 Conflict"); unknown codes keep theirs."""
    code, _, given = status.partition(" ")
    try:
        return f"{code} {GO_STATUS_TEXT.get(int(code), given)}"
    except ValueError:
        return status
