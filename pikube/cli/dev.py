"""`pikube dev`: a whole cluster on one Linux machine (boards are network namespaces)."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    sub.add_parser("dev", help="local cluster for development")
