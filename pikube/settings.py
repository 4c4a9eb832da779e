"""Frozen settings objects: the CLI parses flags once and hands these to the runtime.

No other module reads flags or the environment; a component gets everything it
needs through its settings object, so tests can build one directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class MasterSettings:
    """What `pikube master` needs to run the API server, store and controllers."""

    data_dir: Path
    bind: str = "0.0.0.0"
    port: int = 6443
    # Names and addresses the serving certificate must cover (besides loopback).
    hostnames: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    # The address other boards and the `kubernetes` service use to reach this master.
    advertise_address: str = "127.0.0.1"
    service_cidr: str = "10.96.0.0/12"
    pod_cidr: str = "10.244.0.0/16"
    node_port_range: tuple[int, int] = (30000, 32767)
    max_body_bytes: int = 3 * 1024 * 1024
    # Revisions of history kept for watches to resume from.
    history_revisions: int = 10000
    # Threads serving requests (watches hold one each).
    max_threads: int = 256
    # Controllers switched off by name (e.g. {"scheduler"}).
    disabled_controllers: frozenset[str] = field(default_factory=frozenset)
    # Status page (web/) port; 0 disables it.
    web_port: int = 0
    web_bind: str = "0.0.0.0"
    web_token: str = ""

    @property
    def db_path(self) -> Path:
        return self.data_dir / "state.db"
