"""The summary behind the page: read the kinds it shows from the store and reduce them to `model.Summary`.

Only the kinds in `KINDS` are ever read — never Secrets, ConfigMaps or
ServiceAccounts — and `model` keeps only named fields of those, so the page
cannot show what it never looked at.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from core import __version__
from web import boards, events, pods, services, workloads
from web.model import SCHEMA_VERSION, Summary, Tone, Totals
from web.source import Prefixes, Source

Obj = dict[str, Any]

# (group, version, plural) of everything the page shows.
KINDS: tuple[tuple[str, str, str], ...] = (
    ("", "v1", "nodes"), ("", "v1", "pods"), ("", "v1", "services"), ("", "v1", "events"),
    ("apps", "v1", "deployments"), ("apps", "v1", "daemonsets"), ("batch", "v1", "jobs"),
    ("batch", "v1", "cronjobs"), ("apps", "v1", "statefulsets"),
)


def check_prefixes(kind_prefixes: Prefixes) -> None:
    """Refuse a prefix table that misses a kind the page shows (a wiring mistake, found at start-up)."""
    missing = [plural for _, _, plural in KINDS if plural not in kind_prefixes]
    if missing:
        raise LookupError(f"the status page was given no store prefix for {', '.join(missing)}")


def read(store: Source, kind_prefixes: Mapping[str, str]) -> dict[str, list[Obj]]:
    """The current objects of each kind."""
    return {plural: store.list(prefix)[0] for plural, prefix in kind_prefixes.items()}


def summarize(objs: Mapping[str, list[Obj]]) -> Summary:
    all_pods = objs.get("pods", [])
    pods_by_node = pods.by_node(all_pods)
    cards = boards.boards(objs.get("nodes", []), pods_by_node)
    groups = pods.groups([b["name"] for b in cards], pods_by_node)
    rows = [p for g in groups for p in g["pods"]]
    recent = events.recent(objs.get("events", []))
    totals = Totals(boards=len(cards), boardsReady=sum(1 for b in cards if b["ready"] == "Ready"),
                    pods=len(rows), podsRunning=sum(1 for p in rows if p["status"] == "Running"),
                    podsFailing=sum(1 for p in rows if p["tone"] == Tone.BAD),
                    warnings=sum(1 for e in recent if e["type"] == "Warning"))
    ready_addresses = [b["address"] for b in cards if b["ready"] == "Ready" and b["address"]]
    return Summary(
        schema=SCHEMA_VERSION, version=__version__, totals=totals, boards=cards,
        workloads=workloads.workloads(objs.get("deployments", []), objs.get("daemonsets", []), objs.get("jobs", []),
                                      objs.get("cronjobs", []), objs.get("statefulsets", [])),
        podsByBoard=groups, services=services.services(objs.get("services", []), ready_addresses), events=recent,
    )


def encode(summary: Summary) -> bytes:
    """Compact one-line JSON (an SSE `data:` line must not contain a newline)."""
    return json.dumps(summary, separators=(",", ":"), ensure_ascii=False).encode()


def build(store: Source, kind_prefixes: Mapping[str, str]) -> bytes:
    return encode(summarize(read(store, kind_prefixes)))


def stamped(body: bytes, now: str) -> bytes:
    """`body` (an encoded summary) with `now` — the master's clock — added as its first field."""
    return b'{"now":' + json.dumps(now).encode() + b"," + body[1:]
