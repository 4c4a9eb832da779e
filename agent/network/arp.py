"""Answering ARP for LoadBalancer addresses no interface holds (the address-pool mode, MetalLB's layer 2).

A pool address is never added to an interface: every service on the board that
binds 0.0.0.0 (sshd, the agent's own server) would become reachable on it. So the
kernel does not answer ARP for it, and this does, from a raw `AF_PACKET` socket on
the board's LAN interface, with the interface's own MAC: requests for an
announced address get a reply; when the board takes an address over it sends
gratuitous ARP (a request and a reply, both broadcast, with the address as
sender and target) every second for five seconds, so switches and clients that
cached the previous board's MAC move at once. Frames then reach the board, where
the service proxy's DNAT (installed on every board) takes them to an endpoint.

One thread per agent, started the first time there is something to announce
and kept until the agent stops; the socket is read with a timeout so that
stopping and changes of the announced set are seen within half a second.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address

log = logging.getLogger(__name__)
ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6
GRATUITOUS_EVERY, GRATUITOUS_FOR = 1.0, 5.0
_ARP_HEAD = struct.Struct("!HHBBH")  # hardware type, protocol type, hw length, proto length, operation
REQUEST, REPLY = 1, 2


@dataclass(frozen=True)
class Arp:
    """An Ethernet/IPv4 ARP packet (without the Ethernet header)."""

    op: int
    sender_mac: bytes
    sender_ip: IPv4Address
    target_mac: bytes
    target_ip: IPv4Address

    def pack(self) -> bytes:
        return (_ARP_HEAD.pack(1, 0x0800, 6, 4, self.op) + self.sender_mac + self.sender_ip.packed
                + self.target_mac + self.target_ip.packed)


def parse(frame: bytes) -> Arp | None:
    """The ARP packet in an Ethernet frame, or None for anything else (other types, short or malformed frames)."""
    if len(frame) < 14 + 28 or frame[12:14] != struct.pack("!H", ETH_P_ARP):
        return None
    hw, proto, hlen, plen, op = _ARP_HEAD.unpack_from(frame, 14)
    if (hw, proto, hlen, plen) != (1, 0x0800, 6, 4) or op not in (REQUEST, REPLY):
        return None
    body = frame[22:42]
    return Arp(op, body[0:6], IPv4Address(body[6:10]), body[10:16], IPv4Address(body[16:20]))


def frame(dst: bytes, src: bytes, arp: Arp) -> bytes:
    return dst + src + struct.pack("!H", ETH_P_ARP) + arp.pack()


def reply_to(request: Arp, own_mac: bytes, announced: Iterable[IPv4Address]) -> bytes | None:
    """The frame answering `request` if it asks for an announced address (and is not our own gratuitous one)."""
    if request.op != REQUEST or request.target_ip not in set(announced) or request.sender_mac == own_mac:
        return None
    if request.sender_ip == request.target_ip:  # someone else's gratuitous ARP: no answer
        return None
    answer = Arp(REPLY, own_mac, request.target_ip, request.sender_mac, request.sender_ip)
    return frame(request.sender_mac, own_mac, answer)


def gratuitous(address: IPv4Address, own_mac: bytes) -> list[bytes]:
    """A broadcast request and reply announcing that `address` is at `own_mac`."""
    return [frame(BROADCAST, own_mac, Arp(op, own_mac, address, b"\x00" * 6 if op == REQUEST else BROADCAST,
                                          address)) for op in (REQUEST, REPLY)]


class Announcer:
    """Answers ARP for the addresses it is given on interface `ifname` (in the caller's network namespace)."""

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        self._lock = threading.Lock()
        self._addresses: frozenset[IPv4Address] = frozenset()
        self._since: dict[IPv4Address, float] = {}  # when each address was taken over (gratuitous ARP until +5 s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def addresses(self) -> frozenset[IPv4Address]:
        with self._lock:
            return self._addresses

    def announce(self, addresses: Iterable[IPv4Address]) -> None:
        """Answer for exactly `addresses` from now on (newly added ones are announced gratuitously)."""
        wanted = frozenset(addresses)
        now = time.monotonic()
        with self._lock:
            for address in wanted - self._addresses:
                self._since[address] = now
                log.info("ARP: announcing %s on %s", address, self.ifname)
            for address in self._addresses - wanted:
                self._since.pop(address, None)
                log.info("ARP: no longer announcing %s", address)
            self._addresses = wanted
            start = bool(wanted) and self._thread is None
            if start:
                self._thread = threading.Thread(target=self._run, name="arp-announcer", daemon=True)
        if start and self._thread is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _run(self) -> None:
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        except OSError as exc:
            log.error("ARP: cannot open a raw socket (%s): pool addresses are not announced", exc)
            return
        with sock:
            try:
                sock.bind((self.ifname, ETH_P_ARP))
            except OSError as exc:
                log.error("ARP: cannot use %s (%s): pool addresses are not announced", self.ifname, exc)
                return
            own_mac: bytes = sock.getsockname()[4]
            next_burst = 0.0
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_burst:
                    self._send_gratuitous(sock, own_mac, now)
                    next_burst = now + GRATUITOUS_EVERY
                ready, _, _ = select.select([sock], [], [], min(0.5, max(0.0, next_burst - now)))
                if not ready:
                    continue
                try:
                    data = sock.recv(2048)
                except OSError:
                    continue
                request = parse(data)
                answer = reply_to(request, own_mac, self.addresses) if request is not None else None
                if answer is not None:
                    self._send(sock, answer)

    def _send_gratuitous(self, sock: socket.socket, own_mac: bytes, now: float) -> None:
        with self._lock:
            fresh = [a for a, since in self._since.items() if now - since < GRATUITOUS_FOR]
        for address in fresh:
            for packet in gratuitous(address, own_mac):
                self._send(sock, packet)

    def _send(self, sock: socket.socket, packet: bytes) -> None:
        try:
            sock.send(packet)
        except OSError as exc:
            log.debug("ARP: send on %s failed: %s", self.ifname, exc)
