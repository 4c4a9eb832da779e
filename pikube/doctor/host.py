"""The doctor's view of the machine: the shared `core.host.Host` seam plus one question only the doctor asks.

`RealHost` is the machine; tests use `tests/core/fakepi.py`, a Raspberry Pi 4 in
dicts (with the memory cgroup off, a clock in 1970...). Nothing here decides
anything: checks live in `checks`.
"""

from __future__ import annotations

from typing import Protocol

from core import host


class Host(host.Host, Protocol):
    def docker_version(self, docker_host: str) -> tuple[bool, str]:
        """(True, server version) when the engine at `docker_host` answers, else (False, why not)."""
        ...

    def dns_query(self, server: str, name: str, qtype: str) -> tuple[str, list[str]] | None:
        """Ask `server` (UDP 53, 2 s) for `name`: (rcode, IPv4 addresses in the answer), None if no answer."""
        ...


class RealHost(host.RealHost):
    """This machine, and the Docker engine it may run."""

    def docker_version(self, docker_host: str) -> tuple[bool, str]:
        """`GET /version` of the Engine API over its socket with the standard library: the Docker SDK's import
        alone (requests, urllib3) costs several seconds of a Pi's or an emulated board's first boot, on the
        path to Ready. TLS engines (`https://`, `tcp://` with certificates) are left to the SDK."""
        import http.client
        import json
        import socket
        from urllib.parse import urlsplit

        parts = urlsplit(docker_host)
        if parts.scheme not in ("unix", "tcp", "http"):
            return self._docker_version_sdk(docker_host)

        class _Unix(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(self.timeout)
                self.sock.connect(parts.path)

        conn = (_Unix("localhost", timeout=5) if parts.scheme == "unix"
                else http.client.HTTPConnection(parts.hostname or "localhost", parts.port or 2375, timeout=5))
        try:
            conn.request("GET", "/version")
            resp = conn.getresponse()
            body = resp.read(1 << 20)
            if resp.status != 200:
                return False, f"HTTP {resp.status} from GET /version"
            return True, str(json.loads(body).get("Version", "unknown"))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return False, _short(exc)
        finally:
            conn.close()

    def _docker_version_sdk(self, docker_host: str) -> tuple[bool, str]:
        import docker

        try:
            client = docker.DockerClient(base_url=docker_host, timeout=5)
        except Exception as exc:
            return False, str(exc)
        try:
            return True, str(client.version().get("Version", "unknown"))
        except Exception as exc:
            return False, _short(exc)
        finally:
            client.close()

    def dns_query(self, server: str, name: str, qtype: str) -> tuple[str, list[str]] | None:
        import socket

        from dnslib import QTYPE, RCODE, DNSError, DNSRecord

        query = DNSRecord.question(name, qtype)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(2.0)
                s.sendto(bytes(query.pack()), (server, 53))
                reply = DNSRecord.parse(s.recv(4096))
        except (OSError, DNSError, ValueError):
            return None
        return str(RCODE.get(reply.header.rcode)), [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A]


def _short(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "No such file or directory", "Permission denied", "timed out"):
        if marker in text:
            return marker.lower()
    return text[:160]
