"""The thin, impure side of the proxy: read the table's names, run the rendered script, keep the route.

One `nft -f -` per sync inside the node's namespace, so the kernel swaps the whole
rule set in one transaction: a packet sees the old services or the new ones,
never a mix. Established connections keep their NAT in conntrack and are not
disturbed by a rebuild. The service range is routed to the bridge in the node's
namespace (never the machine's root namespace), because without a route a
connection from the node itself to a ClusterIP fails before the nat output hook
can DNAT it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from agent.network.bridge import ensure_service_route, remove_service_route
from agent.network.netns import Netns, NetnsCommandError, run_in
from agent.proxy.model import TABLE, ProxyConfig, ServiceRule, TableObjects
from agent.proxy.render import render

log = logging.getLogger(__name__)


def _table_missing(exc: NetnsCommandError) -> bool:
    return "No such file or directory" in exc.stderr


def existing_objects(netns: Netns | str) -> TableObjects:
    """Chains, sets and maps of `table ip pikube` now; empty if the table does not exist."""
    try:
        listing = run_in(netns, ["nft", "-j", "list", "table", "ip", TABLE])
    except NetnsCommandError as exc:
        if _table_missing(exc):
            return TableObjects()
        raise
    found: dict[str, set[str]] = {"chain": set(), "set": set(), "map": set()}
    for item in json.loads(listing).get("nftables", []):
        for kind, names in found.items():
            if kind in item:
                names.add(str(item[kind]["name"]))
    return TableObjects.of(found["chain"], found["set"], found["map"])


def apply(netns: Netns | str, rules: Iterable[ServiceRule], config: ProxyConfig) -> str:
    """Make the node serve exactly `rules`; returns the script applied. Needs the bridge to exist.

    If the incremental script is refused (say, a set changed type after an
    upgrade), the table is dropped and rebuilt from nothing in one transaction,
    which only costs the ClientIP affinity memory.
    """
    rules = list(rules)
    ensure_service_route(netns, config.service_cidr)
    script = render(rules, config, existing_objects(netns))
    try:
        run_in(netns, ["nft", "-f", "-"], stdin=script)
    except NetnsCommandError as exc:
        log.warning("nft refused the incremental sync (%s); rebuilding table %s from nothing", exc, TABLE)
        script = f"add table ip {TABLE}\ndelete table ip {TABLE}\n" + render(rules, config)
        run_in(netns, ["nft", "-f", "-"], stdin=script)
    return script


def teardown(netns: Netns | str) -> None:
    """Delete `table ip pikube` and the service range route from the node's namespace."""
    try:
        run_in(netns, ["nft", "delete", "table", "ip", TABLE])
    except NetnsCommandError as exc:
        if not _table_missing(exc):
            raise
    remove_service_route(netns)
