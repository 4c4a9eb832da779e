"""Where a board's pikube files live: one place that names every path the bootstrap reads or writes.

On a Pi these are `/etc/pikube` (config: admin kubeconfig, join token, the
record of what was set up) and `/var/lib/pikube` (data: the master's store and
PKI, the agent's credentials and pod state). The dev cluster gives every board
its own pair under its state directory, so no board writes the machine's
`/etc` or `/var/lib`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CONFIG_DIR = Path("/etc/pikube")
DATA_DIR = Path("/var/lib/pikube")
SYSTEMD_UNIT_DIR = Path("/etc/systemd/system")

MASTER_UNIT = "pikube-master.service"
AGENT_UNIT = "pikube-agent.service"
ETCD_UNIT = "pikube-etcd.service"  # only on master boards of a cluster kept in etcd (`enable-master --cluster-init`)
ALL_UNITS = (MASTER_UNIT, AGENT_UNIT, ETCD_UNIT)


@dataclass(frozen=True)
class Layout:
    """A board's directories; every other path is derived from these three."""

    config_dir: Path = CONFIG_DIR
    data_dir: Path = DATA_DIR
    # Where systemd unit files go (`--init systemd`); `--init none` keeps them in `supervised_units`.
    systemd_unit_dir: Path = SYSTEMD_UNIT_DIR

    @property
    def admin_kubeconfig(self) -> Path:
        return self.config_dir / "admin.kubeconfig"

    @property
    def record(self) -> Path:
        """What enable-master/enable-worker set up (role, server, node name...): `pikube info` reads it."""
        return self.config_dir / "node.json"

    @property
    def join_token(self) -> Path:
        """The join token enable-master printed (0600), so running it again can print it again."""
        return self.config_dir / "join-token"

    @property
    def supervised_units(self) -> Path:
        """Unit files the supervisor runs when there is no systemd (`--init none`)."""
        return self.config_dir / "units"

    @property
    def master_data(self) -> Path:
        return self.data_dir / "master"

    @property
    def etcd_data(self) -> Path:
        """The board's etcd member's data (its certificates live with the master's, in master_data/pki/etcd)."""
        return self.data_dir / "etcd"

    @property
    def agent_data(self) -> Path:
        return self.data_dir / "agent"

    @property
    def logs(self) -> Path:
        """Output of supervised services (under systemd it goes to the journal)."""
        return self.data_dir / "logs"

    @property
    def master_kubeconfig(self) -> Path:
        """The admin kubeconfig the master writes into its data dir on every start."""
        return self.master_data / "admin.kubeconfig"

    @property
    def node_kubeconfig(self) -> Path:
        """The node credentials a join leaves in the agent's data dir (the agent's `kubelet.kubeconfig`)."""
        return self.agent_data / "kubelet.kubeconfig"

    @property
    def master_ca(self) -> Path:
        return self.master_data / "pki" / "ca.crt"

    @property
    def agent_ca(self) -> Path:
        return self.agent_data / "pki" / "ca.crt"
