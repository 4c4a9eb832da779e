"""The agent process: join, register the node, then run the heartbeat, the pod sync loop and the log server.

`run(settings)` is what `pikube agent` calls; `Agent` wires the parts so tests
can build one with fakes. Threads: pod watch, Docker events, N sync workers,
heartbeat (Lease + node status), runtime health, housekeeping, probes, events,
log server.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import credentials
from agent.client import NODES, SERVICES, ApiClient, ConnectionFailed
from agent.hostfacts import Facts, Host, RealHost, collect
from agent.informer import Informer
from agent.kubelet.backoff import Backoff
from agent.kubelet.dnsconfig import PodDnsFiles
from agent.kubelet.events import EventRecorder
from agent.kubelet.failures import Complaints, describe
from agent.kubelet.images import ImagePuller
from agent.kubelet.netns import pid_netns as pod_netns
from agent.kubelet.netns import socket_in as pod_socket_in
from agent.kubelet.node import NodeIdentity, NodeReporter
from agent.kubelet.objects import ObjectCache, references
from agent.kubelet.podnetwork import IsolatedNetwork, PodNetwork
from agent.kubelet.podsource import PodSource
from agent.kubelet.podsync import PodSyncer, SyncDeps
from agent.kubelet.probes import ProbeManager, Prober, Target
from agent.kubelet.runtimehealth import PING_TIMEOUT_SECONDS, RuntimeHealth
from agent.kubelet.satoken import TokenSource
from agent.kubelet.servicelinks import ServiceLinks
from agent.kubelet.volumes import VolumeManager
from agent.logserver import LogServer
from agent.metrics.sampler import Sampler
from agent.runtime import localimages
from agent.runtime.docker import DockerRuntime, RuntimeError_
from agent.streams.handler import StreamLimits
from core import errors, jointoken, wellknown
from core.settings import AgentSettings
from core.workqueue import WorkQueue

if TYPE_CHECKING:  # the network side loads pyroute2 (and DNS dnslib): imported only when the pod network is on
    from agent.dns.responder import ClusterDns
    from agent.netsync.controller import NetworkSync
    from agent.netsync.node import NodeNetwork
    from agent.netsync.podnet import BridgeNetwork

log = logging.getLogger(__name__)


MASTERS_REFRESH_SECONDS = 30.0


class AgentError(Exception):
    """The agent cannot start; the message says why in a sentence."""


def route_address(server: str) -> str:
    """The local address that routes to the master: what this board is to the rest of the cluster."""
    host, port = jointoken.split_server(server)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((socket.gethostbyname(host), port))
        return str(s.getsockname()[0])


class Agent:
    def __init__(self, settings: AgentSettings, host: Host | None = None) -> None:
        self.settings = settings
        self.host = host or RealHost()
        self.stop_event = threading.Event()
        self.queue = WorkQueue()
        self._threads: list[threading.Thread] = []
        self._pause_present: set[str] = set()
        self._node_changed = threading.Event()  # wakes the heartbeat to write the Node's status now
        self.complaints = Complaints(log, time.monotonic)
        self.netsync: NetworkSync | None = None
        self.dns: ClusterDns | None = None

    # -- start -----------------------------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            cfg = credentials.ensure_node_credentials(s.data_dir, s.server, s.node_name, s.token)
        except (credentials.CredentialsError, jointoken.JoinError) as exc:
            raise AgentError(str(exc)) from exc
        except errors.ApiError as exc:
            raise AgentError(f"the master refused to join this node: {exc.message}") from exc
        self.api = ApiClient(cfg, credentials.ca_path(s.data_dir))
        self.runtime = DockerRuntime(s.docker_host, s.node_name)
        problem = self.runtime.ping()
        if problem:
            raise AgentError(f"no Docker engine answers at {s.docker_host}: {problem}")
        runtime = self.runtime
        self.health = RuntimeHealth(lambda: runtime.ping(PING_TIMEOUT_SECONDS), self._runtime_changed)
        node_ip = s.node_ip or route_address(cfg.server)
        serving = credentials.ensure_serving_cert(s.data_dir, s.node_name, [node_ip])
        self.node_ip = node_ip
        facts = self.facts()
        node_net = self._prepare_network(node_ip)
        ident = NodeIdentity(node_ip=node_ip, runtime_version=self.runtime.version(),
                             serving_cert_sha256=serving.sha256,
                             extra_annotations=(*(node_net.annotations() if node_net is not None else ()),
                                                (wellknown.LOCAL_PATH_DIR_ANNOTATION, str(s.storage_dir))))
        self.reporter = NodeReporter(self.api, s, ident, self.facts, self.health.error, time.monotonic)
        try:
            node = self.reporter.register()
            self.reporter.renew_lease()
        except (errors.ApiError, ConnectionFailed) as exc:
            raise AgentError(f"cannot register node {s.node_name}: {exc}") from exc
        self.bridge: BridgeNetwork | None = self._bridge(node, node_net)
        self.network: PodNetwork = self.bridge if self.bridge is not None else IsolatedNetwork()
        self.objects = ObjectCache(self.api, time.monotonic)
        self.tokens = TokenSource(self.api, time.time)
        self.events = EventRecorder(self.api, s.node_name)
        backoff = Backoff(s.backoff_initial_seconds, s.backoff_max_seconds, time.time)
        lookup = self.objects.lookup(self.tokens.token)
        self.volumes = VolumeManager(s.data_dir, self.runtime, lookup, s.storage_dir)
        self.source = PodSource(self.api, s.node_name, self.queue.add)
        from concurrent.futures import ThreadPoolExecutor

        self.probe_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="probe")
        self.probes = ProbeManager(Prober(self.runtime, self.probe_pool, self.health.down), self.queue.add,
                                   self._probe_failed)
        pause = s.pause_image or _default_pause_image()
        # One services watch serves both the pods' service variables and the service proxy.
        self.services = Informer(self.api, SERVICES)
        links = ServiceLinks(self.api, informer=self.services)
        self.syncer = PodSyncer(SyncDeps(
            settings=s, api=self.api, runtime=self.runtime, volumes=self.volumes, network=self.network,
            probes=self.probes, images=ImagePuller(self.runtime, backoff, time.time), backoff=backoff,
            events=self.events, lookup=lookup, node_ip=node_ip, node_cpus=facts.cpus,
            node_memory=facts.memory_bytes, pause_image=pause,
            ensure_pause_image=lambda: self._ensure_pause(pause),
            forget_pause_image=self._pause_present.clear, clock=time.time, service_env=links.env,
            runtime_error=self.health.error, refresh_objects=self.objects.expire,
            dns_files=PodDnsFiles(self._cluster_dns(), s.cluster_domain, s.resolv_conf,
                                  warn_missing=s.pod_network == "bridge")))
        self.logs = LogServer(self.runtime, self.source.find, s.log_bind, s.log_port, str(serving.cert),
                              str(serving.key), str(credentials.ca_path(s.data_dir)),
                              lambda pid: pod_socket_in(pod_netns(pid)),
                              StreamLimits(s.max_streams, s.streaming_idle_timeout_seconds),
                              remove_local_path=self.volumes.remove_local_path)
        self.events.start()
        self.probes.start()
        self.logs.start()
        self._spawn("pod-watch", self.source.run, self.stop_event)
        self._spawn("services-watch", self.services.run, self.stop_event)
        self._spawn("docker-events", self._docker_events)
        if self.bridge is not None:
            from agent.netsync.controller import NetworkSync

            self.netsync = NetworkSync(self.api, s, self.bridge, self.source.pods, services=self.services)
            self.netsync.start(self._spawn, self.stop_event)
            self._start_dns(self.netsync, self.bridge)
        self._spawn("heartbeat", self._heartbeat)
        self._spawn("runtime-health", self.health.run, self.stop_event)
        self._spawn("housekeeping", self._housekeeping)
        if s.metrics_interval_seconds > 0:
            sampler = Sampler(self.runtime.containers, self._send_metrics, s.metrics_interval_seconds,
                              self._vitals, fallback=self.runtime.usage)
            self._spawn("metrics", sampler.run, self.stop_event)
        for i in range(max(1, s.workers)):
            self._spawn(f"sync-{i}", self._worker)
        log.info("agent %s running: node IP %s, logs on :%d", s.node_name, node_ip, s.log_port)

    def _cluster_dns(self) -> tuple[str, ...]:
        """The cluster DNS address pods get (none without the pod network: they could not reach it)."""
        s = self.settings
        return (s.cluster_dns,) if s.cluster_dns and s.pod_network == "bridge" else ()

    def _start_dns(self, netsync: NetworkSync, bridge: BridgeNetwork) -> None:
        """The responder, on the cluster DNS address and the bridge's, fed by the network sync's informers."""
        s = self.settings
        if not s.cluster_dns:
            return
        from ipaddress import IPv4Network

        from agent.dns.responder import ClusterDns

        def addresses() -> list[str]:
            return [s.cluster_dns, str(bridge.gateway.ip)]

        node = [IPv4Network(f"{self.node_ip}/32"), IPv4Network(f"{s.cluster_dns}/32")]
        dns = ClusterDns(s.cluster_domain, netsync.services, netsync.endpoints, s.resolv_conf, addresses(),
                         [IPv4Network(s.service_cidr), IPv4Network(s.cluster_cidr)],
                         clients=[IPv4Network(s.cluster_cidr), *node])
        dns.start(addresses(), self._spawn)
        self.dns = dns

        def follow_bridge() -> None:  # the bridge's address moves with a new podCIDR: listen on the new one
            while not self.stop_event.wait(s.network_resync_seconds):
                dns.bind(addresses())

        self._spawn("dns-addresses", follow_bridge)

    def facts(self) -> Facts:
        return collect(self.host, self.settings.data_dir)

    def _vitals(self) -> tuple[float | None, int | None]:
        facts = self.facts()
        return facts.soc_temperature_c, facts.throttled

    def _send_metrics(self, report: dict[str, Any]) -> None:
        # Every master keeps usage in memory only, and any of them may be asked (`kubectl top`, the HPA on
        # the leading one): each gets the report.
        self.api.to_every_master("PUT", f"/pikube/v1/nodes/{self.settings.node_name}/metrics", report)

    def _prepare_network(self, node_ip: str) -> NodeNetwork | None:
        """With the pod network: forwarding and the backend, before the Node (and its VTEP MAC) is registered."""
        if self.settings.pod_network != "bridge":
            return None
        from agent.netsync import node as netnode
        from agent.network import NetworkSetupError
        from agent.network.netns import NetnsCommandError

        try:
            return netnode.prepare(self.settings.backend, node_ip, self.settings.cluster_cidr,
                                   dns_address=self.settings.cluster_dns)
        except (NetworkSetupError, NetnsCommandError, LookupError, ValueError, OSError) as exc:
            raise AgentError(f"cannot set up the {self.settings.backend} pod network on {node_ip}: {exc}") from exc

    def _bridge(self, node: dict[str, Any], node_net: NodeNetwork | None) -> BridgeNetwork | None:
        """The pod network on this board's bridge (None without the pod network), once the master gave a podCIDR."""
        if node_net is None:
            return None
        from agent.netsync.podnet import BridgeNetwork

        deadline = time.monotonic() + 60
        while not (node.get("spec") or {}).get("podCIDR"):
            if time.monotonic() > deadline:
                raise AgentError(f"node {self.settings.node_name} got no spec.podCIDR from the master within 60 s")
            time.sleep(1)
            node = self.api.get(NODES, self.settings.node_name)
        return BridgeNetwork(self.settings.data_dir, node["spec"]["podCIDR"], node_net, self._network_changed)

    def _network_changed(self) -> None:
        """A pod got or lost its address: its host ports (if any) follow."""
        if self.netsync is not None:
            self.netsync.kick()

    def _ensure_pause(self, image: str) -> None:
        if image in self._pause_present:
            return
        if self.runtime.image_id(image):
            self._pause_present.add(image)  # a failed sandbox start clears it (see podsync)
            return
        if image != localimages.PAUSE_IMAGE:
            return  # someone else's image: the pull policy decides
        localimages.ensure(self.runtime.api)  # made here from busybox-static: a board needs no registry

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    # -- loops -----------------------------------------------------------------------------------

    def _worker(self) -> None:
        while True:
            uid = self.queue.get()
            if uid is None:
                return
            delay: float | None = None
            try:  # sync() reports its own failures; this is the last resort
                delay = self.syncer.sync(uid, self.source.get(uid)) if self.source.synced.is_set() else 0.5
            except Exception as exc:
                self.complaints.failed(f"sync/{uid}", f"pod {uid}", f"sync failed: {describe(exc)}", exc,
                                       unexpected=True)
                delay = 10.0
            finally:
                self.queue.done(uid)
            if delay is not None and not self.stop_event.is_set():
                self.queue.add_after(uid, delay)

    def _docker_events(self) -> None:
        while not self.stop_event.is_set():
            try:
                stream = self.runtime.events()
                self.complaints.recovered("docker-events", "docker events", "stream open again")
                for event in stream:
                    uid = ((event.get("Actor") or {}).get("Attributes") or {}).get("io.kubernetes.pod.uid")
                    if uid:
                        self.queue.add(uid)
                    if self.stop_event.is_set():
                        return
                problem = "the stream ended"
            except Exception as exc:
                problem = f"the stream failed: {_runtime_reason(exc)}"
            self.complaints.failed("docker-events", "docker events", f"{problem}; reopening it every second")
            self.stop_event.wait(1.0)

    def _runtime_changed(self, error: str | None) -> None:
        """The runtime went down or came back: the Node says so now, and every pod's status follows."""
        if error is not None:
            log.warning("container runtime is down: %s; the node and its pods are reported not ready", error)
        else:
            log.info("container runtime is up again")
        self._node_changed.set()
        if error is not None:  # at once, here: the sync workers may be stuck in calls to a hung engine
            for pod in self.source.pods():
                uid = str((pod.get("metadata") or {}).get("uid") or "")
                try:
                    self.syncer.report_not_ready(uid, pod)
                except (errors.ApiError, ConnectionFailed) as exc:  # the syncs retry it
                    self.complaints.failed(f"not-ready/{uid}", f"pod {uid}", f"not reported not ready: {exc}")
                else:
                    self.complaints.recovered(f"not-ready/{uid}", f"pod {uid}", "reported not ready")
        for uid in self.source.uids() | self.syncer.known():
            self.queue.add(uid)

    def _heartbeat(self) -> None:
        """Renew the Lease every `lease_renew_seconds`; write the Node's status then, or at once when woken."""
        s = self.settings
        next_lease = time.monotonic() + s.lease_renew_seconds
        next_masters = 0.0
        while not self.stop_event.is_set():
            self._node_changed.wait(max(0.0, next_lease - time.monotonic()))
            if self.stop_event.is_set():
                return
            self._node_changed.clear()
            try:
                if time.monotonic() >= next_lease:
                    next_lease = time.monotonic() + s.lease_renew_seconds
                    self.reporter.renew_lease()
                    if time.monotonic() >= next_masters:  # the masters to fail over to
                        next_masters = time.monotonic() + MASTERS_REFRESH_SECONDS
                        self.api.set_servers(self.api.master_urls())
                self.reporter.sync()
            except errors.NotFound:
                log.warning("node %s was deleted; registering it again", s.node_name)
                try:
                    self.reporter.register()
                except (errors.ApiError, ConnectionFailed) as exc:
                    log.warning("registering again failed: %s", exc)
            except (errors.ApiError, ConnectionFailed) as exc:
                log.warning("heartbeat failed: %s", exc)

    def _housekeeping(self) -> None:
        """Pods gone while nobody watched: containers, volumes and addresses of unknown pods are removed."""
        self.source.synced.wait()
        while True:
            if not self.health.down():  # nothing can be looked at while the runtime is down
                try:
                    self.housekeep()
                except Exception as exc:
                    self.complaints.failed("housekeeping", "housekeeping", f"failed: {describe(exc)}", exc,
                                           unexpected=not isinstance(exc, RuntimeError_))
                else:
                    self.complaints.recovered("housekeeping", "housekeeping", "works again")
            if self.stop_event.wait(self.settings.housekeeping_seconds):
                return

    def housekeep(self) -> None:
        self.objects.retain(set().union(*(references(pod) for pod in self.source.pods())))
        self.tokens.forget({str(pod["metadata"].get("uid")) for pod in self.source.pods()})
        live = self.source.uids()
        seen = {c.pod_uid for c in self.runtime.containers() if c.pod_uid}
        seen |= self.volumes.known_uids() | self.syncer.known() | self.probes.pods()
        for uid in seen - live:
            self.queue.add(uid)
        for uid in live:
            self.queue.add(uid)
        self.network.prune(live)

    def _probe_failed(self, target: Target, message: str) -> None:
        pod = self.source.get(target.pod_uid)
        if pod is not None:
            self.events.pod(pod, "Warning", "Unhealthy", f"{target.kind.value} probe failed: {message}",
                            target.container)

    # -- stop ------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the agent's threads; pods keep running (an agent restart adopts them)."""
        self.stop_event.set()
        self._node_changed.set()
        self.queue.shutdown()
        if self.netsync is not None:
            self.netsync.stop()
        if self.dns is not None:
            self.dns.stop()
        self.probes.stop()
        self.events.stop()
        self.logs.stop()


def _runtime_reason(exc: Exception) -> str:
    return exc.detail if isinstance(exc, RuntimeError_) else describe(exc)


def _default_pause_image() -> str:
    return localimages.PAUSE_IMAGE


def run(settings: AgentSettings) -> None:
    """Run until SIGTERM or SIGINT."""
    agent = Agent(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agent.start()
    stop.wait()
    agent.stop()


def data_dir_default() -> Path:
    return Path("/var/lib/pikube/agent")
