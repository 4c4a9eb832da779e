"""Where the network code acts: one way to name a network namespace and to work inside it.

The agent of a simulated board runs in the board's namespace, a pod's namespace is
found from its pause container's PID, tests use named namespaces. Every public
function of `agent.network` and `agent.proxy` therefore takes the target namespace
explicitly, as a name (``ip netns`` style, under /run/netns) or as a path such as
``/proc/<pid>/ns/net``; this module turns either into a netlink socket, a sysctl
write or a command run in that namespace, without ever touching the caller's own.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NewType

from pyroute2.iproute.linux import IPRoute
from pyroute2.netns import setns

Netns = NewType("Netns", str)
"""A network namespace: a name under /run/netns or a path to an nsfs file."""

NETNS_RUN_DIR = "/run/netns"
SELF = Netns("/proc/self/ns/net")
"""The namespace of the calling process (the board's, when the agent runs inside it)."""


def netns_path(netns: Netns | str) -> str:
    """The nsfs path of `netns`: names live under /run/netns, paths are used as given."""
    if "/" in netns:
        return str(netns)
    return f"{NETNS_RUN_DIR}/{netns}"


def pod_netns(pause_pid: int) -> Netns:
    """The network namespace of a pod, held by its pause container's process."""
    return Netns(f"/proc/{pause_pid}/ns/net")


@contextmanager
def iproute(netns: Netns | str) -> Iterator[Any]:
    """An rtnetlink socket bound inside `netns` (never creates the namespace)."""
    ipr = IPRoute(netns=netns_path(netns), flags=0)
    try:
        yield ipr
    finally:
        ipr.close()


def _in_netns(netns: Netns | str, work: Any) -> Any:
    """Run `work()` on a short-lived thread that has entered `netns` (setns is per thread)."""
    result: dict[str, Any] = {}

    def body() -> None:
        try:
            setns(netns_path(netns), flags=0)
            result["value"] = work()
        except BaseException as exc:  # handed back to the caller below
            result["error"] = exc

    thread = threading.Thread(target=body, name="pikube-netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def _sysctl_file(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def read_sysctl(netns: Netns | str, key: str) -> str | None:
    """The value of a per-namespace sysctl such as ``net.ipv4.ip_forward``; None if absent."""

    def work() -> str | None:
        try:
            with open(_sysctl_file(key)) as handle:
                return handle.read().strip()
        except FileNotFoundError:
            return None

    value: str | None = _in_netns(netns, work)
    return value


def write_sysctl(netns: Netns | str, key: str, value: str) -> bool:
    """Set a per-namespace sysctl if it differs; False if the kernel does not have it."""

    def work() -> bool:
        path = _sysctl_file(key)
        try:
            with open(path) as handle:
                if handle.read().strip() == value:
                    return True
            with open(path, "w") as handle:
                handle.write(value)
        except FileNotFoundError:
            return False
        return True

    done: bool = _in_netns(netns, work)
    return done


def run_in(netns: Netns | str, argv: Sequence[str], stdin: str | None = None) -> str:
    """Run a command inside `netns` (via nsenter) and return its stdout; raises on failure."""
    proc = subprocess.run(
        ["nsenter", f"--net={netns_path(netns)}", "--", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise NetnsCommandError(argv, proc.returncode, proc.stderr.strip())
    return proc.stdout


class NetnsCommandError(RuntimeError):
    """A command run inside a namespace failed; carries its stderr."""

    def __init__(self, argv: Sequence[str], code: int, stderr: str) -> None:
        super().__init__(f"{' '.join(argv)} exited {code}: {stderr}")
        self.argv = list(argv)
        self.code = code
        self.stderr = stderr
