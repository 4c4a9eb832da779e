"""Real kubectl, oldest (1.20) and newest (1.33), against a real master over TLS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from tests.master.conftest import RunningMaster, kubectl, kubectl_path

pytestmark = pytest.mark.integration
VERSIONS = ["old", "new"]

DEPLOYMENT = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      namespace: {ns}
      labels: {{app: web}}
    spec:
      replicas: 2
      selector:
        matchLabels: {{app: web}}
      template:
        metadata:
          labels: {{app: web}}
        spec:
          containers:
          - name: web
            image: pikube/busybox:1
            ports:
            - containerPort: 80
            {extra_port}
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: web
      namespace: {ns}
    spec:
      selector: {{app: web}}
      ports:
      - port: 80
        targetPort: 80
    """)


def manifest(tmp: Path, ns: str, two_ports: bool) -> Path:
    extra = "- containerPort: 8080\n          name: alt" if two_ports else ""
    path = tmp / f"app-{ns}.yaml"
    path.write_text(DEPLOYMENT.format(ns=ns, extra_port=extra))
    return path


@pytest.mark.parametrize("which", VERSIONS)
def test_discovery_commands(master: RunningMaster, which: str) -> None:
    out = kubectl(master, which, "version", "-o", "json").stdout
    info = json.loads(out)
    assert info["serverVersion"]["major"] == "1"
    assert "Kubernetes control plane" in kubectl(master, which, "cluster-info").stdout or \
        "Kubernetes master" in kubectl(master, which, "cluster-info").stdout
    resources = kubectl(master, which, "api-resources").stdout
    for line in ("pods", "po", "deployments", "deploy", "apps/v1", "leases"):
        assert line in resources
    names = kubectl(master, which, "api-resources", "-o", "name").stdout.split()
    assert "deployments.apps" in names and "pods" in names


