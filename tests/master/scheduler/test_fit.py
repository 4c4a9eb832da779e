"""Scheduler placement, pure: filters in kube-scheduler's order, its failure message, scoring, the cache."""

from __future__ import annotations

import random
from typing import Any

from master.scheduler.cache import Cache, Usage
from master.scheduler.fit import Fitter


def node(name: str, cpu: str = "4", memory: str = "4Gi", pods: int = 110, ready: str = "True",
         labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None,
         unschedulable: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"taints": taints or []}
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": name, "labels": {"kubernetes.io/arch": "arm64", **(labels or {})}}, "spec": spec,
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": str(pods)},
                       "conditions": [{"type": "Ready", "status": ready}]}}


def pod(name: str = "p", cpu: str = "", memory: str = "", host_port: int = 0, owner: str = "",
        **spec: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    container: dict[str, Any] = {"name": "c", "image": "i", "resources": {"requests": requests}}
    if host_port:
        container["ports"] = [{"containerPort": 80, "hostPort": host_port, "protocol": "TCP"}]
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True, "kind": "ReplicaSet", "name": "rs"}]
    return {"metadata": meta, "spec": {"containers": [container], **spec}}


def fitter(*nodes: dict[str, Any]) -> Fitter:
    cache = Cache()
    for n in nodes:
        cache.update_node(n)
    return Fitter(cache, random.Random(1))


def place(f: Fitter, p: dict[str, Any]) -> tuple[str | None, str]:
    placement = f.place(p, Usage.of(p))
    if placement.node:
        f.cache.assume(p["metadata"]["name"], placement.node, Usage.of(p))
    return placement.node, placement.message()


def test_message_matches_kube_scheduler() -> None:
    f = fitter(node("a", unschedulable=True), node("b", memory="2Gi"), node("c", memory="2Gi"))
    name, message = place(f, pod(memory="3Gi"))
    assert name is None
    assert message == "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient memory."


def test_no_nodes() -> None:
    assert place(fitter(), pod())[1] == "no nodes available to schedule pods"


def test_taints_tolerations_and_readiness() -> None:
    f = fitter(node("gpu", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
               node("down", ready="False"), node("lost", ready="Unknown"))
    _, message = place(f, pod())
    assert message == ("0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
                       "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, "
                       "1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }.")
    tolerant = pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}])
    assert place(f, tolerant)[0] == "gpu"
    everything = pod("any", tolerations=[{"operator": "Exists"}])
    assert place(f, everything)[0] in ("gpu", "down", "lost")


def test_cordoned_node_and_its_toleration() -> None:
    f = fitter(node("a", unschedulable=True))
    assert place(f, pod())[0] is None
    daemon = pod(tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                               "effect": "NoSchedule"}])
    assert place(f, daemon)[0] == "a"


def test_node_selector_and_affinity() -> None:
    f = fitter(node("pi", labels={"disk": "ssd"}), node("pc", labels={"kubernetes.io/arch": "amd64"}))
    assert place(f, pod("x", nodeSelector={"kubernetes.io/arch": "amd64"}))[0] == "pc"
    assert place(f, pod("y", nodeSelector={"disk": "ssd"}))[0] == "pi"
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "disk", "operator": "DoesNotExist"}]}]}}}
    assert place(f, pod("z", affinity=affinity))[0] == "pc"
    by_name = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["pi"]}]}]}}}
    assert place(f, pod("w", affinity=by_name))[0] == "pi"
    _, message = place(f, pod("v", nodeSelector={"disk": "nvme"}))
    assert message == "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."


def test_resources_are_accounted_incrementally() -> None:
    f = fitter(node("a", cpu="1", memory="1Gi", pods=3))
    assert place(f, pod("p1", cpu="600m"))[0] == "a"
    name, message = place(f, pod("p2", cpu="600m"))
    assert name is None and message == "0/1 nodes are available: 1 Insufficient cpu."
    assert place(f, pod("p3", cpu="400m"))[0] == "a"
    assert place(f, pod("p4"))[0] == "a"
    assert place(f, pod("p5"))[1] == "0/1 nodes are available: 1 Too many pods."
    f.cache.remove_pod("p1")
    assert place(f, pod("p6", cpu="500m"))[0] == "a"


def test_host_ports() -> None:
    f = fitter(node("a"), node("b"))
    first = place(f, pod("p1", host_port=8080))[0]
    second = place(f, pod("p2", host_port=8080))[0]
    assert {first, second} == {"a", "b"}
    name, message = place(f, pod("p3", host_port=8080))
    assert name is None
    assert message == "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."
    assert place(f, pod("p4", host_port=9090))[0] in ("a", "b")


def test_spreads_pods_of_one_owner_and_prefers_empty_nodes() -> None:
    f = fitter(node("a"), node("b"), node("c"))
    placed = [place(f, pod(f"r{i}", owner="rs-1"))[0] for i in range(6)]
    assert sorted(placed) == ["a", "a", "b", "b", "c", "c"]
    busy = fitter(node("a"), node("b"))
    hogged = place(busy, pod("hog", cpu="3", memory="3Gi"))[0]
    assert place(busy, pod("light", cpu="500m"))[0] != hogged, "least allocated wins"


def test_cache_counts_a_pod_once() -> None:
    cache = Cache()
    cache.update_node(node("a"))
    u = Usage.of(pod(cpu="1"))
    cache.assume("p", "a", u)
    cache.add_pod("p", "a", u)  # the watch confirms the binding
    assert cache.nodes["a"].cpu == 1000 and cache.nodes["a"].pods == 1
    cache.forget("p")  # already confirmed: nothing to forget
    assert cache.nodes["a"].pods == 1
    assert cache.remove_pod("p") and cache.nodes["a"].pods == 0
    cache.assume("q", "a", u)
    cache.forget("q")  # binding failed
    assert cache.nodes["a"].pods == 0 and not cache.is_placed("q")


def test_pods_bound_before_their_node_is_known() -> None:
    cache = Cache()
    cache.add_pod("p", "late", Usage.of(pod(cpu="1")))
    cache.update_node(node("late"))
    assert cache.nodes["late"].cpu == 1000
