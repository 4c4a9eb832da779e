"""`enable-master`: make this board the cluster's master, and the first board that runs pods.

Steps, each skipped when its result already exists (so a second run reports
what is there and changes nothing): preflight; `pikube-master.service` (its
first start makes the CA, the serving certificate and the admin kubeconfig);
with `--cluster-init`, first `pikube-etcd.service` (the board's etcd member, healthy
before the master starts on it); the admin kubeconfig in the config dir (and the user's `~/.kube/config` when
they have none); a join token; the master board's own node credentials and
`pikube-agent.service`; the node Ready (and tainted when asked); the record.
A first run that fails removes everything it made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from core.jointoken import DEFAULT_PORT, parse
from core.kubeconfig import read_kubeconfig
from pikube.bootstrap import api, masterjoin, record
from pikube.bootstrap.common import (
    Hooks,
    UserFile,
    check_preflight,
    missing_dirs,
    undo,
    wait_ready,
    write_private,
)
from pikube.bootstrap.errors import BootstrapError, NotReady
from pikube.bootstrap.etcdmember import EtcdClient
from pikube.bootstrap.init import Init, InitKind
from pikube.bootstrap.layout import AGENT_UNIT, ETCD_UNIT, MASTER_UNIT, Layout
from pikube.bootstrap.masterjoin import Joined, JoinRequest
from pikube.bootstrap.record import NodeRecord, Role
from pikube.bootstrap.services import (
    DEFAULT_DOCKER_HOST,
    LOCAL_ETCD,
    AgentFlags,
    agent_unit,
    etcd_unit,
    master_unit,
)
from pikube.bootstrap.units import Unit

MASTER_TAINT = "node-role.kubernetes.io/master"


@dataclass(frozen=True)
class MasterSetup:
    """enable-master's settings, parsed once by the CLI."""

    layout: Layout
    advertise_address: str
    node_name: str
    pikube: tuple[str, ...]
    backend: str = "host-gw"
    port: int = DEFAULT_PORT
    web_port: int = 8080
    taint_master: bool = False
    docker_host: str = DEFAULT_DOCKER_HOST
    user_kubeconfig: UserFile | None = None
    timeout: float = 90.0
    lb_pool: tuple[str, ...] = ()
    # Keep the cluster's state in an etcd member on this board (the first of several masters), not SQLite.
    cluster_init: bool = False
    # Join the cluster of the master at this URL as one more master (its etcd), with a master join token.
    join: str = ""
    join_token: str = field(default="", repr=False)
    # The masters' floating address (a free LAN address): kubectl's kubeconfig names it. A joining master
    # takes the cluster's from the join.
    api_address: str = ""

    @property
    def datastore(self) -> str:
        return "etcd" if self.cluster_init or self.join else "sqlite"

    @property
    def server(self) -> str:
        return _url(self.advertise_address, self.port)


@dataclass
class Outcome:
    """What a run found and did: `changed` is empty when it changed nothing."""

    existed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    token: str = ""
    join_command: str = ""
    seconds: float = 0.0


def join_command(address: str, port: int, token: str) -> str:
    where = address if port == DEFAULT_PORT else f"{address}:{port}"
    return f"sudo enable-worker {where} --token {token}"


def _url(address: str, port: int) -> str:
    return f"https://[{address}]:{port}" if ":" in address else f"https://{address}:{port}"


def master_join_command(server: str, token: str) -> str:
    return f"sudo enable-master --join {server} --token {token}"


def _check_record(existing: NodeRecord | None, setup: MasterSetup, init: InitKind) -> None:
    if existing is None:
        return
    if existing.role is Role.WORKER:
        raise BootstrapError(f"this board is already a worker of the master at {existing.server}; "
                             "run `sudo pikube reset` on it first to make it a master.")
    differs = [(what, old, new) for what, old, new in (
        ("address", existing.server, setup.server), ("backend", existing.backend, setup.backend),
        ("node name", existing.node_name, setup.node_name), ("data dir", existing.data_dir, str(setup.layout.data_dir)),
        ("init", existing.init.value, init.value), ("datastore", existing.datastore, setup.datastore),
    ) if old != new]
    if differs:
        what, old, new = differs[0]
        raise BootstrapError(f"this board is already the master with {what} {old}, not {new}; "
                             "changing it needs `sudo pikube reset` and a new cluster.")


