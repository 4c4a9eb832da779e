"""Frozen settings objects: the CLI parses flags once and hands these to the runtime.

No other module reads flags or the environment; a component gets everything it
needs through its settings object, so tests can build one directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

POOL_MAX = 65536  # addresses a LoadBalancer pool may hold (a /16)


def parse_address_pool(ranges: tuple[str, ...] | list[str]) -> list[IPv4Address]:
    """IPv4 addresses of `ranges` ("A-B" inclusive, or a CIDR whose network and broadcast addresses are left out
    when it is larger than a /31), in order, without duplicates."""
    found: dict[IPv4Address, None] = {}
    for text in ranges:
        try:
            if "-" in text:
                first, last = (IPv4Address(part.strip()) for part in text.split("-", 1))
                if int(last) < int(first):
                    raise ValueError(f"its end {last} comes before its start {first}")
                addresses = [IPv4Address(i) for i in range(int(first), min(int(last), int(first) + POOL_MAX) + 1)]
            else:
                net = IPv4Network(text.strip(), strict=False)
                addresses = list(net.hosts()) if net.num_addresses <= POOL_MAX else []
                if not addresses:
                    raise ValueError(f"{net} is larger than a /16 or empty")
        except ValueError as exc:
            raise ValueError(f'LoadBalancer pool "{text}" is not an IPv4 range like 192.168.1.240-192.168.1.250 '
                             f"or 192.168.1.240/28: {str(exc).rstrip('.')}.") from None
        found.update(dict.fromkeys(addresses))
    return list(found)


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
    # Service account tokens: their issuer (`iss`, also the audience the API accepts) and the longest a
    # TokenRequest may ask for (seconds; a longer request is cut to it, as kube-apiserver's flag does).
    service_account_issuer: str = "https://kubernetes.default.svc.cluster.local"
    service_account_max_token_seconds: int = 24 * 3600
    # The `kube-dns` Service's address in kube-system ("" = the tenth of service_cidr, 10.96.0.10): every
    # agent answers DNS on it (their --cluster-dns must agree).
    cluster_dns: str = ""
    # The Node name of the board this master runs on ("" = none): the master gives that Node the labels
    # node-role.kubernetes.io/master and control-plane (master/controllers/noderoles.py). It is the master's
    # word, not the board's: a node may not set node-role labels itself (NodeRestriction).
    board_node: str = ""
    node_port_range: tuple[int, int] = (30000, 32767)
    max_body_bytes: int = 3 * 1024 * 1024
    # Revisions of history kept for watches to resume from.
    history_revisions: int = 10000
    # The store: SQLite under `data_dir` (empty), or an etcd cluster (its client URLs; master/store/etcd.py),
    # with mutual TLS when the three files are given, keys under `datastore_prefix`.
    datastore_endpoints: tuple[str, ...] = ()
    datastore_cafile: str = ""
    datastore_certfile: str = ""
    datastore_keyfile: str = ""
    datastore_prefix: str = "/pikube"
    # How long the master waits for the etcd cluster before a request fails (no quorum).
    datastore_timeout_seconds: float = 10.0
    # How often the leading master defragments etcd members and recovers them from NOSPACE.
    datastore_maintenance_seconds: float = 600.0
    # Open connections to the API in total and from one client address (core/httpserver.py): beyond them new
    # connections are closed at once and those already open keep being served. Each holds a thread.
    max_connections: int = 1024
    max_connections_per_client: int = 256
    # Fairness (master/api/fairness.py): long-running requests (watches, streams) of all identities but the admin
    # together and of one identity; short requests one identity may have in flight. Beyond them: 429.
    max_long_running: int = 768
    max_long_running_per_identity: int = 64
    max_in_flight_per_identity: int = 32
    # Streams into pods (exec, attach, port-forward, relayed to the pod's agent: master/api/podstreams.py): at most
    # this many at once to one board (beyond: 429), each ended after this long without a byte either way (the
    # kubelet's --streaming-connection-idle-timeout, 4 h by default); an agent that does not accept a connection
    # within `agent_connect_timeout` seconds is reported down (503) rather than waited for.
    max_streams_per_node: int = 64
    stream_idle_timeout: float = 4 * 3600.0
    agent_connect_timeout: float = 5.0
    # Controllers switched off by name (e.g. {"scheduler"}).
    disabled_controllers: frozenset[str] = field(default_factory=frozenset)
    # Status page (web/) port; 0 disables it.
    web_port: int = 0
    web_bind: str = "0.0.0.0"
    web_token: str = ""
    # --- Scheduler and controllers (master/controllers, master/scheduler; docs/controllers.md) ---
    # A node whose Lease (or Ready heartbeat) has not moved for this long is declared lost:
    # Ready=Unknown and tainted node.kubernetes.io/unreachable:NoExecute.
    node_monitor_grace_seconds: float = 40.0
    # How often the node lifecycle controller looks at every node's heartbeat.
    node_monitor_period_seconds: float = 5.0
    # The HorizontalPodAutoscaler controller (master/controllers/hpa): how often every autoscaler is looked at,
    # how long a scale-down waits for higher recommendations (autoscalers without `behavior`, or whose
    # scaleDown sets no window), and the usage ratio's tolerance (Kubernetes' --horizontal-pod-autoscaler-*).
    hpa_sync_seconds: float = 15.0
    hpa_downscale_stabilization_seconds: float = 300.0
    hpa_tolerance: float = 0.1
    # The NoExecute toleration pods get by default for not-ready/unreachable nodes.
    default_toleration_seconds: int = 30
    # Zone disruption (master/controllers/disruption.py): a zone whose unhealthy nodes are more than 2 and at least
    # this fraction is PartialDisruption (all of them: FullDisruption, and nothing there is evicted); in a partially
    # disrupted zone clusters of at most `large_cluster_size_threshold` nodes evict nothing, larger ones taint one
    # node for eviction per 1 / `secondary_node_eviction_rate` seconds (Kubernetes' defaults).
    unhealthy_zone_threshold: float = 0.55
    large_cluster_size_threshold: int = 50
    secondary_node_eviction_rate: float = 0.01
    # Every controller re-queues all of its objects this often, backing up the watches.
    controller_resync_seconds: float = 300.0
    # Worker threads per controller.
    controller_workers: int = 2
    # First delay before a Job replaces a failed pod; doubles per failure, capped at 6 minutes.
    job_backoff_seconds: float = 10.0
    # Threads writing the scheduler's bindings (concurrent writes share the store's fsyncs;
    # 32 measured best: fewer commits of more rows each, see bench/RESULTS.md).
    scheduler_bind_threads: int = 32
    # Unschedulable pods are retried on cluster changes, and at least this often.
    scheduler_retry_seconds: float = 60.0
    # LoadBalancer address pool ("192.168.1.240-192.168.1.250" or "192.168.1.240/28" each; empty: the boards'
    # own addresses, ServiceLB's way). See master/controllers/servicelb.py and docs/network.md.
    lb_pool: tuple[str, ...] = ()
    # The masters' floating address (a free LAN address, outside the pool): the Service kube-system/pikube-api
    # gets it as its LoadBalancer address, forwarded to a live master; in every master's serving certificate.
    api_address: str = ""

    def lb_pool_addresses(self) -> list[IPv4Address]:
        """The pool's addresses in order; ValueError with a sentence for a range that is not one."""
        return parse_address_pool(self.lb_pool)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "state.db"


