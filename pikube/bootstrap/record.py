"""The record of what enable-master / enable-worker set up on this board (`/etc/pikube/node.json`).

It is how a second `enable-master` knows what exists, how `pikube info` knows
the board's role, and how `disable`, `reset` and `token` find the services and
directories without being told again. It holds no secret.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from core.fsutil import write_atomic
from pikube.bootstrap.errors import BootstrapError
from pikube.bootstrap.init import InitKind
from pikube.bootstrap.layout import AGENT_UNIT, ETCD_UNIT, MASTER_UNIT


class Role(StrEnum):
    MASTER = "master"
    WORKER = "worker"


@dataclass(frozen=True)
class NodeRecord:
    role: Role
    node_name: str
    # The master's API, as workers reach it: https://ADDRESS:PORT.
    server: str
    backend: str
    init: InitKind
    data_dir: str
    docker_host: str
    taint_master: bool = False
    # Where a master keeps the cluster's state: "sqlite" (one master) or "etcd" (this board runs a member).
    datastore: str = "sqlite"
    # A master that joined a cluster on etcd: its member's first members, and the other members' client URLs.
    etcd_initial_cluster: str = ""
    etcd_endpoints: tuple[str, ...] = ()
    # The masters' floating address (`--api-address`), if they have one.
    api_address: str = ""

    @property
    def units(self) -> tuple[str, ...]:
        """The services this board runs, in start order."""
        if self.role is not Role.MASTER:
            return (AGENT_UNIT,)
        return (ETCD_UNIT, MASTER_UNIT, AGENT_UNIT) if self.datastore == "etcd" else (MASTER_UNIT, AGENT_UNIT)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "role": self.role.value, "init": self.init.value}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> NodeRecord:
        data = json.loads(text)
        return cls(role=Role(data["role"]), node_name=str(data["node_name"]), server=str(data["server"]),
                   backend=str(data["backend"]), init=InitKind(data["init"]), data_dir=str(data["data_dir"]),
                   docker_host=str(data["docker_host"]), taint_master=bool(data.get("taint_master", False)),
                   datastore=str(data.get("datastore", "sqlite")),
                   etcd_initial_cluster=str(data.get("etcd_initial_cluster", "")),
                   etcd_endpoints=tuple(str(e) for e in data.get("etcd_endpoints") or ()),
                   api_address=str(data.get("api_address", "")))


def load(path: Path) -> NodeRecord | None:
    """The record at `path`, None when the board was never set up; BootstrapError when it is damaged."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return NodeRecord.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise BootstrapError(f"{path} is damaged ({exc}); fix it, or run `pikube reset` to start over.") from None


def save(path: Path, record: NodeRecord) -> None:
    write_atomic(path, record.to_json(), 0o644, make_parents=True)  # no secret in it: anyone may read it
