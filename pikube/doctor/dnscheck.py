"""Two DNS checks: does the node's own resolver answer, and does this board's cluster DNS (the agent) answer?

Both are warnings, never failures: a board without a working resolver still runs
pods (it cannot pull images by name, and pods with dnsPolicy Default or names
outside the cluster get nothing), and before the agent has started with the pod
network there is no cluster DNS to ask. A resolv.conf naming the cluster DNS
itself is pointed out: the agent refuses to forward to itself, so names outside
the cluster would not resolve anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from pikube.doctor.host import Host

RESOLV_CONF = "/etc/resolv.conf"


@dataclass(frozen=True)
class DnsFinding:
    ok: bool
    detail: str


def nameservers(text: str) -> list[str]:
    return [parts[1] for line in text.splitlines() if len(parts := line.split()) >= 2 and parts[0] == "nameserver"]


def node_resolver(host: Host, cluster_dns: str) -> DnsFinding:
    servers = nameservers(host.read_text(RESOLV_CONF) or "")
    if not servers:
        return DnsFinding(False, f"{RESOLV_CONF} names no nameserver: the board cannot resolve names (image "
                                 "pulls by name, pods with dnsPolicy Default, names outside the cluster)")
    if cluster_dns and servers == [cluster_dns]:
        return DnsFinding(False, f"{RESOLV_CONF} names only the cluster DNS ({cluster_dns}); it forwards other "
                                 "names to the node's servers, so those would never resolve")
    answer = host.dns_query(servers[0], ".", "NS")
    if answer is None:
        return DnsFinding(False, f"the node's resolver {servers[0]} does not answer (from {RESOLV_CONF})")
    return DnsFinding(True, f"the node's resolver {servers[0]} answers ({answer[0]})")


def cluster_dns_answers(host: Host, cluster_dns: str, domain: str) -> DnsFinding:
    result = host.run(["ip", "-4", "-o", "addr", "show", "dev", "lo"], timeout=5)
    if not cluster_dns or result is None or f" {cluster_dns}/32 " not in f" {result[1]} ".replace("\n", " "):
        return DnsFinding(True, f"no cluster DNS on this board yet ({cluster_dns or 'off'}: the agent with "
                                "--pod-network bridge adds it)")
    name = f"kubernetes.default.svc.{domain}"
    answer = host.dns_query(cluster_dns, name, "A")
    if answer is None:
        return DnsFinding(False, f"the cluster DNS on {cluster_dns} does not answer: is `pikube agent` running?")
    rcode, addresses = answer
    if not addresses:
        return DnsFinding(False, f"the cluster DNS on {cluster_dns} answers {rcode} for {name}")
    return DnsFinding(True, f"the cluster DNS on {cluster_dns} answers {name} = {', '.join(addresses)}")
