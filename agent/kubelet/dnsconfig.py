"""A pod's /etc/resolv.conf and /etc/hosts, as the kubelet forms them (pkg/kubelet/network/dns, kubelet_pods.go).

`resolv_conf(pod, cfg)` is pure and follows the kubelet's `GetPodDNS`:

| dnsPolicy | nameserver / search / options |
|---|---|
| `ClusterFirst` (default) | cluster DNS / `<ns>.svc.<domain> svc.<domain> <domain>` + the node's / `ndots:5` |
| `ClusterFirst` with hostNetwork | as `Default` |
| `ClusterFirstWithHostNet` | as `ClusterFirst`, with or without hostNetwork |
| `Default` | the node's resolv.conf (`--resolv-conf`) |
| `None` | nothing but `spec.dnsConfig` |

Without a cluster DNS address (`--cluster-dns ""`) the ClusterFirst policies fall
back to `Default`, with the kubelet's `MissingClusterDNS` event (not with
`--pod-network none`, where no cluster DNS can be offered at all). `spec.dnsConfig`
is then merged in: nameservers and searches appended without duplicates,
options merged by name (the pod's value wins). Over the limits (3 nameservers;
32 search domains or 2048 characters, the kubelet's ExpandedDNSConfig limits)
the list is cut and a `DNSConfigForming` warning says what was applied, in the
kubelet's words.

`hosts_file` is the kubelet's managed /etc/hosts: localhost lines, the pod's
address with its FQDN `<hostname>.<subdomain>.<ns>.svc.<domain>` when it has a
`subdomain`, and `hostAliases`. The agent writes both into the pod's directory
and bind-mounts them into every container (`PodDnsFiles`); Docker leaves its own
files out when a mount targets those paths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Obj = dict[str, Any]
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
RESOLV_NAME = "resolv.conf"
HOSTS_NAME = "hosts"


@dataclass(frozen=True)
class DnsSettings:
    cluster_dns: tuple[str, ...]  # empty: no cluster DNS
    domain: str
    host_resolv_conf: str  # the text of the node's resolv.conf
    # Say MissingClusterDNS when ClusterFirst falls back (not without a pod network: there is none to offer).
    warn_missing: bool = True


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def render(self) -> str:
        lines = []
        if self.nameservers:
            lines += [f"nameserver {ns}" for ns in self.nameservers]
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "".join(line + "\n" for line in lines)


@dataclass(frozen=True)
class Warning_:
    reason: str
    message: str


def parse_resolv_conf(text: str) -> ResolvConf:
    """nameserver, search (the last line wins, as in glibc) and options of a resolv.conf text."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split(";", 1)[0].split()
        if not parts:
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            nameservers.append(parts[1])
        elif parts[0] == "search":
            searches = [s.rstrip(".") for s in parts[1:] if s.rstrip(".")]
        elif parts[0] == "domain" and len(parts) > 1:
            searches = [parts[1].rstrip(".")]
        elif parts[0] == "options":
            options += parts[1:]
    return ResolvConf(tuple(nameservers), tuple(searches), tuple(options))


