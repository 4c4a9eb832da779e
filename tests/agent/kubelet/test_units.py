"""Unit tests (no Docker, no master): env building, back-off, container translation, status."""

from __future__ import annotations

import pytest

from agent.kubelet import containers, status
from agent.kubelet.backoff import Backoff, format_duration
from agent.kubelet.envs import ConfigError, Lookup, build, expand
from agent.runtime import labels as L
from agent.runtime.docker import Container

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
       "spec": {"nodeName": "n1", "restartPolicy": "Always", "containers": [{"name": "c", "image": "i"}]}}


def _lookup(cms: dict[str, dict[str, str]] | None = None, secrets: dict[str, dict[str, str]] | None = None) -> Lookup:
    return Lookup(config_map=lambda ns, n: (cms or {}).get(n), secret=lambda ns, n: (secrets or {}).get(n))


def test_expand_follows_kubernetes_rules() -> None:
    env = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)", env) == "1-two"
    assert expand("$(MISSING)", env) == "$(MISSING)"
    assert expand("$$(A)", env) == "$(A)"
    assert expand("cost $5", env) == "cost $5"


def test_env_sources_and_errors() -> None:
    c = {"name": "c", "envFrom": [{"configMapRef": {"name": "cm"}}, {"secretRef": {"name": "s"}, "prefix": "S_"}],
         "env": [{"name": "X", "value": "$(k)!"},
                 {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                 {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                 {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}}]}
    env = build(POD, c, _lookup({"cm": {"k": "v", "bad key": "z"}}, {"s": {"pw": "p"}}), "10.0.0.1", "")
    assert env == {"k": "v", "S_pw": "p", "X": "v!", "NODE": "n1", "IP": "10.0.0.1"}
    with pytest.raises(ConfigError, match='configmap "cm" not found'):
        build(POD, {"name": "c", "envFrom": [{"configMapRef": {"name": "cm"}}]}, _lookup(), "", "")
    with pytest.raises(ConfigError, match="couldn't find key other"):
        build(POD, {"name": "c", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "other"}}}]},
              _lookup(secrets={"s": {"pw": "p"}}), "", "")


def test_backoff_doubles_to_the_cap_and_resets() -> None:
    now = [1000.0]
    b = Backoff(10, 300, lambda: now[0])
    assert b.in_backoff_since("k", now[0]) == 0
    b.next("k")
    assert b.in_backoff_since("k", now[0]) == 10
    delays = []
    for _ in range(8):
        b.next("k")
        delays.append(b.delay("k"))
    assert delays[:5] == [20, 40, 80, 160, 300] and delays[-1] == 300
    now[0] += 601
    assert b.in_backoff_since("k", now[0]) == 0
    b.next("k")
    assert b.delay("k") == 10
    assert [format_duration(s) for s in (10, 80, 300)] == ["10s", "1m20s", "5m0s"]


def test_container_translation() -> None:
    c = {"name": "c", "image": "img", "command": ["sh", "-c"], "args": ["echo $(A)"], "workingDir": "/w",
         "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
         "securityContext": {"runAsUser": 1000, "capabilities": {"drop": ["ALL"]}}}
    args = containers.create_args(POD, c, L.Kind.APP, 3, "n1", "sb1", {"A": "hi"}, ["/h:/c:ro"])
    assert args.name == "k8s_c_p_ns_u1_3"
    assert args.config["entrypoint"] == ["sh", "-c"] and args.config["command"] == ["echo hi"]
    assert args.config["working_dir"] == "/w" and args.config["user"] == "1000"
    h = args.host_config
    assert h["network_mode"] == h["ipc_mode"] == "container:sb1"
    assert (h["cpu_quota"], h["cpu_period"], h["cpu_shares"]) == (50000, 100000, 256)
    assert h["mem_limit"] == h["memswap_limit"] == 128 * 2**20
    assert h["cap_drop"] == ["ALL"] and h["binds"] == ["/h:/c:ro"]
    assert args.labels[L.RESTART_COUNT] == "3" and args.labels[L.NODE] == "n1"
    only_command = containers.create_args(POD, {"name": "c", "image": "i", "command": ["x"]}, L.Kind.APP, 0, "n",
                                          "s", {}, [])
    assert "command" not in only_command.config  # Docker drops the image CMD when the entrypoint is set


def _c(name: str, attempt: int, state: str, exit_code: int = 0, oom: bool = False, kind: L.Kind = L.Kind.APP,
       started: str = "2024-01-01T00:00:00.5Z", finished: str = "2024-01-01T00:00:01.5Z") -> Container:
    labels = {L.CONTAINER_NAME: name, L.RESTART_COUNT: str(attempt), L.KIND: kind.value, L.POD_UID: "u1"}
    return Container(id=f"{name}{attempt}", name=f"k8s_{name}_{attempt}", labels=labels, state=state, image="i",
                     image_id="sha256:1", started_at=started, finished_at=finished if state == "exited" else "",
                     exit_code=exit_code, oom_killed=oom)


def test_status_of_a_crashlooping_container() -> None:
    obs = status.Observed(containers=[_c("c", 0, "exited", 3), _c("c", 1, "exited", 3)],
                          waiting={"c": status.Waiting("CrashLoopBackOff", "back-off 10s ...")}, host_ip="h")
    st = status.pod_status(POD, obs, "2024-01-01T00:00:02Z")
    cs = st["containerStatuses"][0]
    assert cs["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s ..."}}
    assert cs["lastState"]["terminated"]["exitCode"] == 3 and cs["lastState"]["terminated"]["reason"] == "Error"
    assert cs["restartCount"] == 1 and cs["ready"] is False
    assert st["phase"] == "Running"
    assert [c["type"] for c in st["conditions"]] == ["PodScheduled", "Initialized", "ContainersReady", "Ready"]


def test_phases_follow_the_restart_policy() -> None:
    never = {**POD, "spec": {**POD["spec"], "restartPolicy": "Never"}}
    done = status.pod_status(never, status.Observed(containers=[_c("c", 0, "exited", 0)]), "t")
    assert done["phase"] == "Succeeded"
    assert done["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    failed = status.pod_status(never, status.Observed(containers=[_c("c", 0, "exited", 137, oom=True)]), "t")
    assert failed["phase"] == "Failed"
    assert failed["containerStatuses"][0]["state"]["terminated"]["reason"] == "OOMKilled"
    pending = status.pod_status(POD, status.Observed(containers=[]), "t")
    assert pending["phase"] == "Pending"
    assert pending["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
    terminal = {**never, "status": {"phase": "Failed"}}
    assert status.pod_status(terminal, status.Observed(containers=[_c("c", 0, "running")]), "t")["phase"] == "Failed"


def test_init_containers_gate_initialized() -> None:
    pod = {**POD, "spec": {**POD["spec"], "initContainers": [{"name": "i1", "image": "i"}]}}
    running = status.pod_status(pod, status.Observed(containers=[_c("i1", 0, "running", kind=L.Kind.INIT)]), "t")
    assert running["phase"] == "Pending"
    assert running["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    init = {c["type"]: c["status"] for c in running["conditions"]}
    assert init["Initialized"] == "False"
    done = status.pod_status(pod, status.Observed(containers=[_c("i1", 0, "exited", 0, kind=L.Kind.INIT),
                                                              _c("c", 0, "running")]), "t")
    assert done["phase"] == "Running"
    assert {c["type"]: c["status"] for c in done["conditions"]}["Ready"] == "True"
