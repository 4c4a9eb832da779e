"""Names and addresses for one dev run, as pure functions so they are easy to test.

Every object a run makes (namespaces, links, containers, the LAN range) carries
the run's id, so two runs can coexist on one machine and a crashed run can still
be torn down by its id alone.
"""

from __future__ import annotations

import random
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network
from typing import NewType

from pikube.dev.errors import DevError

RunId = NewType("RunId", str)

RUN_ID_HEX = 6
# Test LANs are /24s carved out of this pool; it avoids the pod and service ranges.
LAN_POOL = IPv4Network("10.250.0.0/16")
POD_CIDR = IPv4Network("10.244.0.0/16")
SERVICE_CIDR = IPv4Network("10.96.0.0/12")
FORBIDDEN = (POD_CIDR, SERVICE_CIDR)

NETNS_PREFIX = "pikube-"
LINK_PREFIX = "pkd-"
IFNAMSIZ = 15  # the kernel's limit on interface names, without the NUL
MASTER = "master"
MAX_WORKERS = 64
# Label on every container a run makes, so `dev down` can find them.
RUN_LABEL = "org.pikube.dev-run"

_RUN_RE = re.compile(rf"^[0-9a-f]{{{RUN_ID_HEX}}}$")
_NETNS_RE = re.compile(rf"^{NETNS_PREFIX}([0-9a-f]{{{RUN_ID_HEX}}})-(.+)$")
_LINK_RE = re.compile(rf"^{LINK_PREFIX}([0-9a-f]{{{RUN_ID_HEX}}})(-\d+)?$")


def new_run_id(randbits: Callable[[int], int] = secrets.randbits) -> RunId:
    """A fresh run id: six lowercase hex digits."""
    return RunId(f"{randbits(4 * RUN_ID_HEX):0{RUN_ID_HEX}x}")


def is_run_id(text: str) -> bool:
    return bool(_RUN_RE.match(text))


def board_names(workers: int, masters: int = 1) -> list[str]:
    """Board 0 is the (first) master; further masters are `master-2` .. `master-M`, then `worker-1` .. `worker-N`."""
    return [MASTER] + [f"master-{i}" for i in range(2, masters + 1)] + [f"worker-{i}" for i in range(1, workers + 1)]


def netns_name(run: RunId, board: str) -> str:
    return f"{NETNS_PREFIX}{run}-{board}"


def bridge_name(run: RunId) -> str:
    return f"{LINK_PREFIX}{run}"


def host_link_name(run: RunId, index: int) -> str:
    """The root-namespace end of board `index`'s veth pair (its other end is `eth0`)."""
    name = f"{LINK_PREFIX}{run}-{index}"
    if len(name) > IFNAMSIZ:
        raise ValueError(f"link name {name!r} is longer than {IFNAMSIZ} characters")
    return name


def run_of_netns(name: str) -> RunId | None:
    match = _NETNS_RE.match(name)
    return RunId(match.group(1)) if match else None


def run_of_link(name: str) -> RunId | None:
    match = _LINK_RE.match(name)
    return RunId(match.group(1)) if match else None


def free_subnets(in_use: Iterable[IPv4Network]) -> list[IPv4Network]:
    """The /24s of the LAN pool that overlap nothing in use and no cluster range."""
    taken = [*in_use, *FORBIDDEN]
    return [net for net in LAN_POOL.subnets(new_prefix=24) if not any(net.overlaps(t) for t in taken)]


def pick_subnet(
    in_use: Iterable[IPv4Network],
    choose: Callable[[Sequence[IPv4Network]], IPv4Network] = random.choice,
) -> IPv4Network:
    """A free /24 for a new run's LAN, picked at random so parallel runs rarely race."""
    free = free_subnets(in_use)
    if not free:
        raise DevError(f"every /24 in {LAN_POOL} is in use on this machine; take old runs down first.")
    return choose(free)


def api_address(subnet: IPv4Network) -> IPv4Address:
    """The masters' floating address in a dev cluster of several masters: the LAN's .250, which no board has
    (boards count up from .1; at most 1 + 64 workers + a few masters)."""
    return subnet[250]


def board_address(subnet: IPv4Network, index: int) -> IPv4Address:
    """Board `index` (0 = master) gets .1, .2, ... of the LAN."""
    return subnet[index + 1]


def host_address(subnet: IPv4Network) -> IPv4Address:
    """The root namespace's address on the LAN bridge (.254), so it can reach the master."""
    return subnet[-2]
