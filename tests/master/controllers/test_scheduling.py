"""The scheduler against a real master: a clear message for pods that fit nowhere, and a retry when a board joins."""

from __future__ import annotations

from typing import Any

import pytest

from pikube.sim.api import resource_path
from tests.master.controllers.conftest import Cluster, make_cluster, stop_cluster, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Three boards: pi-1 cordoned, pi-2 and pi-3 with 2 GiB each."""
    c = make_cluster(tmp_path_factory.mktemp("sched"))
    try:
        for _ in range(3):
            c.fleet.add(memory="2Gi")
        c.kubectl("cordon", "pi-1")
        yield c
    finally:
        stop_cluster(c)


def pod(name: str, memory: str = "", selector: dict[str, str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "nginx:1"}
    if memory:
        container["resources"] = {"requests": {"memory": memory}}
    spec: dict[str, Any] = {"containers": [container]}
    if selector:
        spec["nodeSelector"] = selector
    return {"metadata": {"name": name}, "spec": spec}


def scheduled_condition(c: Cluster, ns: str, name: str) -> dict[str, Any] | None:
    p = c.get("v1", "pods", ns, name) or {}
    return next((x for x in (p.get("status") or {}).get("conditions") or [] if x["type"] == "PodScheduled"), None)


def test_unschedulable_pod_explains_and_waits_for_a_fitting_board(small: Cluster) -> None:
    c, ns = small, small.namespace("big")
    c.admin.create(resource_path("v1", "pods", ns), pod("big", memory="3Gi"))
    cond = wait_for(lambda: (x := scheduled_condition(c, ns, "big")) and x["status"] == "False" and x,
                    what="PodScheduled=False")
    assert cond["reason"] == "Unschedulable"
    assert cond["message"] == "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient memory."
    described = c.kubectl("describe", "pod", "big", "-n", ns).stdout
    wait_for(lambda: "FailedScheduling" in c.kubectl("describe", "pod", "big", "-n", ns).stdout,
             what="a FailedScheduling event", every=0.3)
    assert "Insufficient memory" in described

    c.fleet.add("pi-big", memory="8Gi")
    wait_for(lambda: (c.get("v1", "pods", ns, "big") or {}).get("spec", {}).get("nodeName") == "pi-big",
             what="the pod bound to the board that fits")
    cond = scheduled_condition(c, ns, "big")
    assert cond is not None and cond["status"] == "True"
    wait_for(lambda: "Successfully assigned big/big to pi-big" in c.kubectl("describe", "pod", "big", "-n", ns).stdout,
             what="a Scheduled event", every=0.3)


def test_architecture_selector(small: Cluster) -> None:
    c, ns = small, small.namespace("arch")
    c.admin.create(resource_path("v1", "pods", ns), pod("x86", selector={"kubernetes.io/arch": "amd64"}))
    cond = wait_for(lambda: (x := scheduled_condition(c, ns, "x86")) and x["status"] == "False" and x,
                    what="PodScheduled=False")
    assert "didn't match Pod's node affinity/selector" in cond["message"]
    c.fleet.add("pc-1", arch="amd64")
    wait_for(lambda: (c.get("v1", "pods", ns, "x86") or {}).get("spec", {}).get("nodeName") == "pc-1",
             what="the amd64 pod on the amd64 board")
    c.admin.create(resource_path("v1", "pods", ns), pod("arm", selector={"kubernetes.io/arch": "arm64"}))
    node = wait_for(lambda: (c.get("v1", "pods", ns, "arm") or {}).get("spec", {}).get("nodeName"),
                    what="the arm64 pod bound")
    assert node in ("pi-2", "pi-3", "pi-big")


def test_waiting_pod_scheduled_when_another_goes(small: Cluster) -> None:
    c, ns = small, small.namespace("freed")
    nodes = [n for n in c.admin.get(resource_path("v1", "nodes"))["items"] if not n["spec"].get("unschedulable")]
    hogs = [f"hog-{i}" for i in range(len(nodes))]
    for name in hogs:
        c.admin.create(resource_path("v1", "pods", ns), {"metadata": {"name": name}, "spec": {"containers": [
            {"name": "app", "image": "nginx:1", "resources": {"requests": {"cpu": "3"}}}]}})
    wait_for(lambda: all((c.get("v1", "pods", ns, n) or {}).get("spec", {}).get("nodeName") for n in hogs),
             what="one hog per board")
    c.admin.create(resource_path("v1", "pods", ns), {"metadata": {"name": "late"}, "spec": {"containers": [
        {"name": "app", "image": "nginx:1", "resources": {"requests": {"cpu": "3"}}}]}})
    cond = wait_for(lambda: (x := scheduled_condition(c, ns, "late")) and x["status"] == "False" and x,
                    what="the late pod waiting")
    assert f"{len(nodes)} Insufficient cpu" in cond["message"]
    freed = (c.get("v1", "pods", ns, "hog-0") or {})["spec"]["nodeName"]
    c.kubectl("delete", "pod", "hog-0", "-n", ns)
    wait_for(lambda: (c.get("v1", "pods", ns, "late") or {}).get("spec", {}).get("nodeName") == freed,
             what="the late pod on the board that was freed")
