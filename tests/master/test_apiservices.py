"""APIService objects with real kubectl: every served group version is listed as local and available; one a
manifest brings is stored (so the manifest applies) and says plainly that pikube does not aggregate it."""

from __future__ import annotations

import json

import pytest

from tests.master.conftest import RunningMaster, kubectl

pytestmark = pytest.mark.integration

METRICS_SERVER = {  # as metrics-server's release manifest declares it
    "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1beta1.metrics.k8s.io"},
    "spec": {"service": {"name": "metrics-server", "namespace": "kube-system"}, "group": "metrics.k8s.io",
             "version": "v1beta1", "insecureSkipTLSVerify": True, "groupPriorityMinimum": 100,
             "versionPriority": 100}}


def _rows(master: RunningMaster, which: str) -> dict[str, list[str]]:
    out = kubectl(master, which, "get", "apiservices", "--no-headers").stdout
    return {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}


@pytest.mark.parametrize("which", ["old", "new"])
def test_local_group_versions_are_listed_available(master: RunningMaster, which: str) -> None:
    rows = _rows(master, which)
    for name in ("v1.", "v1.apps", "v2.autoscaling", "v1.autoscaling", "v1.rbac.authorization.k8s.io",
                 "v1beta1.metrics.k8s.io"):
        assert rows[name][:2] == ["Local", "True"], (name, rows.get(name))


def test_manifests_with_apiservices_apply_and_say_what_is_not_used(master: RunningMaster) -> None:
    kubectl(master, "new", "apply", "-f", "-", input=json.dumps(METRICS_SERVER))
    served = json.loads(kubectl(master, "new", "get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "json").stdout)
    available = served["status"]["conditions"][0]
    assert (available["status"], available["reason"]) == ("True", "Local")
    assert "spec.service is not used" in available["message"]
    external = {**METRICS_SERVER, "metadata": {"name": "v1alpha1.widgets.example.com"},
                "spec": {**METRICS_SERVER["spec"], "group": "widgets.example.com", "version": "v1alpha1"}}
    kubectl(master, "old", "apply", "-f", "-", input=json.dumps(external))
    assert _rows(master, "new")["v1alpha1.widgets.example.com"][:3] == [
        "kube-system/metrics-server", "False", "(AggregationNotSupported)"]
    got = json.loads(kubectl(master, "new", "get", "apiservice", "v1alpha1.widgets.example.com", "-o",
                             "json").stdout)
    cond = got["status"]["conditions"][0]
    assert (cond["status"], cond["reason"]) == ("False", "AggregationNotSupported")
    assert cond["message"] == ("pikube does not proxy to extension API servers: service kube-system/metrics-server "
                               "is not used")
    # The group is not served because an APIService names it.
    assert kubectl(master, "new", "get", "--raw", "/apis/widgets.example.com/v1alpha1", check=False).returncode != 0
    bad = kubectl(master, "new", "apply", "-f", "-", check=False, input=json.dumps(
        {**external, "metadata": {"name": "wrong-name"}}))
    assert bad.returncode != 0
    assert 'metadata.name: Invalid value: "wrong-name": must be `spec.version+"."+spec.group`' in bad.stderr
    kubectl(master, "new", "delete", "apiservice", "v1alpha1.widgets.example.com")