def _dedup(items: list[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _merge_options(existing: tuple[str, ...], extra: list[Obj]) -> tuple[str, ...]:
    merged: dict[str, str | None] = {}
    for option in existing:
        name, colon, after = option.partition(":")
        merged[name] = after if colon else None
    for item in extra:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        given = item.get("value")
        merged[str(item["name"])] = None if given is None else str(given)
    return tuple(name if value is None else f"{name}:{value}" for name, value in merged.items())


def resolv_conf(pod: Obj, cfg: DnsSettings) -> tuple[ResolvConf, list[Warning_]]:
    """The pod's resolv.conf and the warnings (events) forming it gave."""
    spec = pod.get("spec") or {}
    ns = str((pod.get("metadata") or {}).get("namespace") or "default")
    policy = str(spec.get("dnsPolicy") or "ClusterFirst")
    host_network = bool(spec.get("hostNetwork"))
    warnings: list[Warning_] = []
    if policy == "ClusterFirst" and host_network:
        policy = "Default"
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and not cfg.cluster_dns and cfg.warn_missing:
        warnings.append(Warning_("MissingClusterDNS", f'pod: "{pod.get("metadata", {}).get("name", "")}_{ns}'
                                 f'({pod.get("metadata", {}).get("uid", "")})". kubelet does not have ClusterDNS IP '
                                 f'configured and cannot create Pod using "{policy}" policy. Falling back to '
                                 f'"Default" policy.'))
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and not cfg.cluster_dns:
        policy = "Default"
    host = parse_resolv_conf(cfg.host_resolv_conf)
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        d = cfg.domain
        base = ResolvConf(cfg.cluster_dns, (f"{ns}.svc.{d}", f"svc.{d}", d, *host.searches), ("ndots:5",))
    elif policy == "None":
        base = ResolvConf()
    else:
        base = host
    extra = spec.get("dnsConfig") or {}
    nameservers = _dedup([*base.nameservers, *(str(n) for n in extra.get("nameservers") or [])])
    searches = _dedup([*base.searches, *(str(s).rstrip(".") for s in extra.get("searches") or [])])
    options = _merge_options(base.options, list(extra.get("options") or []))
    if len(nameservers) > MAX_NAMESERVERS:
        nameservers = nameservers[:MAX_NAMESERVERS]
        warnings.append(Warning_("DNSConfigForming", "Nameserver limits were exceeded, some nameservers have been "
                                 "omitted, the applied nameserver line is: " + " ".join(nameservers)))
    if len(searches) > MAX_SEARCHES or len(" ".join(searches)) > MAX_SEARCH_CHARS:
        kept: list[str] = []
        for s in searches[:MAX_SEARCHES]:
            if len(" ".join([*kept, s])) > MAX_SEARCH_CHARS:
                break
            kept.append(s)
        searches = kept
        warnings.append(Warning_("DNSConfigForming", "Search Line limits were exceeded, some search paths have "
                                 "been omitted, the applied search line is: " + " ".join(searches)))
    return ResolvConf(tuple(nameservers), tuple(searches), options), warnings


def hosts_file(pod: Obj, pod_ip: str, domain: str) -> str:
    """The kubelet's managed /etc/hosts for a pod with its own network."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    hostname = str(spec.get("hostname") or meta.get("name") or "")[:63].rstrip("-.")
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix",
             "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    if pod_ip:
        subdomain = str(spec.get("subdomain") or "")
        ns = str(meta.get("namespace") or "default")
        if subdomain:
            lines.append(f"{pod_ip}\t{hostname}.{subdomain}.{ns}.svc.{domain}\t{hostname}")
        else:
            lines.append(f"{pod_ip}\t{hostname}")
    aliases = [a for a in spec.get("hostAliases") or [] if isinstance(a, dict) and a.get("ip")]
    if aliases:
        lines += ["", "# Entries added by HostAliases."]
        lines += [f"{a['ip']}\t" + "\t".join(str(h) for h in a.get("hostnames") or []) for a in aliases]
    return "\n".join(lines) + "\n"


class PodDnsFiles:
    """Writes a pod's resolv.conf and hosts into its directory; `binds` mounts them into its containers."""

    def __init__(self, cluster_dns: tuple[str, ...], domain: str, host_resolv_conf: Path,
                 warn_missing: bool = True) -> None:
        self.cluster_dns, self.domain, self.host_resolv_conf = cluster_dns, domain, host_resolv_conf
        self.warn_missing = warn_missing

    def settings(self) -> DnsSettings:
        try:  # read for each pod, as the kubelet does: the node's file may change
            text = self.host_resolv_conf.read_text(errors="replace")
        except OSError:
            text = ""
        return DnsSettings(self.cluster_dns, self.domain, text, self.warn_missing)

    def write(self, pod: Obj, pod_dir: Path, pod_ip: str) -> list[Warning_]:
        """Write both files for a pod whose sandbox runs (a hostNetwork pod keeps the node's /etc/hosts)."""
        conf, warnings = resolv_conf(pod, self.settings())
        pod_dir.mkdir(parents=True, exist_ok=True)
        _write(pod_dir / RESOLV_NAME, conf.render())
        if not (pod.get("spec") or {}).get("hostNetwork"):
            _write(pod_dir / HOSTS_NAME, hosts_file(pod, pod_ip, self.domain))
        return warnings

    @staticmethod
    def binds(pod_dir: Path) -> list[str]:
        out = []
        if (pod_dir / RESOLV_NAME).exists():
            out.append(f"{pod_dir / RESOLV_NAME}:/etc/resolv.conf")
        if (pod_dir / HOSTS_NAME).exists():
            out.append(f"{pod_dir / HOSTS_NAME}:/etc/hosts")
        return out


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    tmp.replace(path)
