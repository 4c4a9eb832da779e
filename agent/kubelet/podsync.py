"""`sync(uid, pod)`: make one pod's containers match its spec, then report its status.

Level-triggered, as the kubelet's SyncPod: it ignores what woke it, looks at
the pod (or its absence) and at Docker's containers with the pod's uid, and
acts on the difference: start the sandbox, run init containers one at a time,
start or restart app containers as the restartPolicy and back-off allow, kill
what failed its liveness probe, stop everything of a pod being deleted and then
delete it for good (`gracePeriodSeconds=0`), and remove every trace of a pod
that is gone. It returns when it wants to look again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.client import PODS, ApiClient, ConnectionFailed
from agent.kubelet import containers as specs
from agent.kubelet.backoff import Backoff, format_duration
from agent.kubelet.envs import ConfigError, Lookup, build
from agent.kubelet.events import NORMAL, WARNING, EventRecorder
from agent.kubelet.images import ImagePuller, ImageUnavailable
from agent.kubelet.podnetwork import PodNetwork
from agent.kubelet.probes import ProbeKind, ProbeManager, Target
from agent.kubelet.servicelinks import ServiceLinks
from agent.kubelet.status import TERMINAL, Observed, Waiting, instances, pod_status
from agent.kubelet.volumes import PodVolumes, VolumeManager
from agent.runtime import labels as L
from agent.runtime.docker import Container, DockerRuntime, RuntimeError_
from core import errors, wellknown
from core.kube.timefmt import parse, rfc3339
from core.settings import AgentSettings

log = logging.getLogger(__name__)
Obj = dict[str, Any]
VOLUME_REFRESH_SECONDS = 60.0
SANDBOX_STOP_SECONDS = 2


@dataclass
class PodMemory:
    """What the agent remembers about a pod between syncs (rebuilt from Docker after a restart)."""

    waiting: dict[str, Waiting] = field(default_factory=dict)
    pod_ip: str = ""
    volumes: PodVolumes | None = None
    volumes_at: float = 0.0
    reported: Obj | None = None
    retry: float | None = None

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


class PodSyncer:
    def __init__(self, deps: SyncDeps) -> None:
        self.d = deps
        self._memory: dict[str, PodMemory] = {}
        self._lock = threading.Lock()
        self._links: ServiceLinks | None = None
        self._service_env: Callable[[Obj], dict[str, str]]
        if deps.service_env is not None:
            self._service_env = deps.service_env
        else:
            self._links = ServiceLinks(deps.api)
            self._service_env = self._links.env

    def memory(self, uid: str) -> PodMemory:
        with self._lock:
            return self._memory.setdefault(uid, PodMemory())

    def known(self) -> set[str]:
        with self._lock:
            return set(self._memory)

    # -- entry -----------------------------------------------------------------------------------

    def sync(self, uid: str, pod: Obj | None) -> float | None:
        """Converge pod `uid`; return seconds until it wants another look (None: only on change)."""
        if self._links is not None:
            self._links.start()  # at the first sync: services are listed while the first sandbox starts
        found = self.d.runtime.containers(uid)
        if pod is None:
            self._remove(uid, found)
            return None
        mem = self.memory(uid)
        mem.retry = None
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
        boxes = instances(found, L.SANDBOX_NAME, L.Kind.SANDBOX)
        running = next((b for b in boxes if b.running), None)
        if running is not None:
            self._refresh_volumes(pod, running, mem)
            if not mem.pod_ip:
                mem.pod_ip = self.d.network.address(uid)
            return running
        if not self._should_run(pod, found):
            return None
        for c in found:  # the pod's namespaces are gone: nothing of the old sandbox may keep running
            if c.running:
                self._stop(pod, c, self._grace(pod), "the pod sandbox changed")
        try:
            mem.volumes = self.d.volumes.prepare(pod)
            mem.volumes_at = self.d.clock()
        except (ConfigError, OSError) as exc:
            self.d.events.pod(pod, WARNING, "FailedMount", f"MountVolume.SetUp failed: {exc}")
            mem.want_retry(5.0)
            return None
        attempt = (boxes[0].restart_count + 1) if boxes else 0
        try:
            self.d.ensure_pause_image()
            args = specs.sandbox_args(pod, self.d.settings.node_name, attempt, self.d.pause_image,
                                      mem.volumes.sandbox_binds())
            cid = self.d.runtime.create(args.name, args.image, args.labels, args.host_config, **args.config)
            self.d.runtime.start(cid)
            box = self.d.runtime.inspect(cid)
            if box is None or not box.running:
                raise RuntimeError_("the pause container exited at once")
            mem.pod_ip = self.d.network.setup(uid, box.pid)
            self.d.volumes.populate(box.id, mem.volumes, force=True)
        except Exception as exc:
            self.d.forget_pause_image()
            log.warning("pod %s: sandbox failed: %s", _name(pod), exc)
            self.d.events.pod(pod, WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
            mem.want_retry(5.0)
            return None
        for old in boxes:
            self._remove_container(old)
        found.append(box)
        return box

    def _refresh_volumes(self, pod: Obj, sandbox: Container, mem: PodMemory) -> None:
        if mem.volumes is not None and self.d.clock() - mem.volumes_at < VOLUME_REFRESH_SECONDS:
            return
        try:
            mem.volumes = self.d.volumes.prepare(pod)
            self.d.volumes.populate(sandbox.id, mem.volumes)
        except (ConfigError, OSError, RuntimeError_) as exc:
            log.info("pod %s: volumes not refreshed: %s", _name(pod), exc)
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
        event = self._event(pod, name)
        try:
            self.d.images.ensure(uid, str(c.get("image", "")), str(c.get("imagePullPolicy") or "IfNotPresent"),
                                 event)
        except ImageUnavailable as exc:
            mem.waiting[name] = exc.waiting
            mem.want_retry(max(exc.retry_after, 1.0))
            return False
        try:
            env = build(pod, c, self.d.lookup, self.d.node_ip, mem.pod_ip, self.d.node_cpus, self.d.node_memory,
                        self._service_env(pod))
            binds = self.d.volumes.binds(c, mem.volumes or PodVolumes())
        except ConfigError as exc:
            mem.waiting[name] = Waiting("CreateContainerConfigError", str(exc))
            event(WARNING, "Failed", f"Error: {exc}")
            mem.want_retry(5.0)
            return False
        args = specs.create_args(pod, c, kind, attempt, self.d.settings.node_name, sandbox.id, env, binds)
        try:
            cid = self.d.runtime.create(args.name, args.image, args.labels, args.host_config, **args.config)
        except RuntimeError_ as exc:
            if "Conflict" in str(exc) or "already in use" in str(exc):
                self._remove_by_name(args.name)
            mem.waiting[name] = Waiting("CreateContainerError", str(exc))
            event(WARNING, "Failed", f"Error: {exc}")
            mem.want_retry(5.0)
            return False
        event(NORMAL, "Created", f"Created container {name}")
        try:
            self.d.runtime.start(cid)
        except RuntimeError_ as exc:
            event(WARNING, "Failed", f"Error: failed to start container {name!r}: {exc}")
            mem.want_retry(1.0)
            return False
        event(NORMAL, "Started", f"Started container {name}")
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
        if all(current.get(k) == v for k, v in status.items()) or mem.reported == status:
            return status
        try:
            self.d.api.patch(PODS, pod["metadata"]["name"], {"status": status},
                             namespace=pod["metadata"].get("namespace", "default"), sub="status")
            mem.reported = status
        except (errors.NotFound, errors.Conflict):
            pass
        except (errors.ApiError, ConnectionFailed) as exc:
            log.warning("pod %s: status not written: %s", _name(pod), exc)
            mem.want_retry(2.0)
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
