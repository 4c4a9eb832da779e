"""A ReplicationController on real agents: it keeps its replicas running, replaces a deleted pod, and scales with
kubectl 1.20 and 1.33; a selector that does not select the template is refused as Kubernetes words it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.network.conftest import NetCluster, kubectl, kubectl_cluster, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rc_cluster(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any, docker_client: Any,
               dev_images: Any) -> Iterator[tuple[NetCluster, Path]]:
    with kubectl_cluster(tmp_path_factory.mktemp("rc"), docker_engine, docker_client, dev_images) as pair:
        yield pair



def test_a_replication_controller_keeps_and_scales_its_pods(rc_cluster: tuple[NetCluster, Path]) -> None:
    c, config = rc_cluster
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "web"},
          "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
              {"name": "web", "image": c.images.busybox, "command": ["sleep", "3600"]}]}}}}
    kubectl(config, "old", "create", "-f", "-", input=json.dumps(rc))

    def running() -> list[str]:
        pods = json.loads(kubectl(config, "new", "get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
        return sorted(p["metadata"]["name"] for p in pods if (p.get("status") or {}).get("phase") == "Running"
                      and not p["metadata"].get("deletionTimestamp"))

    first = wait_for("three running pods", lambda: (lambda r: r if len(r) == 3 else None)(running()), 60, 0.5)
    got = json.loads(kubectl(config, "new", "get", "rc", "web", "-o", "json").stdout)
    assert got["spec"]["selector"] == {"app": "web"}  # defaulted from the template's labels
    kubectl(config, "new", "delete", "pod", first[0], "--wait=false")
    wait_for("a replacement", lambda: (lambda r: r if len(r) == 3 and first[0] not in r else None)(running()), 60, 0.5)
    kubectl(config, "old", "scale", "rc", "web", "--replicas=1")
    wait_for("one pod left", lambda: len(running()) == 1 and len(json.loads(kubectl(
        config, "new", "get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]) == 1, 60, 0.5)
    kubectl(config, "new", "scale", "rc", "web", "--replicas=2")
    wait_for("two pods again", lambda: len(running()) == 2, 60, 0.5)
    table = kubectl(config, "new", "get", "rc", "web", "--no-headers").stdout.split()
    assert table[:4] == ["web", "2", "2", "2"]
    bad = {**rc, "metadata": {"name": "bad"}, "spec": {**rc["spec"], "selector": {"app": "other"}}}
    refused = kubectl(config, "new", "create", "-f", "-", input=json.dumps(bad), check=False)
    assert refused.returncode != 0
    assert ('spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: selector does not '
            "match template labels") in refused.stderr
