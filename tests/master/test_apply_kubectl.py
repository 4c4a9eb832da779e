"""Server-side apply with real kubectl, oldest (1.20) and newest (1.33), against a real master."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.master.conftest import RunningMaster, kubectl

pytestmark = pytest.mark.integration
VERSIONS = ["old", "new"]

DEPLOYMENT = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      namespace: {ns}
      labels: {{app: web, tier: front}}
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
            env:
            - {{name: A, value: "1"}}
            - {{name: B, value: "2"}}
            ports:
            - containerPort: 80
    """)


def _get(master: RunningMaster, which: str, ns: str, *extra: str) -> dict[str, Any]:
    if which == "new":  # kubectl >= 1.21 strips managedFields from its output unless asked
        extra = ("--show-managed-fields", *extra)
    out = kubectl(master, which, "get", "deploy", "web", "-n", ns, "-o", "json", *extra).stdout
    obj: dict[str, Any] = json.loads(out)
    return obj


def _managers(obj: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"], e.get("subresource", "")): e["fieldsV1"]
            for e in obj["metadata"].get("managedFields", [])}


def _namespace(master: RunningMaster, which: str, name: str) -> str:
    kubectl(master, which, "create", "namespace", name)
    return name


@pytest.mark.parametrize("which", VERSIONS)
def test_server_side_apply_lifecycle(master: RunningMaster, which: str, tmp_path: Path) -> None:
    ns = _namespace(master, which, f"ssa-{which}")
    path = tmp_path / "dep.yaml"
    path.write_text(DEPLOYMENT.format(ns=ns))
    out = kubectl(master, which, "apply", "--server-side", "-f", str(path)).stdout
    assert "serverside-applied" in out
    first = _get(master, which, ns)
    assert first["metadata"]["labels"] == {"app": "web", "tier": "front"}

    # Applying the same manifest again changes nothing: same resourceVersion (the controllers may write the
    # status in between: then try again), same generation, no new rollout revision.
    for _ in range(5):
        rv = _get(master, which, ns)["metadata"]["resourceVersion"]
        out = kubectl(master, which, "apply", "--server-side", "-f", str(path), "-o", "json").stdout
        if json.loads(out)["metadata"]["resourceVersion"] == rv:
            break
    else:
        pytest.fail("a second identical apply wrote the object")
    again = _get(master, which, ns)
    assert again["metadata"]["generation"] == first["metadata"]["generation"] == 1
    assert _managers(again)[("kubectl", "Apply", "")] == _managers(first)[("kubectl", "Apply", "")]
    revision = "deployment.kubernetes.io/revision"
    assert again["metadata"]["annotations"].get(revision) in (None, "1")

    # Fields the manager stops applying are removed on the server.
    lines = DEPLOYMENT.format(ns=ns).replace(", tier: front", "").splitlines(keepends=True)
    path.write_text("".join(line for line in lines if "name: B" not in line))
    kubectl(master, which, "apply", "--server-side", "-f", str(path))
    pruned = _get(master, which, ns)
    assert pruned["metadata"]["labels"] == {"app": "web"}
    assert pruned["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    applied = _managers(pruned)[("kubectl", "Apply", "")]
    assert "f:tier" not in applied["f:metadata"]["f:labels"]
    container = applied["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert set(container["f:env"]) == {'k:{"name":"A"}'}
    assert 'k:{"containerPort":80,"protocol":"TCP"}' in container["f:ports"]

    # Another manager takes .spec.replicas: applying a different value is a conflict.
    kubectl(master, which, "scale", "deploy", "web", "-n", ns, "--replicas=3")
    clash = kubectl(master, which, "apply", "--server-side", "-f", str(path), check=False)
    assert clash.returncode != 0
    assert "Apply failed with 1 conflict: conflict with" in clash.stderr
    assert '"scale" using apps/v1: .spec.replicas' in clash.stderr
    assert "--force-conflicts" in clash.stderr  # kubectl's own help text for a 409 conflict
    scaled = _get(master, which, ns)
    assert scaled["spec"]["replicas"] == 3
    scalers = [key for key in _managers(scaled) if key[2] == "scale"]
    assert len(scalers) == 1 and scalers[0][1] == "Update"  # kubectl's own User-Agent prefix, via /scale
    assert _managers(scaled)[scalers[0]] == {"f:spec": {"f:replicas": {}}}

    kubectl(master, which, "apply", "--server-side", "--force-conflicts", "-f", str(path))
    forced = _get(master, which, ns)
    assert forced["spec"]["replicas"] == 2
    owners = _managers(forced)
    assert "f:replicas" in owners[("kubectl", "Apply", "")]["f:spec"]
    assert not any(sub == "scale" for (_, _, sub) in owners)  # the scaler owned only replicas; it lost it
    # One entry per manager, operation and subresource, however often the controllers wrote: the applier,
    # and the controllers' Update entries for the main resource (revision annotation) and for status.
    assert set(owners) <= {("kubectl", "Apply", ""), ("kube-controller-manager", "Update", ""),
                           ("kube-controller-manager", "Update", "status")}

    if which == "new":  # kubectl >= 1.21 hides managedFields unless asked
        shown = kubectl(master, which, "get", "deploy", "web", "-n", ns, "-o", "yaml",
                        "--show-managed-fields").stdout
        hidden = kubectl(master, which, "get", "deploy", "web", "-n", ns, "-o", "yaml").stdout
        assert "managedFields" not in hidden
    else:
        shown = kubectl(master, which, "get", "deploy", "web", "-n", ns, "-o", "yaml").stdout
    assert "manager: kubectl" in shown and "operation: Apply" in shown and "fieldsType: FieldsV1" in shown
    kubectl(master, which, "delete", "namespace", ns, "--wait=false")


@pytest.mark.parametrize("which", VERSIONS)
def test_apply_creates_and_records_update_managers(master: RunningMaster, which: str, tmp_path: Path) -> None:
    ns = _namespace(master, which, f"ssa-upd-{which}")
    path = tmp_path / "cm.yaml"
    path.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: conf, namespace: {ns}}}\n"
                    "data: {a: '1'}\n")
    dry = kubectl(master, which, "apply", "--server-side", "--dry-run=server", "-f", str(path))
    assert "serverside-applied" in dry.stdout and "dry run" in dry.stdout
    missing = kubectl(master, which, "get", "configmap", "conf", "-n", ns, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    kubectl(master, which, "apply", "--server-side", "--field-manager=deployer", "-f", str(path))
    kubectl(master, which, "label", "configmap", "conf", "-n", ns, "team=x")
    shown = ("--show-managed-fields",) if which == "new" else ()
    cm = json.loads(kubectl(master, which, "get", "configmap", "conf", "-n", ns, "-o", "json", *shown).stdout)
    entries = {(e["manager"], e["operation"]): e for e in cm["metadata"]["managedFields"]}
    assert entries[("deployer", "Apply")]["fieldsV1"] == {"f:data": {"f:a": {}}}
    updaters = [e for (_, op), e in entries.items() if op == "Update"]
    assert len(updaters) == 1 and updaters[0]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:team": {}}}}
    assert updaters[0]["manager"].startswith("kubectl")  # the User-Agent's prefix, as Kubernetes derives it
    kubectl(master, which, "delete", "namespace", ns, "--wait=false")


def test_client_side_then_server_side_apply_migrates(master: RunningMaster, tmp_path: Path) -> None:
    """kubectl 1.33 moves the fields client-side apply owned to its server-side manager (a JSON patch of
    metadata.managedFields) and records the last-applied annotation under `kubectl-last-applied`."""
    ns = _namespace(master, "new", "ssa-migrate")
    path = tmp_path / "dep.yaml"
    path.write_text(DEPLOYMENT.format(ns=ns))
    kubectl(master, "new", "apply", "-f", str(path))
    before = _managers(_get(master, "new", ns))
    assert ("kubectl-client-side-apply", "Update", "") in before
    out = kubectl(master, "new", "apply", "--server-side", "-f", str(path))
    assert "serverside-applied" in out.stdout, out.stderr
    after_obj = _get(master, "new", ns)
    after = _managers(after_obj)
    assert ("kubectl", "Apply", "") in after
    csa = after.get(("kubectl-client-side-apply", "Update", ""), {})
    applied = after[("kubectl", "Apply", "")]
    assert "f:replicas" not in csa.get("f:spec", {})
    assert "f:replicas" in applied["f:spec"]
    assert "f:containers" not in csa.get("f:spec", {}).get("f:template", {}).get("f:spec", {})
    # A change after the migration applies cleanly (no conflict with the old client-side manager).
    path.write_text(DEPLOYMENT.format(ns=ns).replace("replicas: 2", "replicas: 4"))
    kubectl(master, "new", "apply", "--server-side", "-f", str(path))
    assert _get(master, "new", ns)["spec"]["replicas"] == 4
    kubectl(master, "new", "delete", "namespace", ns, "--wait=false")


def test_client_side_then_server_side_apply_without_migration(master: RunningMaster, tmp_path: Path) -> None:
    """kubectl 1.20 sends no migration patch: the server forces the conflicts on fields whose live value is
    still the last-applied one (apimachinery's lastAppliedManager) and rewrites the annotation."""
    ns = _namespace(master, "old", "ssa-csa-old")
    path = tmp_path / "dep.yaml"
    path.write_text(DEPLOYMENT.format(ns=ns))
    kubectl(master, "old", "apply", "-f", str(path))
    path.write_text(DEPLOYMENT.format(ns=ns).replace("replicas: 2", "replicas: 4"))
    kubectl(master, "old", "apply", "--server-side", "-f", str(path))
    obj = _get(master, "old", ns)
    assert obj["spec"]["replicas"] == 4
    assert "f:replicas" in _managers(obj)[("kubectl", "Apply", "")]["f:spec"]
    last = json.loads(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 4
    # A field someone else changed since is a real conflict.
    kubectl(master, "old", "scale", "deploy", "web", "-n", ns, "--replicas=1")
    path.write_text(DEPLOYMENT.format(ns=ns).replace("replicas: 2", "replicas: 5"))
    clash = kubectl(master, "old", "apply", "--server-side", "-f", str(path), check=False)
    assert clash.returncode != 0 and ".spec.replicas" in clash.stderr
    kubectl(master, "old", "delete", "namespace", ns, "--wait=false")