@dataclass(frozen=True)
class AgentSettings:
    """What `pikube agent` needs: where the master is, who this board is, and how to run pods."""

    server: str
    node_name: str
    data_dir: Path
    # Only needed until the node has credentials in `data_dir`.
    token: str = ""
    docker_host: str = "unix:///var/run/docker.sock"
    # This board also runs the master: announced as pikube.io/board-role=master (information only: the master
    # gives node-role.kubernetes.io/master to the board named by its own `board_node` setting).
    master_board: bool = False
    # Address reported as InternalIP (and where the log server is reached); "" = the one routing to the master.
    node_ip: str = ""
    node_labels: tuple[tuple[str, str], ...] = ()
    # HTTPS log endpoint the master proxies `kubectl logs` to.
    log_bind: str = "0.0.0.0"
    log_port: int = 10250
    # exec/attach/port-forward on the log server: a stream idle this long ends (the kubelet's
    # --streaming-connection-idle-timeout, 4 h); beyond max_streams concurrent streams a new one gets 429.
    streaming_idle_timeout_seconds: float = 4 * 3600.0
    max_streams: int = 32
    # Image holding each pod's namespaces; "" = pikube/pause of this version (made from busybox if missing).
    pause_image: str = ""
    # "none": pods keep the pause container's own isolated network namespace; "bridge": pikube0 + a veth
    # per pod with an address from node.spec.podCIDR (agent/network).
    pod_network: str = "none"
    # With pod_network "bridge", how pod traffic crosses between boards: "host-gw" (a route per board to its
    # podCIDR; boards on one switch) or "vxlan" (overlay pikube.1, VNI 1, UDP 8472). One choice per cluster.
    backend: str = "host-gw"
    # Cluster-wide ranges (as the master's): every node's podCIDR is inside cluster_cidr; ClusterIPs in
    # service_cidr. Traffic from pods leaving cluster_cidr is masqueraded.
    cluster_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/12"
    # Peer routes and the service proxy: a burst of API changes is gathered this long into one sync (one
    # nftables transaction); everything is re-applied at least this often, repairing what was changed by hand.
    network_debounce_seconds: float = 0.2
    network_resync_seconds: float = 30.0
    # Cluster DNS (with pod_network "bridge"): the agent answers on this address (the kube-dns Service's IP,
    # made a local address of the node) and on the bridge's; "" switches the responder off and pods get the
    # node's resolv.conf (the kubelet's behaviour without --cluster-dns). The zone is cluster_domain; other
    # names go to the nameservers of resolv_conf, which is also what dnsPolicy Default pods get.
    cluster_dns: str = "10.96.0.10"
    cluster_domain: str = "cluster.local"
    resolv_conf: Path = Path("/etc/resolv.conf")
    max_pods: int = 110
    # Where local-path volumes (the default StorageClass) live on this board: DATA/storage unless set, e.g. to
    # a USB disk's mount point; published on the Node for the master to make volumes in.
    local_path_dir: Path | None = None
    # Heartbeats: the Lease is renewed this often; node status is written on change or this often.
    lease_renew_seconds: float = 10.0
    lease_duration_seconds: int = 40
    status_report_seconds: float = 60.0
    # Resource usage (agent/metrics) is sampled and sent to the master this often; 0 turns it off.
    metrics_interval_seconds: float = 15.0
    # Every pod is synced at least this often; housekeeping (orphan containers, volumes) this often.
    resync_seconds: float = 10.0
    housekeeping_seconds: float = 30.0
    # Threads syncing pods (one pod is never synced by two at once).
    workers: int = 4
    # CrashLoopBackOff / ImagePullBackOff: first delay, cap, and how long a container must run to reset it.
    backoff_initial_seconds: float = 10.0
    backoff_max_seconds: float = 300.0
    backoff_reset_seconds: float = 600.0
    # Evict nothing, but report pressure below these.
    memory_pressure_bytes: int = 100 * 1024 * 1024
    disk_pressure_fraction: float = 0.10

    @property
    def storage_dir(self) -> Path:
        return self.local_path_dir or self.data_dir / "storage"
