"""The Endpoints controller, one `sync` at a time: which pod addresses a Service's Endpoints list, and where.

Driven through `direct.py`: an in-process store written through the API's handlers,
informers that relist only when the test says so, and the controller's queued keys
run by hand. The controller promises, for each Service with a selector, the
matching pods that have an IP and are neither terminating nor finished: Ready ones
under `addresses`, the others under `notReadyAddresses` (all under `addresses`
with `publishNotReadyAddresses`); a named `targetPort` resolved per pod from its
container ports, pods grouped into subsets by their resolved ports; the Service's
labels copied; nothing written when nothing changed; Endpoints of a deleted
Service deleted; Services without a selector left to their owners. kube-proxy and
DNS read these objects, so a wrong address here is traffic sent to the wrong pod.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.workqueue import WorkQueue
from master.controllers.endpoints import TRIGGER, EndpointsController
from tests.master.controllers.direct import Harness, harness

Obj = dict[str, Any]
NS = "default"
KEY = f"{NS}/web"


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    with harness(tmp_path, namespaces=(NS, "other")) as h:
        yield h


@pytest.fixture
def epc(h: Harness) -> EndpointsController:
    return h.build(EndpointsController)


def make_service(h: Harness, name: str = "web", selector: dict[str, str] | None = None,
                 ports: list[Obj] | None = None, labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    body: Obj = {"ports": [{"port": 80, "targetPort": 8080}] if ports is None else ports, **spec}
    if selector is not None:
        body["selector"] = selector
    return h.client.create(h.kinds.services, NS, {"metadata": {"name": name, "labels": labels or {}}, "spec": body})


def make_pod(h: Harness, name: str, ip: str | None = None, ready: bool = True, labels: dict[str, str] | None = None,
             ports: list[Obj] | None = None, ns: str = NS, node: str = "") -> Obj:
    """A pod as the kubelet reports it: with `ip` it is Running (Ready or not), without it still Pending."""
    spec: Obj = {"containers": [{"name": "web", "image": "nginx:1", "ports": ports or []}]}
    if node:
        spec["nodeName"] = node
    pod = h.client.create(h.kinds.pods, ns, {"metadata": {"name": name, "labels": labels or {"app": "web"}},
                                             "spec": spec})
    if ip is not None:
        pod = set_status(h, name, ip, ready, ns)
    return pod


def set_status(h: Harness, name: str, ip: str, ready: bool, ns: str = NS, phase: str = "Running") -> Obj:
    return h.client.patch(h.kinds.pods, ns, name, {"status": {
        "phase": phase, "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}, subresource="status")


def endpoints(h: Harness, name: str = "web") -> Obj | None:
    return h.client.get(h.kinds.endpoints, NS, name)


def subsets(h: Harness, name: str = "web") -> list[Obj]:
    ep = endpoints(h, name)
    assert ep is not None, f"no Endpoints {name}"
    found: list[Obj] = ep.get("subsets") or []
    return found


def ips(subset: Obj, field: str = "addresses") -> list[str]:
    return [a["ip"] for a in subset.get(field) or []]


def summary(h: Harness, name: str = "web") -> list[tuple[list[Obj], list[str], list[str]]]:
    """Each subset as (ports, ready IPs, not-ready IPs)."""
    return [(s["ports"], ips(s), ips(s, "notReadyAddresses")) for s in subsets(h, name)]


# --- addresses ----------------------------------------------------------------------------------------


def test_ready_pods_are_addresses_and_the_others_not_ready_addresses(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "web"})
    a = make_pod(h, "a", "10.244.0.11", ready=True, node="n1")
    make_pod(h, "b", "10.244.0.12", ready=False)
    make_pod(h, "c")  # no IP yet
    make_pod(h, "d", "10.244.0.14", labels={"app": "db"})  # another app
    make_pod(h, "e", "10.244.0.15", ns="other")  # same labels, another namespace
    h.settle(epc)
    assert summary(h) == [([{"port": 8080, "protocol": "TCP"}], ["10.244.0.11"], ["10.244.0.12"])]
    [address] = subsets(h)[0]["addresses"]
    assert address == {"ip": "10.244.0.11", "nodeName": "n1", "targetRef": {
        "kind": "Pod", "namespace": NS, "name": "a", "uid": a["metadata"]["uid"]}}
    assert "nodeName" not in subsets(h)[0]["notReadyAddresses"][0], "an unbound pod names no node"


def test_a_service_with_no_matching_pods_gets_empty_endpoints(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "web"}, labels={"tier": "front"})
    h.settle(epc)
    ep = endpoints(h)
    assert ep is not None and not ep.get("subsets")
    assert ep["metadata"]["labels"] == {"tier": "front"}, "the Service's labels"
    assert TRIGGER in ep["metadata"]["annotations"]


def test_addresses_follow_the_pods(h: Harness, epc: EndpointsController) -> None:
    """Pod events alone bring the Service back: readiness, labels that stop matching, deletion."""
    make_service(h, selector={"app": "web"})
    make_pod(h, "a", "10.244.0.11", ready=False)
    make_pod(h, "b", "10.244.0.12", ready=True)
    h.settle(epc)
    assert summary(h)[0][1:] == (["10.244.0.12"], ["10.244.0.11"])

    set_status(h, "a", "10.244.0.11", ready=True)
    h.catch_up("pods")
    assert h.run(epc) == [KEY]
    assert summary(h)[0][1:] == (["10.244.0.11", "10.244.0.12"], [])
    h.settle(epc)  # the Endpoints informer hears of the write

    h.client.patch(h.kinds.pods, NS, "b", {"metadata": {"labels": {"app": "retired"}}})
    h.catch_up("pods")
    assert h.run(epc) == [KEY], "the pod's old labels matched: the Service is looked at"
    assert summary(h)[0][1:] == (["10.244.0.11"], [])
    h.settle(epc)

    h.client.delete(h.kinds.pods, NS, "a")  # unbound: gone at once
    h.catch_up("pods")
    assert h.run(epc) == [KEY]
    assert subsets(h) == []


def test_a_pod_that_starts_matching_is_added(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "web"})
    make_pod(h, "a", "10.244.0.11", labels={"app": "staging"})
    h.settle(epc)
    assert subsets(h) == []
    h.client.patch(h.kinds.pods, NS, "a", {"metadata": {"labels": {"app": "web"}}})
    h.catch_up("pods")
    assert h.run(epc) == [KEY]
    assert summary(h)[0][1] == ["10.244.0.11"]


def test_pods_of_unrelated_services_queue_nothing(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "web"})
    h.settle(epc)
    make_pod(h, "d", "10.244.0.14", labels={"app": "db"})
    make_pod(h, "e", "10.244.0.15", ns="other")
    h.catch_up("pods")
    assert h.run(epc) == []


def test_terminating_and_finished_pods_are_left_out(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "web"})
    make_pod(h, "live", "10.244.0.11", node="n1")
    make_pod(h, "going", "10.244.0.12", node="n1")
    make_pod(h, "done", "10.244.0.13", node="n1")
    make_pod(h, "failed", "10.244.0.14", node="n1")
    set_status(h, "done", "10.244.0.13", ready=False, phase="Succeeded")
    set_status(h, "failed", "10.244.0.14", ready=False, phase="Failed")
    h.client.delete(h.kinds.pods, NS, "going")  # bound: terminating for its grace period
    going = h.client.get(h.kinds.pods, NS, "going")
    assert going is not None and going["metadata"].get("deletionTimestamp")
    h.settle(epc)
    assert summary(h) == [([{"port": 8080, "protocol": "TCP"}], ["10.244.0.11"], [])]


def test_publish_not_ready_addresses_lists_every_pod_as_ready(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "web"}, publishNotReadyAddresses=True)
    make_pod(h, "a", "10.244.0.11", ready=False)
    make_pod(h, "b", "10.244.0.12", ready=True)
    make_pod(h, "c")
    h.settle(epc)
    assert summary(h)[0][1:] == (["10.244.0.11", "10.244.0.12"], [])


def test_publish_not_ready_addresses_keeps_terminating_pods(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "web"}, publishNotReadyAddresses=True)
    make_pod(h, "going", "10.244.0.12", node="n1")
    h.client.delete(h.kinds.pods, NS, "going")
    h.settle(epc)
    assert summary(h)[0][1:] == (["10.244.0.12"], [])


def test_addresses_are_sorted_and_stable(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "web"})
    for i, ip in enumerate(["10.244.1.9", "10.244.0.20", "10.244.0.3"]):
        make_pod(h, f"p{i}", ip)
    h.settle(epc)
    assert summary(h)[0][1] == ["10.244.0.20", "10.244.0.3", "10.244.1.9"]


# --- ports --------------------------------------------------------------------------------------------


def test_a_named_target_port_is_resolved_per_pod(h: Harness, epc: EndpointsController) -> None:
    """Two versions serve `http` on different numbers: one subset per number; a pod without `http` is left out."""
    make_service(h, selector={"app": "web"}, ports=[{"port": 80, "targetPort": "http"}])
    make_pod(h, "v1", "10.244.0.11", ports=[{"name": "http", "containerPort": 8080}])
    make_pod(h, "v1-b", "10.244.0.12", ready=False, ports=[{"name": "http", "containerPort": 8080}])
    make_pod(h, "v2", "10.244.0.13", ports=[{"name": "metrics", "containerPort": 9090},
                                            {"name": "http", "containerPort": 9000}])
    make_pod(h, "bare", "10.244.0.14", ports=[{"name": "admin", "containerPort": 8080}])
    h.settle(epc)
    assert summary(h) == [([{"port": 8080, "protocol": "TCP"}], ["10.244.0.11"], ["10.244.0.12"]),
                          ([{"port": 9000, "protocol": "TCP"}], ["10.244.0.13"], [])]


def test_named_ports_keep_their_names_and_match_the_protocol(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "dns"}, ports=[
        {"name": "dns", "port": 53, "targetPort": "dns", "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "targetPort": "dns", "protocol": "TCP"},
        {"name": "metrics", "port": 9153, "targetPort": 9153}])
    make_pod(h, "a", "10.244.0.11", labels={"app": "dns"}, ports=[
        {"name": "dns", "containerPort": 5353, "protocol": "UDP"},
        {"name": "dns", "containerPort": 5354, "protocol": "TCP"}])
    make_pod(h, "b", "10.244.0.12", labels={"app": "dns"}, ports=[
        {"name": "dns", "containerPort": 5353, "protocol": "UDP"}])
    h.settle(epc)
    assert summary(h) == [
        ([{"name": "dns", "port": 5353, "protocol": "UDP"}, {"name": "dns-tcp", "port": 5354, "protocol": "TCP"},
          {"name": "metrics", "port": 9153, "protocol": "TCP"}], ["10.244.0.11"], []),
        ([{"name": "dns", "port": 5353, "protocol": "UDP"}, {"name": "metrics", "port": 9153, "protocol": "TCP"}],
         ["10.244.0.12"], []),
    ]


def test_a_target_port_defaults_to_the_port(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "web"}, ports=[{"port": 8443}])
    make_pod(h, "a", "10.244.0.11")
    h.settle(epc)
    assert summary(h) == [([{"port": 8443, "protocol": "TCP"}], ["10.244.0.11"], [])]


# --- kinds of Service ---------------------------------------------------------------------------------


def test_a_headless_service_lists_its_pods(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "web"}, clusterIP="None")
    make_pod(h, "a", "10.244.0.11")
    h.settle(epc)
    assert summary(h) == [([{"port": 8080, "protocol": "TCP"}], ["10.244.0.11"], [])]


def test_a_headless_service_without_ports_lists_its_pods(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "web"}, clusterIP="None", ports=[])
    make_pod(h, "a", "10.244.0.11")
    h.settle(epc)
    [subset] = subsets(h)
    assert ips(subset) == ["10.244.0.11"] and not subset.get("ports")


def test_headless_endpoints_carry_the_headless_label(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "web"}, clusterIP="None", labels={"tier": "db"})
    h.settle(epc)
    ep = endpoints(h)
    assert ep is not None and ep["metadata"]["labels"] == {"tier": "db", "service.kubernetes.io/headless": ""}


def test_an_external_name_service_gets_no_endpoints(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "web"}, type="ExternalName", externalName="db.example.com")
    make_pod(h, "a", "10.244.0.11")
    h.settle(epc)
    assert endpoints(h) is None


def test_a_service_without_a_selector_is_left_to_its_owner(h: Harness, epc: EndpointsController) -> None:
    make_service(h, ports=[{"port": 5432}])
    manual = h.client.create(h.kinds.endpoints, NS, {"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "192.168.1.50"}], "ports": [{"port": 5432, "protocol": "TCP"}]}]})
    make_pod(h, "a", "10.244.0.11")
    h.catch_up()
    assert KEY in h.run(epc)
    h.settle(epc)
    ep = endpoints(h)
    assert ep is not None and ep["metadata"]["resourceVersion"] == manual["metadata"]["resourceVersion"]


def test_a_selector_removed_leaves_the_endpoints_as_they_were(h: Harness, epc: EndpointsController) -> None:
    svc = make_service(h, selector={"app": "web"})
    make_pod(h, "a", "10.244.0.11")
    h.settle(epc)
    before = endpoints(h)
    svc["spec"].pop("selector")
    h.client.update(h.kinds.services, svc)
    make_pod(h, "b", "10.244.0.12")
    h.settle(epc)
    assert endpoints(h) == before, "no longer managed: neither updated nor deleted"


def test_endpoints_created_before_their_selectorless_service_survive(h: Harness, epc: EndpointsController) -> None:
    h.client.create(h.kinds.endpoints, NS, {"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "192.168.1.50"}], "ports": [{"port": 5432, "protocol": "TCP"}]}]})
    h.catch_up()
    h.run(epc)
    make_service(h, ports=[{"port": 5432}])
    h.settle(epc)
    assert summary(h) == [([{"port": 5432, "protocol": "TCP"}], ["192.168.1.50"], [])]


def test_endpoints_of_unmanaged_services_bring_nothing_up(h: Harness, epc: EndpointsController) -> None:
    """Writes to Endpoints the controller does not manage are not its business; a deletion always is."""
    make_service(h, "manual", ports=[{"port": 5432}])
    make_service(h, "alias", selector={"app": "web"}, type="ExternalName", externalName="db.example.com")
    h.settle(epc)
    for name in ("manual", "alias", "orphan"):
        h.client.create(h.kinds.endpoints, NS, {"metadata": {"name": name}, "subsets": [
            {"addresses": [{"ip": "192.168.1.50"}], "ports": [{"port": 5432, "protocol": "TCP"}]}]})
    h.catch_up()
    assert h.run(epc) == []
    h.client.delete(h.kinds.endpoints, NS, "manual")
    h.catch_up()
    assert h.run(epc) == [f"{NS}/manual"]
    assert endpoints(h, "manual") is None, "not the controller's to put back"
    assert endpoints(h, "orphan") is not None


def test_leftover_endpoints_are_swept_once_at_start_up(h: Harness, epc: EndpointsController) -> None:
    """Endpoints whose Service was deleted while no controller watched have no event left to bring them up."""
    make_service(h, selector={"app": "web"})
    make_service(h, "manual", ports=[{"port": 5432}])
    for name in ("manual", "gone"):
        h.client.create(h.kinds.endpoints, NS, {"metadata": {"name": name}})
    h.client.create(h.kinds.endpoints, NS, {"metadata": {"name": "lock", "annotations": {
        "control-plane.alpha.kubernetes.io/leader": "{}"}}})
    h.settle(epc)
    assert endpoints(h, "gone") is not None
    epc.queue_leftovers()  # what `start` does once the caches have synced
    h.settle(epc)
    assert endpoints(h, "gone") is None
    assert endpoints(h, "manual") is not None and endpoints(h, "lock") is not None, "a Service's, a leader lock"
    assert endpoints(h) is not None


# --- the Endpoints object -----------------------------------------------------------------------------


def test_service_labels_are_copied_and_kept_in_step(h: Harness, epc: EndpointsController) -> None:
    svc = make_service(h, selector={"app": "web"}, labels={"tier": "front"})
    make_pod(h, "a", "10.244.0.11")
    h.settle(epc)
    svc["metadata"]["labels"] = {"tier": "edge", "team": "web"}
    h.client.update(h.kinds.services, svc)
    h.catch_up("services")
    assert h.run(epc) == [KEY]
    ep = endpoints(h)
    assert ep is not None and ep["metadata"]["labels"] == {"tier": "edge", "team": "web"}
    assert summary(h)[0][1] == ["10.244.0.11"], "the addresses are unchanged"


def test_nothing_changed_nothing_written(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "web"})
    make_pod(h, "a", "10.244.0.11")
    h.settle(epc)
    h.client.patch(h.kinds.pods, NS, "a", {"metadata": {"annotations": {"note": "irrelevant"}}})
    revision = h.store.revision()
    h.catch_up()
    assert h.run(epc) == [KEY], "the pod's change is looked at"
    assert h.store.revision() == revision, "the same subsets and labels are not written again"


def test_a_deleted_service_takes_its_endpoints_along(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "web"})
    make_service(h, "api", selector={"app": "web"})
    make_pod(h, "a", "10.244.0.11")
    h.settle(epc)
    assert endpoints(h) is not None and endpoints(h, "api") is not None
    h.client.delete(h.kinds.services, NS, "web")
    h.catch_up("services")
    assert h.run(epc) == [KEY]
    assert endpoints(h) is None
    assert endpoints(h, "api") is not None, "only the deleted Service's"


def test_endpoints_deleted_by_hand_come_back(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "web"})
    make_pod(h, "a", "10.244.0.11")
    h.settle(epc)
    h.client.delete(h.kinds.endpoints, NS, "web")
    h.settle(epc)
    assert summary(h)[0][1] == ["10.244.0.11"]


def test_endpoints_edited_by_hand_are_put_right(h: Harness, epc: EndpointsController) -> None:
    make_service(h, selector={"app": "web"})
    make_pod(h, "a", "10.244.0.11")
    h.settle(epc)
    ep = endpoints(h)
    assert ep is not None
    ep["subsets"] = [{"addresses": [{"ip": "6.6.6.6"}], "ports": [{"port": 1, "protocol": "TCP"}]}]
    h.client.update(h.kinds.endpoints, ep)
    h.catch_up("endpoints")
    assert h.run(epc) == [KEY]
    assert summary(h) == [([{"port": 8080, "protocol": "TCP"}], ["10.244.0.11"], [])]


def test_a_lagging_endpoints_cache_retries_after_a_back_off(h: Harness, epc: EndpointsController) -> None:
    """Created, but the Endpoints informer has not seen it: the next sync's create is refused, and the key comes
    back after the queue's back-off (longer with each refusal, not at once) until the cache has caught up; then
    the update goes through and the back-off starts over."""
    now = [0.0]
    epc.queue = WorkQueue(epc.name, clock=lambda: now[0])
    make_service(h, selector={"app": "web"})
    make_pod(h, "a", "10.244.0.11")
    h.catch_up()
    assert h.run(epc) == [KEY]
    assert summary(h)[0][1] == ["10.244.0.11"]
    make_pod(h, "b", "10.244.0.12")
    h.catch_up("pods")  # the endpoints informer still does not know its own creation
    for failures in (1, 2):
        key = epc.queue.get(timeout=0)
        assert key == KEY
        epc.process(key)  # AlreadyExists: as a worker runs it
        assert epc.queue.failures(KEY) == failures
        assert epc.queue.get(timeout=0) is None, "not again at once"
        now[0] += 60.0  # the longest back-off
    assert summary(h)[0][1] == ["10.244.0.11"], "nothing overwritten on the word of a stale cache"
    h.catch_up("endpoints")
    key = epc.queue.get(timeout=0)
    assert key == KEY, "back after the back-off"
    epc.process(key)
    assert summary(h)[0][1] == ["10.244.0.11", "10.244.0.12"]
    assert epc.queue.failures(KEY) == 0
