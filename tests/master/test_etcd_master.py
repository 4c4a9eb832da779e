"""Masters on etcd: real kubectl (1.20, 1.33) and the Python client against a master whose state is in a real etcd,
and a second master on the same etcd serving the same objects and watches."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pikube.dev.netlab import wait_for
from tests.master.conftest import RunningMaster, kubectl, kubectl_path, start_master

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from pikube.dev.etcd import EtcdMissing, start_etcd
    from tests.conftest import require

    try:
        server = start_etcd(tmp_path_factory.mktemp("etcd") / "data")
    except EtcdMissing as exc:
        require(False, str(exc))
        raise
    yield server
    server.stop()


@pytest.fixture(scope="module")
def masters(tmp_path_factory: pytest.TempPathFactory, etcd: Any) -> Iterator[tuple[RunningMaster, RunningMaster]]:
    base = tmp_path_factory.mktemp("masters")
    first = start_master(base / "a", extra_args=("--datastore-endpoint", etcd.client_url))
    # The second master shares the first's CA (as a joined master does); leader election decides which one
    # runs the controllers.
    (base / "b").mkdir()
    shutil.copytree(base / "a" / "pki", base / "b" / "pki")
    second = start_master(base / "b", extra_args=("--datastore-endpoint", etcd.client_url))
    yield first, second
    second.stop()
    first.stop()


@pytest.mark.parametrize("which", ["old", "new"])
def test_kubectl_against_a_master_on_etcd(masters: tuple[RunningMaster, RunningMaster], which: str,
                                          tmp_path: Path) -> None:
    m, other = masters
    ns = f"etcd-{which}"
    kubectl(m, which, "create", "namespace", ns)
    kubectl(m, which, "-n", ns, "create", "deployment", "web", "--image=pikube/busybox:1", "--replicas=2")
    # The first master's controllers act on it: a ReplicaSet and two pods, stored in etcd.
    def two_pods() -> list[Any] | None:
        pods: list[Any] = json.loads(kubectl(m, which, "-n", ns, "get", "pods", "-o", "json").stdout)["items"]
        return pods if len(pods) == 2 else None

    wait_for("the deployment's two pods", two_pods, 30, 0.2)
    kubectl(m, which, "-n", ns, "scale", "deployment", "web", "--replicas=3")
    kubectl(m, which, "-n", ns, "patch", "deployment", "web", "-p", '{"metadata": {"labels": {"tier": "front"}}}')
    # The other master reads the same state.
    got = json.loads(kubectl(other, which, "-n", ns, "get", "deployment", "web", "-o", "json").stdout)
    assert got["spec"]["replicas"] == 3 and got["metadata"]["labels"]["tier"] == "front"
    stale = {**got, "spec": {**got["spec"], "replicas": 5}}
    kubectl(m, which, "-n", ns, "scale", "deployment", "web", "--replicas=4")
    conflict = kubectl(other, which, "-n", ns, "replace", "-f", "-", input=json.dumps(stale), check=False)
    assert conflict.returncode != 0 and "the object has been modified" in conflict.stderr
    missing = kubectl(other, which, "-n", ns, "get", "deployment", "nope", check=False)
    assert 'deployments.apps "nope" not found' in missing.stderr


def test_a_watch_on_one_master_sees_writes_through_the_other(masters: tuple[RunningMaster, RunningMaster]) -> None:
    m, other = masters
    kubectl(m, "new", "create", "namespace", "etcd-watch")
    watch = subprocess.Popen([kubectl_path("new"), "--kubeconfig", str(other.kubeconfig), "-n", "etcd-watch", "get",
                              "configmaps", "--watch", "--output-watch-events", "-o", "name"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # (No wait for the watch to start: it lists first, so an object made before it watches is printed too.)
        kubectl(m, "new", "-n", "etcd-watch", "create", "configmap", "seen", "--from-literal=a=b")
        assert watch.stdout is not None
        line = watch.stdout.readline()
        while "kube-root-ca.crt" in line:  # every namespace's CA bundle, made by the controllers meanwhile
            line = watch.stdout.readline()
        assert "configmap/seen" in line
    finally:
        watch.terminate()
        watch.wait(10)


def test_the_python_client_pages_through_a_list_served_from_etcd(masters: tuple[RunningMaster, RunningMaster]) -> None:
    from kubernetes import client, config

    m, other = masters
    core_a = client.CoreV1Api(config.new_client_from_config(config_file=str(m.kubeconfig)))
    core_b = client.CoreV1Api(config.new_client_from_config(config_file=str(other.kubeconfig)))
    core_a.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="etcd-pages")))
    for i in range(7):
        core_a.create_namespaced_config_map("etcd-pages", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=f"cm-{i}"), data={"i": str(i)}))
    first = core_a.list_namespaced_config_map("etcd-pages", limit=3)
    core_a.delete_namespaced_config_map("cm-5", "etcd-pages")
    # The continue token works on the other master: the pages are read at the first page's revision.
    names = [c.metadata.name for c in first.items]
    token = first.metadata._continue
    while token:
        page = core_b.list_namespaced_config_map("etcd-pages", limit=3, _continue=token)
        names += [c.metadata.name for c in page.items]
        token = page.metadata._continue
    assert [n for n in names if n != "kube-root-ca.crt"] == [f"cm-{i}" for i in range(7)]


def test_a_crd_made_through_one_master_is_served_by_the_other(masters: tuple[RunningMaster, RunningMaster]) -> None:
    """Each master follows the CRDs in etcd: a CRD created through one is served by the other at once, its
    objects are shared, and deleting it through the other removes them and stops both serving it."""
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    m, other = masters
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "gadgets.ha.example.com"},
           "spec": {"group": "ha.example.com", "scope": "Namespaced", "names": {"plural": "gadgets", "kind": "Gadget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {"type": "object", "properties": {
                            "size": {"type": "integer", "maximum": 5}}}}}}}]}}
    kubectl(m, "new", "create", "-f", "-", input=json.dumps(crd))
    objs_b = client.CustomObjectsApi(config.new_client_from_config(config_file=str(other.kubeconfig)))

    def create_on_b() -> bool:
        try:
            objs_b.create_namespaced_custom_object("ha.example.com", "v1", "default", "gadgets", {
                "apiVersion": "ha.example.com/v1", "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {"size": 3}})
            return True
        except ApiException as exc:
            if exc.status != 404:
                raise
            return False

    wait_for("the second master serves the new CRD", create_on_b, timeout=5.0)
    with pytest.raises(ApiException) as bad:  # validated by the second master with the CRD's schema
        objs_b.create_namespaced_custom_object("ha.example.com", "v1", "default", "gadgets", {
            "apiVersion": "ha.example.com/v1", "kind": "Gadget", "metadata": {"name": "g2"}, "spec": {"size": 9}})
    assert bad.value.status == 422
    assert "g1" in kubectl(m, "new", "get", "gadgets").stdout
    kubectl(other, "new", "delete", "crd", "gadgets.ha.example.com")

    def unserved_on_a() -> bool:
        return kubectl(m, "new", "get", "--raw", "/apis/ha.example.com/v1", check=False).returncode != 0

    wait_for("the first master stops serving the deleted CRD", unserved_on_a, timeout=5.0)


def test_one_leader_runs_the_controllers_and_another_takes_over_when_it_dies(
        tmp_path: Path, etcd: Any) -> None:
    """Three masters on one etcd: a Deployment gets exactly its replicas (one controller manager acts), and a
    kill -9 of the leading master hands the lease to another, whose controllers converge a scale made after."""
    first = start_master(tmp_path / "m0", extra_args=("--datastore-endpoint", etcd.client_url,
                                                      "--datastore-prefix", "/failover", "--board-node", "m0"))
    others = []
    for i in (1, 2):
        (tmp_path / f"m{i}").mkdir()
        shutil.copytree(tmp_path / "m0" / "pki", tmp_path / f"m{i}" / "pki")
        others.append(start_master(tmp_path / f"m{i}", extra_args=("--datastore-endpoint", etcd.client_url,
                                                                   "--datastore-prefix", "/failover",
                                                                   "--board-node", f"m{i}")))
    masters = {m.port: m for m in (first, *others)}
    by_board = {f"m{i}": m for i, m in enumerate((first, *others))}
    try:
        def holder() -> str:
            lease = json.loads(kubectl(first if first.proc.poll() is None else others[0], "new", "-n",
                                       "kube-system", "get", "lease", "pikube-controller-manager", "-o",
                                       "json", check=False).stdout or "{}")
            return str((lease.get("spec") or {}).get("holderIdentity") or "")

        def endpoint_ports() -> set[int]:
            ep = json.loads(kubectl(survivor_or_first(), "new", "get", "endpoints", "kubernetes", "-o",
                                    "json").stdout)
            return {p["port"] for sub in ep.get("subsets") or [] for p in sub.get("ports") or []}

        def survivor_or_first() -> RunningMaster:
            return next(m for m in masters.values() if m.proc.poll() is None)

        # Every live master lists itself in default/kubernetes (what agents fail over with).
        wait_for("all three masters in the kubernetes Endpoints", lambda: endpoint_ports() == set(masters), 30, 0.2)
        leader_id = wait_for("a leader", holder, 30, 0.2)
        leader = by_board[leader_id.split("_")[0]]  # `<board>_<random>`, as kube-controller-manager's
        survivor = next(m for m in masters.values() if m is not leader)
        kubectl(survivor, "new", "create", "deployment", "web", "--image=pikube/busybox:1", "--replicas=3")

        def pods() -> int:
            items = json.loads(kubectl(survivor, "new", "get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
            return len(items)

        wait_for("three pods", lambda: pods() == 3, 30, 0.2)
        leader.proc.kill()  # kill -9: no release of the lease
        leader.proc.wait(10)
        killed = time.monotonic()
        kubectl(survivor, "new", "scale", "deployment", "web", "--replicas=5")
        new_id = wait_for("a new leader", lambda: (lambda h: h if h and h != leader_id else None)(holder()), 40, 0.2)
        elected = time.monotonic() - killed
        print(f"new leader {new_id} elected {elected:.1f} s after the leader was killed")
        assert elected <= 20.0
        wait_for("five pods under the new leader", lambda: pods() == 5, 30, 0.2)
        # Exactly five: one controller manager at a time, no duplicate pods.
        assert pods() == 5
        # A master that stops takes itself out of the Endpoints at once (one killed waits for its lease to run out).
        third = next(m for m in masters.values() if m is not leader and m is not survivor)
        third.stop()
        wait_for("the stopped master out of the Endpoints", lambda: third.port not in endpoint_ports(), 10, 0.2)
        assert survivor.port in endpoint_ports()
    finally:
        for m in masters.values():
            m.stop()
