"""A pod talks to the API with its service account: the official Python client's `load_incluster_config()` on a
worker board reads the projected token, CA and namespace, reaches the master through the `kubernetes` service,
lists pods as the `view` role lets it, and is refused deletes and secrets with Kubernetes' 403.

The pod runs this machine's Python and its `kubernetes` package (the test's own), mounted read-only from the
host into the busybox image, so no registry is needed."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.network.conftest import NetCluster, kubectl, kubectl_cluster, wait_for

pytestmark = pytest.mark.integration
Obj = dict[str, Any]
NS = "incluster"

SCRIPT = textwrap.dedent("""
    import json, os
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException
    config.load_incluster_config()
    v1 = client.CoreV1Api()
    out = {"host": os.environ["KUBERNETES_SERVICE_HOST"], "port": os.environ["KUBERNETES_SERVICE_PORT"],
           "namespace": open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read(),
           "pods": sorted(p.metadata.name for p in v1.list_namespaced_pod("incluster").items)}
    for what, call in (("delete", lambda: v1.delete_namespaced_pod("victim", "incluster")),
                       ("secrets", lambda: v1.list_namespaced_secret("incluster"))):
        try:
            call()
            out[what] = "allowed"
        except ApiException as exc:
            out[what] = [exc.status, exc.reason, json.loads(exc.body)["message"]]
    print("RESULT " + json.dumps(out), flush=True)
""")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any, docker_client: Any,
            dev_images: Any) -> Iterator[tuple[NetCluster, Path]]:
    with kubectl_cluster(tmp_path_factory.mktemp("incluster"), docker_engine, docker_client, dev_images) as pair:
        yield pair



def host_python_mounts() -> list[str]:
    """The host directories this Python needs, mounted at the same paths in the pod."""
    wanted = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent.parent,
              Path("/lib"), Path("/lib64"), Path("/usr/lib")}
    return sorted(str(p) for p in wanted if p.exists())


def client_pod(c: NetCluster, name: str, board: str, account: str) -> Obj:
    mounts = host_python_mounts()
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": {"serviceAccountName": account, "restartPolicy": "Never", "nodeName": c.node(board),
                     "containers": [{"name": "client", "image": c.images.busybox,
                                     "command": [str(Path(sys.prefix) / "bin" / "python"), "-c", SCRIPT],
                                     "env": [{"name": "HOME", "value": "/tmp"}],
                                     "volumeMounts": [{"name": f"host{i}", "mountPath": p, "readOnly": True}
                                                      for i, p in enumerate(mounts)]}],
                     "volumes": [{"name": f"host{i}", "hostPath": {"path": p, "type": "Directory"}}
                                 for i, p in enumerate(mounts)]}}


def test_a_pod_uses_the_api_with_its_service_account_on_any_board(cluster: tuple[NetCluster, Path]) -> None:
    c, config = cluster
    kubectl(config, "new", "create", "namespace", NS)
    kubectl(config, "new", "-n", NS, "create", "serviceaccount", "reader")
    kubectl(config, "new", "-n", NS, "create", "rolebinding", "reader-view", "--clusterrole=view",
            f"--serviceaccount={NS}:reader")
    victim = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "victim", "namespace": NS},
              "spec": {"containers": [{"name": "c", "image": c.images.busybox, "command": ["sleep", "3600"]}],
                       "terminationGracePeriodSeconds": 1}}
    kubectl(config, "new", "create", "-f", "-", input=json.dumps(victim))
    wait_for("kube-root-ca.crt", lambda: kubectl(config, "new", "-n", NS, "get", "configmap", "kube-root-ca.crt",
                                                 check=False).returncode == 0, 20, 0.3)
    made = json.loads(kubectl(config, "new", "create", "-f", "-", "-o", "json",
                              input=json.dumps(client_pod(c, "probe-b2", "b2", "reader"))).stdout)
    [volume] = [v for v in made["spec"]["volumes"] if v["name"].startswith("kube-api-access-")]
    assert volume["projected"]["sources"][0] == {
        "serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    mount = made["spec"]["containers"][0]["volumeMounts"][-1]
    assert mount == {"name": volume["name"], "readOnly": True,
                     "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
    kubectl(config, "new", "create", "-f", "-", input=json.dumps(client_pod(c, "probe-b3", "b3", "reader")))

    for pod in ("probe-b2", "probe-b3"):
        def finished(pod: str = pod) -> str | None:
            got = json.loads(kubectl(config, "new", "-n", NS, "get", "pod", pod, "-o", "json").stdout)
            return str(got["status"].get("phase")) if got["status"].get("phase") in ("Succeeded", "Failed") \
                else None

        phase = wait_for(f"{pod} finished", finished, 120, 0.5)
        logs = kubectl(config, "new", "-n", NS, "logs", pod).stdout
        assert phase == "Succeeded", logs
        result = json.loads(logs.split("RESULT ", 1)[1])
        assert result["host"] == "10.96.0.1" and result["port"] == "443" and result["namespace"] == NS
        assert {"victim", "probe-b2", "probe-b3"} <= set(result["pods"])
        assert result["delete"] == [403, "Forbidden", f'pods "victim" is forbidden: User '
                                    f'"system:serviceaccount:{NS}:reader" cannot delete resource "pods" in API '
                                    f'group "" in the namespace "{NS}"']
        assert result["secrets"][0] == 403 and 'cannot list resource "secrets"' in result["secrets"][2]


def test_an_account_that_does_not_exist_is_refused_and_automount_can_be_off(cluster: tuple[NetCluster, Path]) -> None:
    c, config = cluster
    kubectl(config, "new", "create", "namespace", "noauto", check=False)
    refused = kubectl(config, "new", "create", "-f", "-", check=False, input=json.dumps(
        {**client_pod(c, "ghost", "b1", "nobody"), "metadata": {"name": "ghost", "namespace": "noauto"}}))
    assert refused.returncode != 0
    assert ('pods "ghost" is forbidden: error looking up service account noauto/nobody: serviceaccount "nobody" '
            "not found") in refused.stderr
    quiet = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "quiet", "namespace": "noauto"},
             "spec": {"automountServiceAccountToken": False,
                      "containers": [{"name": "c", "image": c.images.busybox, "command": ["sleep", "1"]}]}}
    made = json.loads(kubectl(config, "new", "create", "-f", "-", "-o", "json", input=json.dumps(quiet)).stdout)
    assert not made["spec"].get("volumes") and not made["spec"]["containers"][0].get("volumeMounts")
