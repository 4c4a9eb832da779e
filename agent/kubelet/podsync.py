"""`sync(uid, pod)`: make one pod's containers match its spec, then report its status.

Level-triggered, as the kubelet's SyncPod: it ignores what woke it, looks at
the pod (or its absence) and at Docker's containers with the pod's uid, and
acts on the difference: start the sandbox, run init containers one at a time,
start or restart app containers as the restartPolicy and back-off allow, kill
what failed its liveness probe, stop everything of a pod being deleted and then
delete it for good (`gracePeriodSeconds=0`), and remove every trace of a pod
that is gone. It returns when it wants to look again.

A step that fails (a volume that cannot be set up, a container Docker will not
create or start) leaves the reason in the pod's status and an event, as the
kubelet words them (`FailedMount`, `CreateContainerConfigError`,
`CreateContainerError`, `RunContainerError`), and is tried again with a back-off
(1 s doubling to 10 s, the kubelet's pod worker back-off) however often the pod
is woken meanwhile. The log gets one line per change of cause (`failures.py`).
While the container runtime is down nothing is tried: the pod's status says it
is not ready, and every pod is synced again when the runtime answers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from agent.client import PODS, ApiClient, ConnectionFailed
from agent.kubelet import containers as specs
from agent.kubelet.backoff import Backoff, format_duration
from agent.kubelet.dnsconfig import PodDnsFiles
from agent.kubelet.envs import ConfigError, Lookup, build
from agent.kubelet.events import NORMAL, WARNING, EventRecorder
from agent.kubelet.failures import Complaints, describe
from agent.kubelet.images import ImagePuller, ImageUnavailable
from agent.kubelet.podnetwork import PodNetwork
from agent.kubelet.probes import ProbeKind, ProbeManager, Target
from agent.kubelet.servicelinks import ServiceLinks
from agent.kubelet.status import TERMINAL, Observed, Waiting, instances, not_ready, pod_status
from agent.kubelet.volumes import PodVolumes, VolumeError, VolumeManager
from agent.runtime import labels as L
from agent.runtime.docker import Container, DockerRuntime, RuntimeError_
from core import errors, wellknown
from core.kube.timefmt import parse, rfc3339
from core.settings import AgentSettings

log = logging.getLogger(__name__)
Obj = dict[str, Any]
VOLUME_REFRESH_SECONDS = 60.0
SANDBOX_STOP_SECONDS = 2
# A failed step (volumes, sandbox, creating or configuring a container, a whole sync) is retried after
# 1 s, 2 s, 4 s ... at most 10 s apart (the kubelet's pod workers wait 10 s after a failed sync).
RETRY_INITIAL_SECONDS = 1.0
RETRY_MAX_SECONDS = 10.0
SANDBOX_STEP = "sandbox"


@dataclass(frozen=True)
class Failure:
    """A step of a pod that failed: Kubernetes' reason, its message, and when (wall clock)."""

    reason: str
    message: str
    at: float


@dataclass
class PodMemory:
    """What the agent remembers about a pod between syncs (rebuilt from Docker after a restart)."""

    waiting: dict[str, Waiting] = field(default_factory=dict)
    pod_ip: str = ""
    volumes: PodVolumes | None = None
    volumes_at: float = 0.0
    reported: Obj | None = None
    retry: float | None = None
    failures: dict[str, Failure] = field(default_factory=dict)  # step -> its last failure, while it keeps failing
    force_report: bool = False  # write the next status whatever the API seems to hold (after a not-ready patch)
    down_reported: bool = False  # the pod was reported not ready for the runtime being down
    seen: bool = False  # synced once with its spec (its config maps and secrets were read afresh then)

    def want_retry(self, delay: float) -> None:
        self.retry = delay if self.retry is None else min(self.retry, delay)