@pytest.mark.parametrize("which", VERSIONS)
def test_create_apply_get_delete(master: RunningMaster, which: str, tmp_path: Path) -> None:
    ns = f"apply-{which}"
    out = kubectl(master, which, "create", "namespace", ns).stdout
    assert f"namespace/{ns} created" in out
    path = manifest(tmp_path, ns, two_ports=True)
    out = kubectl(master, which, "apply", "-f", str(path)).stdout
    assert "deployment.apps/web created" in out and "service/web created" in out
    out = kubectl(master, which, "apply", "-f", str(path)).stdout
    assert "deployment.apps/web unchanged" in out and "service/web unchanged" in out
    # An edited file is patched, and the removed container port is removed.
    path = manifest(tmp_path, ns, two_ports=False)
    out = kubectl(master, which, "apply", "-f", str(path)).stdout
    assert "deployment.apps/web configured" in out
    dep = json.loads(kubectl(master, which, "get", "deploy", "web", "-n", ns, "-o", "json").stdout)
    ports = dep["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert [p["containerPort"] for p in ports] == [80]

    # Output formats.
    wide = kubectl(master, which, "get", "svc", "web", "-n", ns, "-o", "wide").stdout
    assert "CLUSTER-IP" in wide and "SELECTOR" in wide and "app=web" in wide
    assert "80/TCP" in wide
    yaml_out = kubectl(master, which, "get", "deploy", "web", "-n", ns, "-o", "yaml").stdout
    assert "kind: Deployment" in yaml_out and "replicas: 2" in yaml_out
    ip = kubectl(master, which, "get", "svc", "web", "-n", ns, "-o", "jsonpath={.spec.clusterIP}").stdout
    assert ip.startswith("10.") and ip.count(".") == 3
    names = kubectl(master, which, "get", "deploy,svc", "-n", ns, "-o", "name").stdout.split()
    assert names == ["deployment.apps/web", "service/web"]
    labelled = kubectl(master, which, "get", "deploy", "-n", ns, "-l", "app=web", "-o", "name").stdout
    assert labelled.strip() == "deployment.apps/web"
    assert kubectl(master, which, "get", "deploy", "-n", ns, "-l", "app!=web", "-o", "name").stdout == ""
    field = kubectl(master, which, "get", "svc", "-n", ns, "--field-selector", "metadata.name=web",
                    "-o", "name").stdout
    assert field.strip() == "service/web"
    all_ns = kubectl(master, which, "get", "svc", "-A").stdout
    assert "NAMESPACE" in all_ns and ns in all_ns and "kubernetes" in all_ns
    get_all = kubectl(master, which, "get", "all", "-n", ns).stdout
    assert "service/web" in get_all and "deployment.apps/web" in get_all
    desc = kubectl(master, which, "describe", "svc", "web", "-n", ns).stdout
    assert "Name:" in desc and "web" in desc and "Selector:" in desc and "app=web" in desc

    out = kubectl(master, which, "delete", "-f", str(path)).stdout
    assert 'deployment.apps "web" deleted' in out and 'service "web" deleted' in out
    # create -f makes the same objects again, and refuses a second time.
    out = kubectl(master, which, "create", "-f", str(path)).stdout
    assert "deployment.apps/web created" in out and "service/web created" in out
    again = kubectl(master, which, "create", "-f", str(path), check=False)
    assert again.returncode != 0 and 'deployments.apps "web" already exists' in again.stderr
    kubectl(master, which, "delete", "-f", str(path))
    missing = kubectl(master, which, "get", "deploy", "web", "-n", ns, check=False)
    assert missing.returncode != 0
    assert 'deployments.apps "web" not found' in missing.stderr


@pytest.mark.parametrize("which", VERSIONS)
def test_label_annotate_patch_scale_edit(master: RunningMaster, which: str, tmp_path: Path) -> None:
    ns = f"edit-{which}"
    kubectl(master, which, "create", "namespace", ns)
    kubectl(master, which, "apply", "-f", str(manifest(tmp_path, ns, two_ports=False)))
    assert "labeled" in kubectl(master, which, "label", "deploy", "web", "-n", ns, "tier=front").stdout
    assert "annotated" in kubectl(master, which, "annotate", "deploy", "web", "-n", ns, "note=hi").stdout
    kubectl(master, which, "patch", "deploy", "web", "-n", ns, "-p", '{"spec":{"replicas":3}}')
    kubectl(master, which, "patch", "deploy", "web", "-n", ns, "--type", "merge",
            "-p", '{"metadata":{"labels":{"patched":"merge"}}}')
    kubectl(master, which, "patch", "deploy", "web", "-n", ns, "--type", "json",
            "-p", '[{"op":"replace","path":"/spec/revisionHistoryLimit","value":4}]')
    dep = json.loads(kubectl(master, which, "get", "deploy", "web", "-n", ns, "-o", "json").stdout)
    assert dep["spec"]["replicas"] == 3
    assert dep["metadata"]["labels"] == {"app": "web", "tier": "front", "patched": "merge"}
    assert dep["metadata"]["annotations"]["note"] == "hi"
    assert dep["spec"]["revisionHistoryLimit"] == 4
    out = kubectl(master, which, "scale", "deploy", "web", "-n", ns, "--replicas=5").stdout
    assert "scaled" in out
    replicas = kubectl(master, which, "get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}")
    assert replicas.stdout == "5"
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/replicas: 5/replicas: 1/' \"$1\"\n")
    editor.chmod(0o755)
    out = kubectl(master, which, "edit", "deploy", "web", "-n", ns, env={"EDITOR": str(editor),
                                                                        "KUBE_EDITOR": str(editor)}).stdout
    assert "edited" in out
    replicas = kubectl(master, which, "get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}")
    assert replicas.stdout == "1"
    out = kubectl(master, which, "delete", "service,deployment", "web", "-n", ns).stdout
    assert 'service "web" deleted' in out and 'deployment.apps "web" deleted' in out


@pytest.mark.parametrize("which", VERSIONS)
def test_get_watch_prints_event(master: RunningMaster, which: str) -> None:
    ns = f"watch-{which}"
    kubectl(master, which, "create", "namespace", ns)
    cmd = [kubectl_path(which), "--kubeconfig", str(master.kubeconfig), "get", "configmaps", "-n", ns, "-w"]
    env = {**os.environ, "HOME": str(master.data_dir)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(1.0)
        kubectl(master, which, "create", "configmap", "seen", "-n", ns, "--from-literal=a=b")
        deadline = time.monotonic() + 10
        lines: list[str] = []
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "seen" in line:
                break
        assert any(line.startswith("seen") for line in lines), lines
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(5)


@pytest.mark.parametrize("which", VERSIONS)
def test_errors_print_like_a_real_cluster(master: RunningMaster, which: str, tmp_path: Path) -> None:
    missing = kubectl(master, which, "get", "pod", "nope", check=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): pods "nope" not found' in missing.stderr
    kubectl(master, which, "create", "configmap", f"dup-{which}")
    dup = kubectl(master, which, "create", "configmap", f"dup-{which}", check=False)
    # kubectl 1.20 prints the server's Status; newer kubectl wraps typed creates in its own words.
    assert f'configmaps "dup-{which}" already exists' in dup.stderr
    if which == "old":
        assert dup.stderr.startswith("Error from server (AlreadyExists):")
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n")
    invalid = kubectl(master, which, "create", "-f", str(bad), check=False)
    assert invalid.returncode == 1
    assert 'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"' in invalid.stderr
