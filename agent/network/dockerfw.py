"""Docker's firewall against the pod network: accept pod traffic in the `DOCKER-USER` chain.

A Docker engine that manages iptables (the default on a Pi) sets the FORWARD
policy of `iptables -t filter` to DROP. With the nftables backend that is a
base chain of its own at the forward hook, and a packet must pass every base
chain: pikube's accepting rules do not help, so pod traffic between boards and
NodePort traffic to pods elsewhere is dropped. Docker jumps to `DOCKER-USER`
first and leaves that chain to the administrator, so, like flannel, pikube adds
`-s <cluster CIDR> -j ACCEPT` and `-d <cluster CIDR> -j ACCEPT` there, marked by
a comment so that teardown removes exactly these. Nothing is done (and nothing
is needed) when there is no iptables or no `DOCKER-USER` chain, e.g. an engine
run with `--iptables=false`. Rules go through the `iptables` command, so they
land in whichever backend (nft or legacy) Docker itself uses.
"""

from __future__ import annotations

import shutil
from ipaddress import IPv4Network

from agent.network.netns import Netns, NetnsCommandError, run_in

CHAIN = "DOCKER-USER"
COMMENT = "pikube pod network"


def _rule(flag: str, cidr: str) -> list[str]:
    return [flag, cidr, "-m", "comment", "--comment", COMMENT, "-j", "ACCEPT"]


def _iptables(netns: Netns | str, *argv: str) -> str:
    return run_in(netns, ["iptables", "-w", "5", "-t", "filter", *argv])


def _chain_rules(netns: Netns | str) -> list[str] | None:
    """`iptables -S DOCKER-USER` lines, or None if there is no iptables or no such chain."""
    if shutil.which("iptables") is None:
        return None
    try:
        return _iptables(netns, "-S", CHAIN).splitlines()
    except NetnsCommandError:
        return None


def ensure_docker_forward(netns: Netns | str, cluster_cidr: IPv4Network) -> bool:
    """Accept the pod network in Docker's `DOCKER-USER` chain if it exists; returns whether it does."""
    if _chain_rules(netns) is None:
        return False
    for rule in (_rule("-d", str(cluster_cidr)), _rule("-s", str(cluster_cidr))):
        try:
            _iptables(netns, "-C", CHAIN, *rule)
        except NetnsCommandError:
            _iptables(netns, "-I", CHAIN, "1", *rule)
    return True


def remove_docker_forward(netns: Netns | str) -> int:
    """Delete every rule pikube put into `DOCKER-USER` (any cluster CIDR); returns how many."""
    removed = 0
    for line in _chain_rules(netns) or []:
        if f'"{COMMENT}"' not in line or not line.startswith(f"-A {CHAIN} "):
            continue
        spec = line.removeprefix(f"-A {CHAIN} ")
        cidr_flag, cidr = spec.split()[:2]
        if cidr_flag in ("-s", "-d"):
            _iptables(netns, "-D", CHAIN, *_rule(cidr_flag, cidr))
            removed += 1
    return removed