class _Run:
    """One enable-master run: its outcome so far, and what it made (undone if a first run fails)."""

    def __init__(self, setup: MasterSetup, init: Init, hooks: Hooks) -> None:
        self.setup = setup
        self.layout = setup.layout
        self.init = init
        self.hooks = hooks
        self.out = Outcome()
        self.made_files: list[Path] = []
        self.joined: Joined | None = None
        self.etcd_cluster = ""
        self.etcd_endpoints: tuple[str, ...] = ()
        self.api_address = setup.api_address

    def note(self, existed: bool, what: str) -> None:
        (self.out.existed if existed else self.out.changed).append(what)
        self.hooks.report(f"{what}: {'already there' if existed else 'done'}")

    def service(self, unit: Unit) -> None:
        was_active = self.init.active(unit.name)
        changed = self.init.install(unit)
        if changed or not was_active:
            self.init.start(unit.name, restart=changed and was_active)
        self.note(not changed and was_active, f"{unit.name} installed and running")

    def join_cluster(self) -> None:
        """enable-master --join's first run: the cluster's keys, then this board's member, promoted."""
        s, lay = self.setup, self.layout
        req = JoinRequest(server=s.join, token=s.join_token, node_name=s.node_name, address=s.advertise_address)
        self.joined = masterjoin.fetch_keys(req, lay, self.made_files)
        self.hooks.report(f"the cluster's keys from {s.join}, and an etcd membership: done")
        self.etcd_cluster, self.etcd_endpoints = self.joined.initial_cluster, self.joined.endpoints
        self.api_address = self.joined.api_address
        s_etcd = etcd_unit(s.pikube, lay, s.node_name, s.advertise_address, self.etcd_cluster, existing=True)
        self.service(s_etcd)
        masterjoin.promote(self.joined, lay.master_data / "pki" / "etcd", LOCAL_ETCD, s.timeout)
        self.hooks.report("this board's etcd member caught up and votes: done")
        self.etcd()

    def etcd(self) -> None:
        s, lay = self.setup, self.layout
        self.service(etcd_unit(s.pikube, lay, s.node_name, s.advertise_address, self.etcd_cluster,
                               existing=bool(self.etcd_cluster)))
        member = EtcdClient(LOCAL_ETCD, lay.master_data / "pki" / "etcd", timeout=2.0)
        if not api.wait_for(member.healthy, s.timeout, interval=0.2):
            raise NotReady(f"etcd did not become healthy within {s.timeout:.0f} s; "
                           f"see its log (`{self.init.log_hint(ETCD_UNIT)}`).")

    def master(self) -> None:
        s, lay = self.setup, self.layout
        endpoints = (LOCAL_ETCD, *self.etcd_endpoints) if s.datastore == "etcd" else ()
        self.service(master_unit(s.pikube, lay, s.advertise_address, s.port, s.web_port, s.node_name, s.lb_pool,
                                 endpoints, self.api_address))
        up = api.wait_for(lambda: lay.master_kubeconfig.exists() and api.healthy(read_kubeconfig(
            lay.master_kubeconfig)), s.timeout, interval=0.2)
        if not up:
            raise NotReady(f"the master did not answer within {s.timeout:.0f} s; "
                           f"see its log (`{self.init.log_hint(MASTER_UNIT)}`).")

    def kubeconfigs(self) -> None:
        lay = self.layout
        admin = lay.master_kubeconfig.read_bytes()
        if self.api_address:  # kubectl goes through the floating address; enable-* keep the board's own
            admin = admin.replace(self.setup.server.encode(), _url(self.api_address, self.setup.port).encode())
        wrote = write_private(lay.admin_kubeconfig, admin)
        if wrote:
            self.made_files.append(lay.admin_kubeconfig)
        self.note(not wrote, f"admin kubeconfig {lay.admin_kubeconfig}")
        user = self.setup.user_kubeconfig
        if user is not None and not user.path.exists():
            write_private(user.path, admin, user)
            self.made_files.append(user.path)
            self.note(False, f"kubeconfig for kubectl {user.path}")

    def token(self) -> str:
        lay = self.layout
        try:
            saved = lay.join_token.read_text().strip()
        except FileNotFoundError:
            saved = ""
        if saved and self.hooks.token_exists(lay.master_data, parse(saved).token_id):
            self.note(True, "join token")
            return saved
        token = self.hooks.create_token(lay.master_data, None, "made by enable-master")
        write_private(lay.join_token, (token + "\n").encode())
        self.made_files.append(lay.join_token)
        self.note(False, "join token")
        return token

    def agent(self, token: str) -> None:
        s, lay = self.setup, self.layout
        if lay.node_kubeconfig.exists():
            self.note(True, f"node credentials for {s.node_name}")
        else:
            self.hooks.join(lay.agent_data, s.server, s.node_name, token)
            self.note(False, f"node credentials for {s.node_name}")
        flags = AgentFlags(server=s.server, node_name=s.node_name, docker_host=s.docker_host, backend=s.backend,
                           master_board=True, node_ip=s.advertise_address)
        self.service(agent_unit(s.pikube, lay, flags))
        wait_ready(self.init, AGENT_UNIT, lay.admin_kubeconfig, s.node_name, s.timeout)
        if s.taint_master:
            added = api.ensure_taint(read_kubeconfig(lay.admin_kubeconfig), s.node_name, MASTER_TAINT)
            self.note(not added, f"taint {MASTER_TAINT}:NoSchedule on {s.node_name}")

    def save(self) -> None:
        s, lay = self.setup, self.layout
        rec = NodeRecord(role=Role.MASTER, node_name=s.node_name, server=s.server, backend=s.backend,
                         init=self.init.kind, data_dir=str(lay.data_dir), docker_host=s.docker_host,
                         taint_master=s.taint_master, datastore=s.datastore,
                         etcd_initial_cluster=self.etcd_cluster, etcd_endpoints=self.etcd_endpoints,
                         api_address=self.api_address)
        if record.load(lay.record) != rec:
            record.save(lay.record, rec)
            self.made_files.append(lay.record)


