"""Pod address allocation from the node's podCIDR, kept in a file so a restarted agent agrees with itself.

One address per pod id (the sandbox id the agent uses), the same address for the
same id every time it asks, never the network, gateway (first address, held by the
bridge) or broadcast address. The state is one small JSON file in the agent's data
dir, replaced atomically (write, fsync, rename, fsync dir) after every change, so a
power cut leaves either the old or the new file. Addresses are handed out
round-robin after the last one given, so a freed address is reused as late as
possible (stale ARP and conntrack entries elsewhere have time to expire).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from core.fsutil import write_atomic

FORMAT_VERSION = 1


class IpamExhausted(RuntimeError):
    """Every usable address of the podCIDR is allocated."""


def gateway_of(pod_cidr: IPv4Network) -> IPv4Interface:
    """The bridge's address: the first address of the podCIDR, with its prefix."""
    return IPv4Interface(f"{pod_cidr.network_address + 1}/{pod_cidr.prefixlen}")


class Ipam:
    """Addresses of the pods of one node, persisted in `path`."""

    def __init__(self, path: Path, pod_cidr: IPv4Network) -> None:
        if pod_cidr.num_addresses < 4:
            raise ValueError(f"podCIDR {pod_cidr} is too small for a gateway and pods")
        self.path = path
        self.pod_cidr = pod_cidr
        self.gateway = gateway_of(pod_cidr)
        self._lock = threading.Lock()
        self._allocations: dict[str, IPv4Address] = {}
        self._last: IPv4Address = self.gateway.ip
        self._load()

    def _reserved(self, address: IPv4Address) -> bool:
        cidr = self.pod_cidr
        return address in (cidr.network_address, cidr.broadcast_address, self.gateway.ip)

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        if data.get("pod_cidr") != str(self.pod_cidr):
            return  # the node got another podCIDR: old addresses mean nothing here
        for pod_id, text in data.get("allocations", {}).items():
            address = IPv4Address(text)
            if address in self.pod_cidr and not self._reserved(address):
                self._allocations[str(pod_id)] = address
        last = IPv4Address(data.get("last", str(self.gateway.ip)))
        self._last = last if last in self.pod_cidr else self.gateway.ip

    def _save(self) -> None:
        data = {
            "version": FORMAT_VERSION,
            "pod_cidr": str(self.pod_cidr),
            "last": str(self._last),
            "allocations": {pod_id: str(ip) for pod_id, ip in sorted(self._allocations.items())},
        }
        write_atomic(self.path, json.dumps(data, indent=1), 0o600, make_parents=True)

    def _interface(self, address: IPv4Address) -> IPv4Interface:
        return IPv4Interface(f"{address}/{self.pod_cidr.prefixlen}")

    def lookup(self, pod_id: str) -> IPv4Interface | None:
        """The address held by `pod_id`, if any."""
        with self._lock:
            address = self._allocations.get(pod_id)
        return None if address is None else self._interface(address)

    def allocations(self) -> dict[str, IPv4Interface]:
        """All current allocations, pod id to address."""
        with self._lock:
            return {pod_id: self._interface(ip) for pod_id, ip in self._allocations.items()}

    def allocate(self, pod_id: str) -> IPv4Interface:
        """The address of `pod_id`: the one it already holds, else the next free one."""
        with self._lock:
            held = self._allocations.get(pod_id)
            if held is not None:
                return self._interface(held)
            used = set(self._allocations.values())
            size = self.pod_cidr.num_addresses
            base = int(self.pod_cidr.network_address)
            start = int(self._last) - base
            for step in range(1, size + 1):
                candidate = IPv4Address(base + (start + step) % size)
                if not self._reserved(candidate) and candidate not in used:
                    self._allocations[pod_id] = candidate
                    self._last = candidate
                    self._save()
                    return self._interface(candidate)
        raise IpamExhausted(f"no free address left in {self.pod_cidr}")

    def release(self, pod_id: str) -> IPv4Address | None:
        """Free the address of `pod_id`; returns it, or None if it held none."""
        with self._lock:
            address = self._allocations.pop(pod_id, None)
            if address is not None:
                self._save()
        return address

    def reconcile(self, live_pod_ids: Iterable[str]) -> dict[str, IPv4Address]:
        """Free the addresses of every pod not in `live_pod_ids`; returns what was freed."""
        live = set(live_pod_ids)
        with self._lock:
            gone = {pod_id: ip for pod_id, ip in self._allocations.items() if pod_id not in live}
            for pod_id in gone:
                del self._allocations[pod_id]
            if gone:
                self._save()
        return gone
