"""Unit tests (no Docker, no master) of what a pod that cannot start and a runtime that is down look like.

The pod syncer runs against fakes of Docker, the API and the events recorder: a
missing config map, a volume that cannot be set up, a container Docker refuses
to create or start and an error nobody expected each give the kubelet's reason,
are retried with back-off (not on every wake-up), and are logged once per cause.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent.kubelet import node, status
from agent.kubelet.backoff import Backoff
from agent.kubelet.envs import ConfigError, Lookup
from agent.kubelet.failures import Complaints
from agent.kubelet.images import ImagePuller
from agent.kubelet.objects import ObjectCache, references
from agent.kubelet.podnetwork import IsolatedNetwork
from agent.kubelet.podsync import PodSyncer, SyncDeps
from agent.kubelet.probes import ProbeKind, ProbeManager, Prober, Target
from agent.kubelet.runtimehealth import RuntimeHealth
from agent.kubelet.volumes import VolumeError, VolumeManager
from agent.runtime import labels as L
from agent.runtime.docker import Container, RuntimeError_, _unreachable
from core import errors
from core.settings import AgentSettings

Obj = dict[str, Any]
STARTED = "2026-01-01T00:00:00.000000000Z"


class FakeDocker:
    """The few runtime calls a sync makes, over a dict of containers; can refuse to create or start."""

    node = "n1"

    def __init__(self) -> None:
        self.made: dict[str, Container] = {}
        self.refuse_create = ""
        self.refuse_start = ""
        self.refuse_sandbox_start = ""
        self.calls = 0
        self.api = SimpleNamespace(volumes=lambda filters: {"Volumes": []})

    def containers(self, pod_uid: str | None = None) -> list[Container]:
        self.calls += 1
        return [c for c in self.made.values() if pod_uid is None or c.pod_uid == pod_uid]

    def create(self, name: str, image: str, labels: dict[str, str], host_config: Obj, **config: Any) -> str:
        self.calls += 1
        if self.refuse_create and labels[L.KIND] != L.Kind.SANDBOX.value:
            raise RuntimeError_(f"create container {name}: {self.refuse_create}", self.refuse_create)
        cid = f"c{len(self.made)}"
        self.made[cid] = Container(id=cid, name=name, labels=labels, state="created", image=image,
                                   image_id="sha256:i", created=f"{len(self.made)}")
        return cid

    def start(self, cid: str) -> None:
        c = self.made[cid]
        if self.refuse_sandbox_start and c.kind is L.Kind.SANDBOX:
            raise RuntimeError_(f"start {cid}: {self.refuse_sandbox_start}", self.refuse_sandbox_start)
        if self.refuse_start and c.kind is not L.Kind.SANDBOX:
            self.made[cid] = dataclasses.replace(c, error=self.refuse_start, exit_code=127)
            raise RuntimeError_(f"start {cid}: {self.refuse_start}", self.refuse_start)
        self.made[cid] = dataclasses.replace(c, state="running", started_at=STARTED, pid=42)

    def inspect(self, cid: str) -> Container | None:
        return self.made.get(cid)

    def stop(self, cid: str, grace: int) -> None:
        self.made[cid] = dataclasses.replace(self.made[cid], state="exited", finished_at=STARTED)

    def remove(self, cid: str) -> None:
        self.made.pop(cid, None)

    def image_id(self, ref: str) -> str:
        return "sha256:i"


class FakeApi:
    def __init__(self) -> None:
        self.patches: list[Obj] = []

    def patch(self, res: object, name: str, body: Obj, namespace: str = "", sub: str = "") -> Obj:
        self.patches.append(body["status"])
        return body


class FakeEvents:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def pod(self, pod: Obj, kind: str, reason: str, message: str, container: str = "") -> None:
        self.seen.append((kind, reason, message))


@dataclasses.dataclass
class Harness:
    syncer: PodSyncer
    docker: FakeDocker
    api: FakeApi
    events: FakeEvents
    clock: list[float]
    config_maps: dict[str, dict[str, str]]
    lookups: list[str]
    down: list[str | None]
    refreshed: list[str]

    def sync(self, pod: Obj) -> float | None:
        return self.syncer.sync(pod["metadata"]["uid"], pod)

    def waiting(self) -> Obj:
        return dict(self.api.patches[-1]["containerStatuses"][0]["state"].get("waiting") or {})

    def later(self, seconds: float) -> None:
        self.clock[0] += seconds


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    clock = [1_000_000.0]
    config_maps: dict[str, dict[str, str]] = {}
    lookups: list[str] = []
    down: list[str | None] = [None]
    refreshed: list[str] = []

    def config_map(ns: str, name: str) -> dict[str, str] | None:
        lookups.append(name)
        return config_maps.get(name)

    lookup = Lookup(config_map=config_map, secret=lambda ns, name: None)
    docker = FakeDocker()
    api, events = FakeApi(), FakeEvents()
    now: Callable[[], float] = lambda: clock[0]  # noqa: E731
    backoff = Backoff(10, 300, now)
    deps = SyncDeps(
        settings=AgentSettings(server="https://m:6443", node_name="n1", data_dir=tmp_path), api=api,  # type: ignore[arg-type]
        runtime=docker, volumes=VolumeManager(tmp_path, docker, lookup), network=IsolatedNetwork(),  # type: ignore[arg-type]
        probes=ProbeManager(Prober(docker, None), lambda uid: None, lambda t, m: None),  # type: ignore[arg-type]
        images=ImagePuller(docker, backoff, now), backoff=backoff, events=events, lookup=lookup,  # type: ignore[arg-type]
        node_ip="10.0.0.2", node_cpus=4, node_memory=1 << 30, pause_image="pause",
        ensure_pause_image=lambda: None, forget_pause_image=lambda: None, clock=now, service_env=lambda pod: {},
        runtime_error=lambda: down[0], refresh_objects=lambda pod: refreshed.append(pod["metadata"]["name"]))
    return Harness(PodSyncer(deps), docker, api, events, clock, config_maps, lookups, down, refreshed)


def _pod(**container: Any) -> Obj:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"restartPolicy": "Always", "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "busybox", **container}]}}


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("agent.")]


def test_a_missing_config_map_is_retried_with_backoff_and_logged_once(h: Harness,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    pod = _pod(env=[{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}])
    assert h.sync(pod) == pytest.approx(1.0)
    assert h.waiting() == {"reason": "CreateContainerConfigError", "message": 'configmap "cfg" not found'}
    assert ("Warning", "Failed", 'Error: configmap "cfg" not found') in h.events.seen
    assert _lines(caplog) == ['pod ns/p container main: CreateContainerConfigError: configmap "cfg" not found']
    assert h.refreshed == ["p", "p"]  # new to the agent, then failed on it: its objects are read afresh
    tried, events = len(h.lookups), len(h.events.seen)

    assert h.sync(pod) == pytest.approx(1.05)  # woken again at once (its own status write): not retried yet
    assert len(h.lookups) == tried and len(h.events.seen) == events
    assert h.waiting()["reason"] == "CreateContainerConfigError"

    delays = []
    for _ in range(5):
        h.later(delays[-1] + 0.1 if delays else 1.1)
        delays.append(h.sync(pod))
    assert delays == [pytest.approx(d) for d in (2.0, 4.0, 8.0, 10.0, 10.0)]  # back-off to the kubelet's 10 s
    assert len(h.lookups) == tried + 5
    assert len(_lines(caplog)) == 1  # five more failures, nothing more in the log

    h.config_maps["cfg"] = {"k": "v"}
    h.later(10.1)
    h.sync(pod)
    app = [c for c in h.docker.made.values() if c.kind is L.Kind.APP]
    assert len(app) == 1 and app[0].running
    assert _lines(caplog)[1:] == ["pod ns/p container main: started"]


def test_a_volume_that_cannot_be_set_up_is_a_failed_mount_naming_it(h: Harness,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    pod = _pod(volumeMounts=[{"name": "cfg", "mountPath": "/cfg"}])
    pod["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "missing"}}]
    h.sync(pod)
    assert h.docker.made == {}  # no sandbox without its volumes
    assert h.waiting() == {"reason": "ContainerCreating"}
    message = 'MountVolume.SetUp failed for volume "cfg" : configmap "missing" not found'
    assert ("Warning", "FailedMount", message) in h.events.seen
    assert _lines(caplog) == [f"pod ns/p: FailedMount: {message}"]


def test_a_value_utf8_cannot_encode_fails_one_volume_without_a_traceback(h: Harness,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    h.config_maps["odd"] = {"k": "\ud800"}  # a lone surrogate: JSON can carry it, UTF-8 cannot encode it
    pod = _pod(volumeMounts=[{"name": "odd", "mountPath": "/odd"}])
    pod["spec"]["volumes"] = [{"name": "odd", "configMap": {"name": "odd"}}]
    for _ in range(3):
        h.sync(pod)
        h.later(11)
    reasons = [e for e in h.events.seen if e[1] == "FailedMount"]
    assert len(reasons) == 3 and reasons[0][2].startswith('MountVolume.SetUp failed for volume "odd" : ')
    assert len(_lines(caplog)) == 1 and not any(r.exc_info for r in caplog.records)


def test_docker_refusing_a_container_is_create_container_error_in_dockers_words(h: Harness) -> None:
    h.docker.refuse_create = "the working directory 'x' is invalid, it needs to be an absolute path"
    h.sync(_pod(workingDir="x"))
    assert h.waiting() == {"reason": "CreateContainerError", "message": h.docker.refuse_create}
    assert ("Warning", "Failed", f"Error: {h.docker.refuse_create}") in h.events.seen


def test_a_container_that_cannot_start_is_run_container_error_then_crash_loop(h: Harness) -> None:
    h.docker.refuse_start = 'exec: "/nope": stat /nope: no such file or directory'
    pod = _pod(command=["/nope"])
    h.sync(pod)
    message = f'failed to start container "main": {h.docker.refuse_start}'
    assert h.waiting() == {"reason": "RunContainerError", "message": message}
    last = h.api.patches[-1]["containerStatuses"][0]["lastState"]["terminated"]
    assert last["reason"] == "ContainerCannotRun"
    h.sync(pod)  # woken at once: still the same, no second attempt yet
    assert h.waiting()["reason"] == "RunContainerError"
    assert len([c for c in h.docker.made.values() if c.kind is L.Kind.APP]) == 1
    h.later(1.1)
    h.sync(pod)  # the first restart is immediate (CrashLoopBackOff starts counting), and fails the same way
    h.later(2.1)
    h.sync(pod)
    assert h.waiting()["reason"] == "CrashLoopBackOff"


def test_an_unexpected_error_logs_one_traceback_and_backs_off(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    def broken(ns: str, name: str) -> dict[str, str] | None:
        raise KeyError("a bug")

    h.syncer.d.lookup = Lookup(config_map=broken, secret=broken)
    pod = _pod(env=[{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}])
    delays = []
    for _ in range(4):
        delays.append(h.sync(pod))
        h.later(20)
    assert delays == [1.0, 2.0, 4.0, 8.0]
    records = [r for r in caplog.records if r.name.startswith("agent.")]
    assert len(records) == 1 and records[0].exc_info is not None
    assert "sync failed: KeyError" in records[0].getMessage()


def test_while_the_runtime_is_down_pods_are_reported_not_ready_once_and_left_alone(h: Harness) -> None:
    pod = _pod()
    h.sync(pod)
    running = h.api.patches[-1]
    assert running["containerStatuses"][0]["ready"] is True
    pod["status"] = running
    h.down[0] = "cannot connect to the Docker engine at unix:///x: Connection refused"
    calls, patches = h.docker.calls, len(h.api.patches)
    h.sync(pod)
    h.sync(pod)
    assert h.docker.calls == calls  # nothing asked of a runtime that is down
    assert len(h.api.patches) == patches + 1
    down = h.api.patches[-1]
    assert {c["type"]: c["status"] for c in down["conditions"]}["Ready"] == "False"
    assert down["containerStatuses"][0]["ready"] is False
    pod["status"] = {**running, **down}
    h.down[0] = None
    h.sync(pod)  # back: the real status is written again, whatever the API's copy seems to hold
    assert {c["type"]: c["status"] for c in h.api.patches[-1]["conditions"]}["Ready"] == "True"


def test_not_ready_turns_ready_false_and_leaves_finished_pods_alone() -> None:
    pod = {"spec": {"containers": [{"name": "a"}, {"name": "b"}]},
           "status": {"phase": "Running", "conditions": [
               {"type": "PodScheduled", "status": "True"},
               {"type": "Ready", "status": "True", "lastTransitionTime": "t0"},
               {"type": "ContainersReady", "status": "True", "lastTransitionTime": "t0"}],
               "containerStatuses": [{"name": "a", "ready": True}, {"name": "b", "ready": False}]}}
    out = status.not_ready(pod, "t1")
    assert out is not None
    conds = {c["type"]: c for c in out["conditions"]}
    assert conds["Ready"] == {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                              "message": "containers with unready status: [a b]", "lastTransitionTime": "t1"}
    assert conds["ContainersReady"]["status"] == "False" and conds["PodScheduled"]["status"] == "True"
    assert [c["ready"] for c in out["containerStatuses"]] == [False, False]
    assert status.not_ready({**pod, "status": {**pod["status"], **out}}, "t2") is None  # already so
    assert status.not_ready({"status": {"phase": "Succeeded"}}, "t1") is None


def test_complaints_say_each_cause_once_and_tracebacks_rarely(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    now = [0.0]
    c = Complaints(logging.getLogger("agent.test"), lambda: now[0], traceback_every=600)
    assert c.failed("a", "pod x", "cause 1") is True
    assert c.failed("a", "pod x", "cause 1") is False
    assert c.failed("a", "pod x", "cause 2") is True
    assert c.recovered("a", "pod x", "started") is True
    assert c.recovered("a", "pod x", "started") is False
    boom = ValueError("boom")
    c.failed("b", "pod y", "bug 1", boom, unexpected=True)
    c.failed("c", "pod z", "bug 2", boom, unexpected=True)  # another traceback within 10 minutes: left out
    now[0] = 601
    c.failed("d", "pod w", "bug 3", boom, unexpected=True)
    assert [r.exc_info is not None for r in caplog.records] == [False, False, False, True, False, True]
    assert "traceback left out" in caplog.records[4].getMessage()
    c.forget("b")
    assert c.cause("b") is None and c.cause("c") == "bug 2"


def test_runtime_health_turns_down_after_two_failures_in_a_row() -> None:
    answers: list[str | None] = []
    seen: list[str | None] = []
    now = [0.0]
    slow = [0.0]

    def ping() -> str | None:
        now[0] += slow[0]
        return answers.pop(0)

    health = RuntimeHealth(ping, seen.append, timeout=2.0, clock=lambda: now[0])
    answers[:] = [None, "refused", None, "refused", "refused", "refused", None]
    for _ in range(7):
        health.check()
    assert seen == ["refused", None]  # one refusal is not an outage; two in a row are; one answer ends it
    assert health.next_check_in() == 1.0
    slow[0] = 2.0  # a hung engine: each ping waits out its timeout, and the next follows at once
    answers[:] = ["did not answer within 2s", "did not answer within 2s"]
    assert health.check() is False and health.next_check_in() == 0.0
    assert health.check() is True and health.error() == "did not answer within 2s"


def test_node_ready_follows_the_runtime_and_is_written_on_change_only() -> None:
    from tests.agent.test_hostfacts import IDENT, FakeApi, _settings, collect, pi

    api, host, runtime_error = FakeApi(), pi(), [None]
    reporter = node.NodeReporter(api, _settings(), IDENT, lambda: collect(host, Path("/tmp")),  # type: ignore[arg-type]
                                 lambda: runtime_error[0], lambda: 0.0)
    reporter.register()
    api.writes.clear()
    runtime_error[0] = "cannot connect to the Docker engine at unix:///x: Connection refused"  # type: ignore[assignment]
    assert reporter.sync() is True
    ready = next(c for c in api.writes[-1][1]["status"]["conditions"] if c["type"] == "Ready")  # type: ignore[index]
    assert (ready["status"], ready["reason"]) == ("False", "KubeletNotReady")
    assert ready["message"] == f"container runtime is down: {runtime_error[0]}"
    assert reporter.sync() is False  # still down, same words: nothing to write
    runtime_error[0] = None
    assert reporter.sync() is True


def test_config_map_values_are_text_utf8_can_encode_and_missing_objects_are_asked_again() -> None:
    now = [0.0]
    store: dict[str, Obj] = {"odd": {"data": {"k": "a\ud800b", "\udc00": "x"}}}
    asked: list[str] = []
    failing = [False]

    class Api:
        def get(self, res: object, name: str, namespace: str = "") -> Obj:
            asked.append(name)
            if failing[0]:
                raise errors.ServiceUnavailable(message="the master is busy")
            if name not in store:
                raise errors.NotFound(message="not found")
            return store[name]

    cache = ObjectCache(Api(), lambda: now[0])  # type: ignore[arg-type]
    assert cache.config_map("ns", "odd") == {"k": "a\ufffdb", "\ufffd": "x"}
    assert cache.config_map("ns", "late") is None
    now[0] = 0.5
    assert cache.config_map("ns", "late") is None and asked == ["odd", "late"]
    store["late"] = {"data": {"k": "v"}}
    now[0] = 1.5  # a missing object is asked for again after a second
    assert cache.config_map("ns", "late") == {"k": "v"}
    failing[0] = True
    now[0] = 100
    assert cache.config_map("ns", "late") == {"k": "v"}  # the master away: the last value read
    with pytest.raises(ConfigError, match="failed to get configmap ns/never"):
        cache.config_map("ns", "never")
    failing[0] = False
    pod = {"metadata": {"namespace": "ns"}, "spec": {
        "containers": [{"env": [{"valueFrom": {"configMapKeyRef": {"name": "late"}}}],
                        "envFrom": [{"secretRef": {"name": "s"}}]}],
        "volumes": [{"configMap": {"name": "odd"}}, {"secret": {"secretName": "s2"}}]}}
    assert references(pod) == {("configmaps", "ns", "late"), ("secrets", "ns", "s"), ("configmaps", "ns", "odd"),
                               ("secrets", "ns", "s2")}
    now[0] = 101
    cache.expire(pod)
    asked.clear()
    cache.config_map("ns", "late")
    assert asked == ["late"]  # read afresh though a minute has not passed


def test_volume_errors_name_the_volume(tmp_path: Path) -> None:
    lookup = Lookup(config_map=lambda ns, n: {"a": "1"}, secret=lambda ns, n: {"a": "1"})
    volumes = VolumeManager(tmp_path, FakeDocker(), lookup)  # type: ignore[arg-type]
    pod = {"metadata": {"uid": "u", "namespace": "ns"},
           "spec": {"volumes": [{"name": "ok", "emptyDir": {}},
                                {"name": "sec", "secret": {"secretName": "s", "items": [{"key": "b"}]}}]}}
    with pytest.raises(VolumeError) as caught:
        volumes.prepare(pod)
    assert caught.value.event_message == \
        'MountVolume.SetUp failed for volume "sec" : secret references non-existent secret key: b'


def test_an_exec_probe_docker_cannot_run_has_no_verdict() -> None:
    class Down:
        def exec(self, cid: str, argv: list[str]) -> tuple[int, bytes]:
            raise RuntimeError_("exec: cannot connect", "cannot connect")

    prober = Prober(Down(), ThreadPoolExecutor(1))  # type: ignore[arg-type]
    target = Target(pod_uid="u", container="c", container_id="id", kind=ProbeKind.LIVENESS,
                    probe={"exec": {"command": ["true"]}, "failureThreshold": 1}, ports=(), netns=None, pod_ip="",
                    started_at=0.0)
    ok, message = prober.run(target)
    assert ok is None and "could not be run" in message
    failed: list[str] = []
    manager = ProbeManager(prober, lambda uid: None, lambda t, m: failed.append(m))
    manager.ensure(target)
    for _ in range(3):
        manager._probe(("u", "c", ProbeKind.LIVENESS), manager._states[("u", "c", ProbeKind.LIVENESS)])
    assert manager.result("u", "c", "id", ProbeKind.LIVENESS) is True and failed == []  # not killed for it


def test_why_docker_does_not_answer_is_worded_the_same_each_time() -> None:
    import requests
    from urllib3.exceptions import ProtocolError

    gone = requests.ConnectionError(ProtocolError("Connection aborted.", FileNotFoundError(2, "No such file")))
    assert _unreachable("unix:///d.sock", gone, 2) == \
        "cannot connect to the Docker engine at unix:///d.sock: No such file or directory"
    refused = requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionRefusedError(111, "x")))
    assert _unreachable("unix:///d.sock", refused, 2).endswith(": Connection refused")
    assert _unreachable("unix:///d.sock", requests.ReadTimeout("read timed out"), 2) == \
        "the Docker engine at unix:///d.sock did not answer within 2s"


def test_a_sandbox_docker_cannot_start_is_removed_each_time_and_the_pod_starts_once_it_can(h: Harness) -> None:
    """Seen on the image's first boot (AppArmor without apparmor_parser): every retry left a Created pause
    container behind; now only the cause stays, in the event, until the sandbox starts."""
    h.docker.refuse_sandbox_start = "AppArmor enabled on system but the docker-default profile could not be loaded"
    pod = _pod()
    for _ in range(4):
        h.sync(pod)
        h.later(400)
    assert h.docker.made == {}
    assert [e for e in h.events.seen if e[1] == "FailedCreatePodSandBox"][-1][2].startswith(
        "Failed to create pod sandbox: ")
    h.docker.refuse_sandbox_start = ""
    h.sync(pod)
    kinds = sorted(c.kind.value for c in h.docker.made.values())
    assert kinds == sorted([L.Kind.SANDBOX.value, L.Kind.APP.value])