def enable_master(setup: MasterSetup, init: Init, hooks: Hooks) -> Outcome:
    """Set this board up as the master (or report that it is one); raises BootstrapError."""
    started = time.monotonic()
    lay = setup.layout
    existing = record.load(lay.record)
    _check_record(existing, setup, init.kind)
    run = _Run(setup, init, hooks)
    units = (ETCD_UNIT, MASTER_UNIT, AGENT_UNIT) if setup.datastore == "etcd" else (MASTER_UNIT, AGENT_UNIT)
    if existing is None or not all(init.active(u) for u in units):
        check_preflight(hooks)
    if existing is None and setup.datastore == "etcd" and (lay.etcd_data / "member").exists():
        raise BootstrapError(f"{lay.etcd_data} holds an etcd member's data from an earlier cluster, which etcd "
                             "would start instead of this one: remove it (`sudo pikube reset` does) and run this "
                             "again.")
    made_dirs = missing_dirs(lay) if existing is None else []
    try:
        lay.config_dir.mkdir(parents=True, exist_ok=True)
        lay.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if existing is not None:  # what the first run set up, as it was
            run.etcd_cluster, run.etcd_endpoints = existing.etcd_initial_cluster, existing.etcd_endpoints
            run.api_address = existing.api_address or setup.api_address
        if setup.join and existing is None:
            run.join_cluster()
        elif setup.datastore == "etcd":
            run.etcd()
        run.master()
        run.kubeconfigs()
        token = run.token()
        run.agent(token)
        run.save()
    except BaseException:
        if existing is None:
            hooks.report("enable-master failed; removing what it made")
            if run.joined is not None:
                masterjoin.leave(run.joined, lay.master_data / "pki" / "etcd", hooks.report)
            undo(init, hooks, made_dirs, run.made_files)
        raise
    run.out.token = token
    run.out.join_command = join_command(setup.advertise_address, setup.port, token)
    run.out.seconds = time.monotonic() - started
    return run.out
