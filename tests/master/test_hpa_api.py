"""HorizontalPodAutoscaler over the API: autoscaling/v2 stored, autoscaling/v1 a lossless view, kubectl 1.20 and 1.33.

kubectl 1.20's `autoscale` writes v1 and its `describe hpa` reads v1; kubectl 1.33
writes and reads v2. Whatever a client writes in one version reads back the same
in the other, the v2 fields v1 cannot hold travelling in the annotations
Kubernetes uses. The controller's work on a real cluster is tests/network/test_hpa.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from master.registry.hpaversions import BEHAVIOR, METRICS, HpaConversion
from tests.master.conftest import RunningMaster, kubectl

pytestmark = pytest.mark.integration
Obj = dict[str, Any]
V2_HPA: Obj = {
    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "rich"},
    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
             "minReplicas": 2, "maxReplicas": 7,
             "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                             "type": "Utilization", "averageUtilization": 60}}},
                         {"type": "Resource", "resource": {"name": "memory", "target": {
                             "type": "AverageValue", "averageValue": "100Mi"}}}],
             "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30, "policies": [
                 {"type": "Pods", "value": 1, "periodSeconds": 20}]}}}}


def _ns(master: RunningMaster, name: str) -> str:
    kubectl(master, "new", "create", "namespace", name, check=False)
    return name


def _get(master: RunningMaster, ns: str, resource: str, name: str) -> Obj:
    out: Obj = json.loads(kubectl(master, "new", "-n", ns, "get", resource, name, "-o", "json").stdout)
    return out


def test_conversion_keeps_every_v2_field_through_the_v1_view() -> None:
    conv = HpaConversion()
    stored = {**V2_HPA, "status": {"currentReplicas": 3, "desiredReplicas": 4, "currentMetrics": [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 70, "averageValue": "70m"}}},
        {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "90Mi"}}}],
        "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale", "message": "m",
                        "lastTransitionTime": "2026-12-05T00:00:00Z"}]}}
    v1 = conv.from_storage(stored)
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"] == {"scaleTargetRef": V2_HPA["spec"]["scaleTargetRef"], "minReplicas": 2, "maxReplicas": 7,
                          "targetCPUUtilizationPercentage": 60}
    assert json.loads(v1["metadata"]["annotations"][METRICS]) == [
        {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}}]
    assert v1["status"]["currentCPUUtilizationPercentage"] == 70
    back = conv.to_storage(v1)
    assert back["spec"] == stored["spec"] and "annotations" not in back["metadata"]
    # The cpu metric's raw value has no place in v1 (as in Kubernetes); everything else comes back.
    assert back["status"]["currentMetrics"][1:] == stored["status"]["currentMetrics"][1:]
    assert back["status"]["conditions"] == stored["status"]["conditions"]
    assert stored["spec"]["behavior"] == V2_HPA["spec"]["behavior"]  # the input is never changed
    assert "annotations" not in stored["metadata"]


@pytest.mark.parametrize("which", ["old", "new"])
def test_kubectl_autoscale_creates_an_hpa_both_versions_read(master: RunningMaster, which: str) -> None:
    ns = _ns(master, f"hpa-{which}")
    kubectl(master, which, "-n", ns, "create", "deployment", "web", "--image=pikube/busybox:1")
    kubectl(master, which, "-n", ns, "autoscale", "deployment", "web", "--cpu-percent=50", "--min=1", "--max=4")
    v2 = _get(master, ns, "horizontalpodautoscalers.v2.autoscaling", "web")
    assert v2["apiVersion"] == "autoscaling/v2"
    assert v2["spec"]["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 50}}}]
    assert (v2["spec"]["minReplicas"], v2["spec"]["maxReplicas"]) == (1, 4)
    v1 = _get(master, ns, "horizontalpodautoscalers.v1.autoscaling", "web")
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 50 and "metrics" not in v1["spec"]
    table = kubectl(master, which, "-n", ns, "get", "hpa").stdout.splitlines()
    assert table[0].split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert table[1].split()[:2] == ["web", "Deployment/web"] and "/50%" in table[1]
    described = kubectl(master, which, "-n", ns, "describe", "hpa", "web").stdout
    assert "Reference:" in described and "Deployment/web" in described
    assert "Min replicas:" in described and "Max replicas:" in described
    assert "api/v1" not in kubectl(master, which, "api-resources", "--api-group=autoscaling").stdout
    kubectl(master, which, "-n", ns, "delete", "hpa", "web")
    assert kubectl(master, which, "-n", ns, "get", "hpa", "web", check=False).returncode != 0


def test_a_v1_client_that_writes_back_what_it_read_loses_nothing(master: RunningMaster) -> None:
    ns = _ns(master, "hpa-roundtrip")
    kubectl(master, "new", "-n", ns, "create", "-f", "-", input=json.dumps(V2_HPA))
    v1 = _get(master, ns, "horizontalpodautoscalers.v1.autoscaling", "rich")
    assert json.loads(v1["metadata"]["annotations"][BEHAVIOR])["scaleDown"]["stabilizationWindowSeconds"] == 30
    v1["spec"]["maxReplicas"] = 9
    kubectl(master, "new", "-n", ns, "replace", "-f", "-", input=json.dumps(v1))
    v2 = _get(master, ns, "horizontalpodautoscalers.v2.autoscaling", "rich")
    assert v2["spec"]["maxReplicas"] == 9
    assert v2["spec"]["metrics"] == V2_HPA["spec"]["metrics"]
    # The behavior given, with Kubernetes' defaults filled in where it said nothing.
    assert v2["spec"]["behavior"]["scaleDown"] == {"stabilizationWindowSeconds": 30, "selectPolicy": "Max",
                                                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 20}]}
    assert v2["spec"]["behavior"]["scaleUp"]["policies"][0] == {"type": "Pods", "value": 4, "periodSeconds": 15}
    assert METRICS not in (v2["metadata"].get("annotations") or {})
    # A merge patch through the v1 view changes the v1 field, stored as the v2 metric.
    kubectl(master, "new", "-n", ns, "patch", "horizontalpodautoscalers.v1.autoscaling", "rich", "--type=merge",
            "-p", '{"spec": {"targetCPUUtilizationPercentage": 75}}')
    v2 = _get(master, ns, "horizontalpodautoscalers.v2.autoscaling", "rich")
    assert v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 75
    assert v2["spec"]["metrics"][1] == V2_HPA["spec"]["metrics"][1]


@pytest.mark.parametrize(("spec", "expected"), [
    ({"minReplicas": 3, "maxReplicas": 2}, "spec.maxReplicas: Invalid value: 2: must be greater than or equal to "
                                           "`minReplicas`"),
    ({"minReplicas": 0, "maxReplicas": 2}, "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"),
    ({"maxReplicas": 2, "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 0}}}]},
     "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"),
    ({"maxReplicas": 2, "metrics": [{"type": "Bogus"}]},
     'spec.metrics[0].type: Unsupported value: "Bogus": supported values: "ContainerResource", "External", '
     '"Object", "Pods", "Resource"'),
    ({"maxReplicas": 2, "behavior": {"scaleUp": {"stabilizationWindowSeconds": 4000}}},
     "spec.behavior.scaleUp.stabilizationWindowSeconds: Invalid value: 4000: must be less than or equal to 3600"),
])
def test_bad_autoscalers_are_refused_with_kubernetes_field_errors(master: RunningMaster, spec: Obj,
                                                                 expected: str) -> None:
    ns = _ns(master, "hpa-bad")
    body = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "bad"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, **spec}}
    run = kubectl(master, "new", "-n", ns, "create", "-f", "-", input=json.dumps(body), check=False)
    assert run.returncode != 0
    assert 'The HorizontalPodAutoscaler "bad" is invalid' in run.stderr and expected in run.stderr
    assert kubectl(master, "new", "-n", ns, "get", "hpa", "bad", check=False).returncode != 0


def test_a_v1_body_sent_to_the_v2_url_is_refused(master: RunningMaster) -> None:
    ns = _ns(master, "hpa-mismatch")
    session = master.session()
    url = f"{master.url}/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers"
    body = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 2}}
    resp = session.post(url, json=body)
    assert resp.status_code == 400
    assert resp.json()["message"] == ("the API version in the data (autoscaling/v1) does not match the expected "
                                      "API version (autoscaling/v2)")


def test_the_python_client_writes_v1_and_reads_v2_and_watches(master: RunningMaster) -> None:
    from kubernetes import client, config, watch

    api_client = config.new_client_from_config(config_file=str(master.kubeconfig))
    v1, v2 = client.AutoscalingV1Api(api_client), client.AutoscalingV2Api(api_client)
    ns = _ns(master, "hpa-python")
    made = v1.create_namespaced_horizontal_pod_autoscaler(ns, client.V1HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name="py"), spec=client.V1HorizontalPodAutoscalerSpec(
            scale_target_ref=client.V1CrossVersionObjectReference(api_version="apps/v1", kind="Deployment",
                                                                  name="web"),
            min_replicas=2, max_replicas=5, target_cpu_utilization_percentage=70)))
    assert made.spec.target_cpu_utilization_percentage == 70
    read = v2.read_namespaced_horizontal_pod_autoscaler("py", ns)
    assert read.spec.metrics[0].resource.target.average_utilization == 70 and read.spec.min_replicas == 2
    events = watch.Watch().stream(v1.list_namespaced_horizontal_pod_autoscaler, ns,
                                  resource_version=made.metadata.resource_version, timeout_seconds=5)
    v2.patch_namespaced_horizontal_pod_autoscaler("py", ns, {"spec": {"maxReplicas": 6}})
    seen = next(e for e in events if e["type"] == "MODIFIED" and e["object"].spec.max_replicas == 6)
    assert seen["object"].api_version == "autoscaling/v1"
    assert seen["object"].spec.target_cpu_utilization_percentage == 70
    v2.delete_namespaced_horizontal_pod_autoscaler("py", ns)
    assert [h.metadata.name for h in v1.list_namespaced_horizontal_pod_autoscaler(ns).items] == []