@dataclass
class SyncDeps:
    settings: AgentSettings
    api: ApiClient
    runtime: DockerRuntime
    volumes: VolumeManager
    network: PodNetwork
    probes: ProbeManager
    images: ImagePuller
    backoff: Backoff
    events: EventRecorder
    lookup: Lookup
    node_ip: str
    node_cpus: int
    node_memory: int
    pause_image: str
    ensure_pause_image: Callable[[], None]
    forget_pause_image: Callable[[], None]
    clock: Callable[[], float]  # wall clock (container times are wall clock)
    # A pod's service variables (may raise ConfigError); None: the syncer watches services itself through `api`.
    service_env: Callable[[Obj], dict[str, str]] | None = None
    # None while the container runtime answers, else why it is down (agent/kubelet/runtimehealth.py).
    runtime_error: Callable[[], str | None] = lambda: None
    # The next lookups of the config maps and secrets a pod references ask the master afresh.
    refresh_objects: Callable[[Obj], None] = lambda pod: None
    # Writes each pod's resolv.conf and hosts (agent/kubelet/dnsconfig.py); None: Docker's own files.
    dns_files: PodDnsFiles | None = None


class PodSyncer:
    def __init__(self, deps: SyncDeps) -> None:
        self.d = deps
        self._memory: dict[str, PodMemory] = {}
        self._lock = threading.Lock()
        self._links: ServiceLinks | None = None
        self._service_env: Callable[[Obj], dict[str, str]]
        self.complaints = Complaints(log, time.monotonic)
        self._retry = Backoff(RETRY_INITIAL_SECONDS, RETRY_MAX_SECONDS, deps.clock)
        if deps.service_env is not None:
            self._service_env = deps.service_env
        else:
            self._links = ServiceLinks(deps.api)
            self._service_env = self._links.env

    def memory(self, uid: str, pod: Obj | None = None) -> PodMemory:
        """What is remembered of pod `uid`; a pod new to the agent (given as `pod`) reads its objects afresh."""
        with self._lock:
            mem = self._memory.get(uid)
            if mem is None:
                mem = self._memory[uid] = PodMemory()
            elif pod is None or mem.seen:
                return mem
            mem.seen = pod is not None
        if pod is not None:
            self.d.refresh_objects(pod)
        return mem

    def known(self) -> set[str]:
        with self._lock:
            return set(self._memory)

    # -- entry -----------------------------------------------------------------------------------

    def sync(self, uid: str, pod: Obj | None) -> float | None:
        """Converge pod `uid`; return seconds until it wants another look (None: only on change).

        Never raises: a failure is logged once per cause and retried with back-off.
        """
        if self._links is not None:
            self._links.start()  # at the first sync: services are listed while the first sandbox starts
        try:
            delay = self._sync(uid, pod)
        except Exception as exc:
            return self._sync_failed(uid, pod, exc)
        key = f"{uid}/sync"
        if self.complaints.recovered(key, _subject(uid, pod), "synced again"):
            self._retry.reset(key)
        return delay

    def _sync_failed(self, uid: str, pod: Obj | None, exc: Exception) -> float:
        key = f"{uid}/sync"
        expected = isinstance(exc, (RuntimeError_, ConnectionFailed, errors.ApiError, requests.RequestException))
        if not (expected and self.d.runtime_error() is not None):  # a runtime that is down was reported once
            self.complaints.failed(key, _subject(uid, pod), f"sync failed: {describe(exc)}", exc,
                                   unexpected=not expected)
        self._retry.next(key)
        return self._retry.delay(key)

    def _sync(self, uid: str, pod: Obj | None) -> float | None:
        if self.d.runtime_error() is not None:
            if pod is not None:
                self.report_not_ready(uid, pod)
            # Nothing else until the runtime is back (the agent then syncs every pod it knows, removals too).
            return self.d.settings.resync_seconds
        found = self.d.runtime.containers(uid)
        if pod is None:
            self._remove(uid, found)
            return None
        mem = self.memory(uid, pod)
        mem.retry = None
        mem.down_reported = False
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            self._terminate(pod, found, mem)
            return None
        terminal = (pod.get("status") or {}).get("phase") in TERMINAL
        if not terminal:
            self._converge(pod, found, mem)
            found = self.d.runtime.containers(uid)
        status = self._report(pod, found, mem)
        if status is not None and status["phase"] in TERMINAL:
            self._stop_sandbox(pod, found)
            return None
        return min(mem.retry if mem.retry is not None else self.d.settings.resync_seconds,
                   self.d.settings.resync_seconds)

    def report_not_ready(self, uid: str, pod: Obj) -> None:
        """The runtime does not answer: have the pod's status say it is not ready (once per outage).

        Called by the agent as soon as the runtime is found down, outside the sync
        workers (which may be stuck in a call to a hung engine), and by every sync
        while it stays down.
        """
        mem = self.memory(uid)
        mem.force_report = True  # the API's copy may lag behind what is written here: rewrite it when back
        if mem.down_reported:
            return
        patch = not_ready(pod, rfc3339())
        if patch is not None:
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                self.d.api.patch(PODS, pod["metadata"]["name"], {"status": patch},
                                 namespace=pod["metadata"].get("namespace", "default"), sub="status")
        mem.down_reported = True

    # -- failures ----------------------------------------------------------------------------------

    def _blocked(self, pod: Obj, mem: PodMemory, step: str) -> Failure | None:
        """The last failure of `step` while its back-off lasts (the step must not be tried yet), else None."""
        failure = mem.failures.get(step)
        if failure is None:
            return None
        left = self._retry.in_backoff_since(f"{pod['metadata']['uid']}/{step}", failure.at)
        if left <= 0:
            return None
        mem.want_retry(left + 0.05)
        return failure

    def _failed(self, pod: Obj, mem: PodMemory, step: str, reason: str, message: str, container: str = "",
                exc: BaseException | None = None, unexpected: bool = False) -> None:
        """`step` failed: remember why, back off, and log it if the cause changed."""
        key = f"{pod['metadata']['uid']}/{step}"
        self._retry.next(key)
        mem.failures[step] = Failure(reason, message, self.d.clock())
        if reason in ("FailedMount", "CreateContainerConfigError"):
            self.d.refresh_objects(pod)  # the retry must not find the same copy that failed
        mem.want_retry(self._retry.delay(key))
        self.complaints.failed(key, _subject(pod["metadata"]["uid"], pod, container), f"{reason}: {message}",
                               exc, unexpected)

    def _succeeded(self, pod: Obj, mem: PodMemory, step: str, what: str, container: str = "") -> None:
        key = f"{pod['metadata']['uid']}/{step}"
        if mem.failures.pop(step, None) is not None:
            self._retry.reset(key)
        self.complaints.recovered(key, _subject(pod["metadata"]["uid"], pod, container), what)

    # -- running a pod ---------------------------------------------------------------------------

    def _converge(self, pod: Obj, found: list[Container], mem: PodMemory) -> None:
        mem.waiting = {}
        sandbox = self._sandbox(pod, found, mem)
        if sandbox is None:
            return
        if not self._init_containers(pod, found, sandbox, mem):
            return
        for c in (pod.get("spec") or {}).get("containers") or []:
            self._app_container(pod, c, found, sandbox, mem)

    def _event(self, pod: Obj, container: str = "") -> Callable[[str, str, str], None]:
        return lambda kind, reason, message: self.d.events.pod(pod, kind, reason, message, container)

    def _sandbox(self, pod: Obj, found: list[Container], mem: PodMemory) -> Container | None:
        uid = pod["metadata"]["uid"]
        host_network = bool((pod.get("spec") or {}).get("hostNetwork"))
        boxes = instances(found, L.SANDBOX_NAME, L.Kind.SANDBOX)
        running = next((b for b in boxes if b.running), None)
        if running is not None:
            self._refresh_volumes(pod, running, mem)
            if not mem.pod_ip:
                mem.pod_ip = self.d.node_ip if host_network else self.d.network.address(uid)
            return running
        if not self._should_run(pod, found):
            return None
        for c in found:  # the pod's namespaces are gone: nothing of the old sandbox may keep running
            if c.running:
                self._stop(pod, c, self._grace(pod), "the pod sandbox changed")
        if self._blocked(pod, mem, SANDBOX_STEP) is not None:
            return None  # the pod waits in ContainerCreating; its event says why
        try:
            mem.volumes = self.d.volumes.prepare(pod)
            mem.volumes_at = self.d.clock()
        except ConfigError as exc:  # prepare() names the volume (VolumeError)
            message = exc.event_message if isinstance(exc, VolumeError) else f"MountVolume.SetUp failed: {exc}"
            self.d.events.pod(pod, WARNING, "FailedMount", message)
            self._failed(pod, mem, SANDBOX_STEP, "FailedMount", message)
            return None
        attempt = (boxes[0].restart_count + 1) if boxes else 0
        cid: str | None = None
        try:
            self.d.ensure_pause_image()
            args = specs.sandbox_args(pod, self.d.settings.node_name, attempt, self.d.pause_image,
                                      mem.volumes.sandbox_binds())
            cid = self.d.runtime.create(args.name, args.image, args.labels, args.host_config, **args.config)
            self.d.runtime.start(cid)
            box = self.d.runtime.inspect(cid)
            if box is None or not box.running:
                raise RuntimeError_("the pause container exited at once")
            # A pod in the host's network has the host's address, and no interface of its own to set up.
            mem.pod_ip = self.d.node_ip if host_network else self.d.network.setup(uid, box.pid)
            self.d.volumes.populate(box.id, mem.volumes, force=True)
            if self.d.dns_files is not None:
                for warning in self.d.dns_files.write(pod, self.d.volumes.pod_dir(uid), mem.pod_ip):
                    self.d.events.pod(pod, WARNING, warning.reason, warning.message)
        except Exception as exc:
            self.d.forget_pause_image()
            if cid is not None:  # a sandbox that never ran is not kept: each retry would leave another behind
                with contextlib.suppress(Exception):
                    self.d.runtime.remove(cid)
            message = f"Failed to create pod sandbox: {_reason(exc)}"
            self.d.events.pod(pod, WARNING, "FailedCreatePodSandBox", message)
            self._failed(pod, mem, SANDBOX_STEP, "FailedCreatePodSandBox", message, exc=exc,
                         unexpected=not isinstance(exc, _EXTERNAL))
            return None
        self._succeeded(pod, mem, SANDBOX_STEP, "pod sandbox started")
        for old in boxes:
            self._remove_container(old)
        found.append(box)
        return box

    def _refresh_volumes(self, pod: Obj, sandbox: Container, mem: PodMemory) -> None:
        """Follow changes of config maps and secrets into a running pod's volumes (at most once a minute)."""
        if mem.volumes is not None and self.d.clock() - mem.volumes_at < VOLUME_REFRESH_SECONDS:
            return
        key, subject = f"{pod['metadata']['uid']}/volumes", _subject(pod["metadata"]["uid"], pod)
        try:
            mem.volumes = self.d.volumes.prepare(pod)
            self.d.volumes.populate(sandbox.id, mem.volumes)
        except _VOLUME_FAILURES as exc:
            message = exc.event_message if isinstance(exc, VolumeError) else f"MountVolume.SetUp failed: {_reason(exc)}"
            self.d.events.pod(pod, WARNING, "FailedMount", message)
            self.complaints.failed(key, subject, f"FailedMount: {message}")
        else:
            self.complaints.recovered(key, subject, "volumes updated again")
        mem.volumes_at = self.d.clock()

    def _should_run(self, pod: Obj, found: list[Container]) -> bool:
        """False when every app container has finished for good under the restart policy."""
        spec = pod.get("spec") or {}
        policy = spec.get("restartPolicy", "Always")
        if policy == "Always":
            return True
        for c in spec.get("containers") or []:
            insts = instances(found, str(c["name"]), L.Kind.APP)
            if not insts or not insts[0].finished:
                return True
            if policy == "OnFailure" and _failed(insts[0]):
                return True
        return False

    def _init_containers(self, pod: Obj, found: list[Container], sandbox: Container, mem: PodMemory) -> bool:
        """Run init containers one at a time; True once all have succeeded in this sandbox."""
        policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
        for ic in (pod.get("spec") or {}).get("initContainers") or []:
            name = str(ic["name"])
            insts = instances(found, name, L.Kind.INIT)
            mine = [c for c in insts if c.labels.get(wellknown.SANDBOX_LABEL) == sandbox.id]
            current = mine[0] if mine else None
            if current is None:
                self._start(pod, ic, L.Kind.INIT, (insts[0].restart_count + 1) if insts else 0, sandbox, mem)
                return False
            if current.running:
                return False
            if not _failed(current):
                continue
            if policy != "Never":
                self._restart_after_backoff(pod, ic, L.Kind.INIT, current, sandbox, mem)
            return False
        return True

    def _app_container(self, pod: Obj, c: Obj, found: list[Container], sandbox: Container, mem: PodMemory) -> None:
        name, uid = str(c["name"]), pod["metadata"]["uid"]
        insts = instances(found, name, L.Kind.APP)
        current = insts[0] if insts else None
        if current is None:
            self._start(pod, c, L.Kind.APP, 0, sandbox, mem)
            return
        if current.running:
            reason = self._kill_reason(pod, c, current)
            if reason is None:
                self._ensure_probes(pod, c, current, sandbox, mem)
                return
            self.d.events.pod(pod, NORMAL, "Killing", reason, name)
            self._stop(pod, current, self._grace(pod, c), reason)
            self.d.probes.forget(uid, name)
            current = self.d.runtime.inspect(current.id) or current
            if not current.finished:
                return
        if not current.finished:
            return  # created, not started: a start failure shows as finished with an error
        policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
        if policy == "Never" or (policy == "OnFailure" and not _failed(current)):
            return
        self._restart_after_backoff(pod, c, L.Kind.APP, current, sandbox, mem)

    def _kill_reason(self, pod: Obj, c: Obj, current: Container) -> str | None:
        uid, name = pod["metadata"]["uid"], str(c["name"])
        if current.labels.get(L.SPEC_HASH) not in (None, specs.spec_hash(c)):
            return f"Container {name} definition changed, will be restarted"
        if c.get("startupProbe") and self.d.probes.result(uid, name, current.id, ProbeKind.STARTUP) is False:
            return f"Container {name} failed startup probe, will be restarted"
        if c.get("livenessProbe") and self.d.probes.result(uid, name, current.id, ProbeKind.LIVENESS) is False:
            return f"Container {name} failed liveness probe, will be restarted"
        return None

    def _restart_after_backoff(self, pod: Obj, c: Obj, kind: L.Kind, dead: Container, sandbox: Container,
                               mem: PodMemory) -> None:
        uid, name = pod["metadata"]["uid"], str(c["name"])
        blocked = self._blocked(pod, mem, f"container/{name}")
        if blocked is not None:  # it could not even be started a moment ago: say so until its retry
            mem.waiting[name] = Waiting(blocked.reason, blocked.message)
            return
        key = f"{uid}/{name}"
        if dead.ran_seconds >= self.d.settings.backoff_reset_seconds:
            self.d.backoff.reset(key)
        finished = parse(dead.finished_at)
        event_time = finished.timestamp() if finished else self.d.clock()
        left = self.d.backoff.in_backoff_since(key, event_time)
        if left > 0:
            delay = format_duration(self.d.backoff.delay(key))
            meta = pod["metadata"]
            mem.waiting[name] = Waiting("CrashLoopBackOff", f"back-off {delay} restarting failed container={name} "
                                                            f"pod={meta['name']}_{meta.get('namespace')}({uid})")
            self.d.events.pod(pod, WARNING, "BackOff", f"Back-off restarting failed container {name} in pod "
                                                       f"{meta['name']}_{meta.get('namespace')}({uid})", name)
            mem.want_retry(left + 0.05)
            return
        self.d.backoff.next(key)
        self._start(pod, c, kind, dead.restart_count + 1, sandbox, mem)

    def _start(self, pod: Obj, c: Obj, kind: L.Kind, attempt: int, sandbox: Container, mem: PodMemory) -> bool:
        name, uid = str(c["name"]), pod["metadata"]["uid"]
        step = f"container/{name}"
        event = self._event(pod, name)
        blocked = self._blocked(pod, mem, step)
        if blocked is not None:  # it failed a moment ago: show why until the back-off ends
            mem.waiting[name] = Waiting(blocked.reason, blocked.message)
            return False
        try:
            self.d.images.ensure(uid, str(c.get("image", "")), str(c.get("imagePullPolicy") or "IfNotPresent"),
                                 event)
        except ImageUnavailable as exc:
            mem.waiting[name] = exc.waiting
            mem.want_retry(max(exc.retry_after, 1.0))
            if exc.waiting.reason != "ImagePullBackOff":  # the back-off between pulls is no news
                self.complaints.failed(f"{uid}/image/{name}", _subject(uid, pod, name),
                                       f"{exc.waiting.reason}: {exc.waiting.message}")
            return False
        self.complaints.recovered(f"{uid}/image/{name}", _subject(uid, pod, name), "image ready")
        try:  # the kubelet's generateContainerConfig: what fails here is CreateContainerConfigError
            env = build(pod, c, self.d.lookup, self.d.node_ip, mem.pod_ip, self.d.node_cpus, self.d.node_memory,
                        self._service_env(pod))
            binds = self.d.volumes.binds(c, mem.volumes or PodVolumes())
            if self.d.dns_files is not None:
                binds += self.d.dns_files.binds(self.d.volumes.pod_dir(uid))
            args = specs.create_args(pod, c, kind, attempt, self.d.settings.node_name, sandbox.id, env, binds)
        except (ConfigError, OSError, ValueError) as exc:
            message = str(exc)
            mem.waiting[name] = Waiting("CreateContainerConfigError", message)
            event(WARNING, "Failed", f"Error: {message}")
            self._failed(pod, mem, step, "CreateContainerConfigError", message, container=name)
            return False
        try:
            cid = self.d.runtime.create(args.name, args.image, args.labels, args.host_config, **args.config)
        except RuntimeError_ as exc:
            if "Conflict" in str(exc) or "already in use" in str(exc):
                self._remove_by_name(args.name)
            mem.waiting[name] = Waiting("CreateContainerError", exc.detail)  # Docker's own words
            event(WARNING, "Failed", f"Error: {exc.detail}")
            self._failed(pod, mem, step, "CreateContainerError", exc.detail, container=name)
            return False
        event(NORMAL, "Created", f"Created container {name}")
        try:
            self.d.runtime.start(cid)
        except RuntimeError_ as exc:
            # The container stays, exited (ContainerCannotRun): after this step's retry back-off, the restart
            # policy and the CrashLoopBackOff back-off decide when it is tried again.
            message = f'failed to start container "{name}": {exc.detail}'
            mem.waiting[name] = Waiting("RunContainerError", message)
            event(WARNING, "Failed", f"Error: {message}")
            self._failed(pod, mem, step, "RunContainerError", message, container=name)
            return False
        event(NORMAL, "Started", f"Started container {name}")
        self._succeeded(pod, mem, step, "started", container=name)
        if attempt > 1:
            self._prune_dead(uid, name, kind)
        return True

    def _remove_by_name(self, docker_name: str) -> None:
        for c in self.d.runtime.containers():
            if c.name == docker_name:
                self._remove_container(c)

    def _prune_dead(self, uid: str, name: str, kind: L.Kind) -> None:
        """Keep the newest instance and the one before it (for `--previous` and lastState)."""
        for old in instances(self.d.runtime.containers(uid), name, kind)[2:]:
            self._remove_container(old)

    def _ensure_probes(self, pod: Obj, c: Obj, current: Container, sandbox: Container, mem: PodMemory) -> None:
        started = parse(current.started_at)
        ports = tuple((str(p.get("name")), int(p["containerPort"])) for p in c.get("ports") or []
                      if p.get("name") and "containerPort" in p)
        for kind, field_name in ((ProbeKind.STARTUP, "startupProbe"), (ProbeKind.LIVENESS, "livenessProbe"),
                                 (ProbeKind.READINESS, "readinessProbe")):
            probe = c.get(field_name)
            if probe:
                self.d.probes.ensure(Target(
                    pod_uid=pod["metadata"]["uid"], container=str(c["name"]), container_id=current.id, kind=kind,
                    probe=probe, ports=ports, netns=f"/proc/{sandbox.pid}/ns/net" if sandbox.pid else None,
                    pod_ip=mem.pod_ip, started_at=started.timestamp() if started else self.d.clock()))

    # -- status ----------------------------------------------------------------------------------

    def observed(self, pod: Obj, found: list[Container], mem: PodMemory) -> Observed:
        uid = pod["metadata"]["uid"]
        by_name = {str(c.get("name")): c for c in (pod.get("spec") or {}).get("containers") or []}
        sandbox = next((b for b in instances(found, L.SANDBOX_NAME, L.Kind.SANDBOX) if b.running), None)

        def ready(c: Container) -> bool:
            spec = by_name.get(c.container_name) or {}
            return not spec.get("readinessProbe") or \
                self.d.probes.result(uid, c.container_name, c.id, ProbeKind.READINESS) is True

        def started(c: Container) -> bool:
            spec = by_name.get(c.container_name) or {}
            return not spec.get("startupProbe") or \
                self.d.probes.result(uid, c.container_name, c.id, ProbeKind.STARTUP) is True

        return Observed(containers=found, waiting=dict(mem.waiting), ready=ready, started=started,
                        host_ip=self.d.node_ip, pod_ip=mem.pod_ip, sandbox_id=sandbox.id if sandbox else "")

    def _report(self, pod: Obj, found: list[Container], mem: PodMemory) -> Obj | None:
        status = pod_status(pod, self.observed(pod, found, mem), rfc3339())
        current = pod.get("status") or {}
        if not mem.force_report and (all(current.get(k) == v for k, v in status.items()) or mem.reported == status):
            return status
        if self.d.runtime_error() is not None:
            return status  # seen before the runtime went down: no longer true, and reported not ready instead
        key, subject = f"{pod['metadata']['uid']}/status", _subject(pod["metadata"]["uid"], pod)
        try:
            self.d.api.patch(PODS, pod["metadata"]["name"], {"status": status},
                             namespace=pod["metadata"].get("namespace", "default"), sub="status")
            mem.reported, mem.force_report = status, False
        except (errors.NotFound, errors.Conflict):
            pass
        except (errors.ApiError, ConnectionFailed) as exc:
            self.complaints.failed(key, subject, f"status not written: {exc}")
            mem.want_retry(2.0)
        else:
            self.complaints.recovered(key, subject, "status written again")
        return status

    # -- stopping --------------------------------------------------------------------------------

    def _grace(self, pod: Obj, c: Obj | None = None) -> int:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        if meta.get("deletionGracePeriodSeconds") is not None:
            return int(meta["deletionGracePeriodSeconds"])
        return int(spec.get("terminationGracePeriodSeconds", 30))

    def _stop(self, pod: Obj | None, c: Container, grace: int, why: str) -> None:
        log.info("stopping %s (%s), grace %ss", c.name, why, grace)
        try:
            self.d.runtime.stop(c.id, grace)
        except RuntimeError_ as exc:
            log.warning("stop %s: %s", c.name, exc)

    def _stop_all(self, pod: Obj | None, found: list[Container], grace: int) -> None:
        """Stop app and init containers in parallel (each SIGTERM, SIGKILL after `grace`), then the sandbox."""
        workers = []
        for c in found:
            if c.running and c.kind is not L.Kind.SANDBOX:
                if pod is not None:
                    self.d.events.pod(pod, NORMAL, "Killing", f"Stopping container {c.container_name}",
                                      c.container_name)
                t = threading.Thread(target=self._stop, args=(pod, c, grace, "pod stopping"), daemon=True)
                t.start()
                workers.append(t)
        for t in workers:
            t.join()
        for c in found:
            if c.running and c.kind is L.Kind.SANDBOX:
                self._stop(pod, c, SANDBOX_STOP_SECONDS, "pod stopping")

    def _stop_sandbox(self, pod: Obj, found: list[Container]) -> None:
        uid = pod["metadata"]["uid"]
        if any(c.running for c in found):
            self._stop_all(pod, found, self._grace(pod))
            self.d.network.teardown(uid)
            self.d.probes.forget(uid)

    def _terminate(self, pod: Obj, found: list[Container], mem: PodMemory) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        self._stop_all(pod, found, self._grace(pod))
        self.d.probes.forget(uid)
        self.d.network.teardown(uid)
        found = self.d.runtime.containers(uid)
        self._report(pod, found, mem)
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            self.d.api.delete(PODS, meta["name"], meta.get("namespace", "default"),
                              {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                               "preconditions": {"uid": uid}})

    def _remove(self, uid: str, found: list[Container]) -> None:
        """The pod is gone from the API: stop and remove all of it."""
        grace = min((int(c.labels.get(L.GRACE, "30") or 30) for c in found if c.running), default=0)
        self._stop_all(None, found, grace)
        for c in found:
            self._remove_container(c)
        self.d.probes.forget(uid)
        self.d.network.teardown(uid)
        self.d.volumes.cleanup(uid)
        self.d.backoff.forget_prefix(f"{uid}/")
        self._retry.forget_prefix(f"{uid}/")
        self.complaints.forget(f"{uid}/")
        self.d.images.forget(uid)
        with self._lock:
            self._memory.pop(uid, None)

    def _remove_container(self, c: Container) -> None:
        try:
            self.d.runtime.remove(c.id)
        except RuntimeError_ as exc:
            log.warning("remove %s: %s", c.name, exc)


def _failed(c: Container) -> bool:
    return c.exit_code != 0 or c.oom_killed or bool(c.error)


def _name(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _subject(uid: str, pod: Obj | None, container: str = "") -> str:
    """What a log line is about: `pod NS/NAME` (its uid when the pod is gone), with the container if one."""
    who = f"pod {_name(pod)}" if pod is not None else f"pod {uid}"
    return f"{who} container {container}" if container else who


# Failures from outside the agent (Docker, the disk, the API): one line each, never a traceback.
_EXTERNAL: tuple[type[Exception], ...] = (RuntimeError_, OSError, requests.RequestException, ConnectionFailed,
                                          errors.ApiError)
_VOLUME_FAILURES: tuple[type[Exception], ...] = (ConfigError, *_EXTERNAL)


def _reason(exc: BaseException) -> str:
    """Docker's own words for a runtime failure, else the exception's message."""
    return exc.detail if isinstance(exc, RuntimeError_) else (str(exc) or type(exc).__name__)
