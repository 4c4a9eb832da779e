"""Bad input gets the right Status, nothing is stored, and the server keeps serving."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.master.conftest import RunningMaster, kubectl

pytestmark = pytest.mark.integration

CM_URL = "/api/v1/namespaces/default/configmaps"


def status_of(resp: requests.Response) -> dict[str, Any]:
    body = resp.json()
    assert body["kind"] == "Status" and body["status"] == "Failure", body
    assert body["code"] == resp.status_code
    return dict(body)


def count_configmaps(s: requests.Session, master: RunningMaster) -> int:
    """ConfigMaps a request could have stored: the root CA's, which a controller publishes in every namespace
    moments after the master starts (the first test may run meanwhile), is not one of them."""
    items = s.get(master.url + CM_URL).json()["items"]
    return len([i for i in items if i["metadata"]["name"] != "kube-root-ca.crt"])


@pytest.fixture
def admin(master: RunningMaster) -> requests.Session:
    return master.session()


def post(s: requests.Session, master: RunningMaster, path: str, data: bytes | str,
         ctype: str = "application/json") -> requests.Response:
    return s.post(master.url + path, data=data, headers={"Content-Type": ctype})


@pytest.mark.parametrize(("data", "ctype", "code", "reason", "text"), [
    ('{"metadata": {"name": "x"', "application/json", 400, "BadRequest", "json parse error"),
    ("metadata: [unclosed", "application/yaml", 400, "BadRequest", "error converting YAML"),
    ("[1, 2]", "application/json", 400, "BadRequest", "must be a JSON or YAML object"),
    ('{"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}', "application/json", 400,
     "BadRequest", "does not match the expected API version"),
    ('{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}', "application/json", 400,
     "BadRequest", "does not match the expected kind"),
    ('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_Valid"}}', "application/json", 422,
     "Invalid", 'ConfigMap "Not_Valid" is invalid: metadata.name: Invalid value: "Not_Valid"'),
    ('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"a b": "c"}}}',
     "application/json", 422, "Invalid", "metadata.labels: Invalid value"),
    ('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}', "application/json", 422, "Invalid",
     "metadata.name: Required value"),
    ("<xml/>", "application/xml", 415, "UnsupportedMediaType", "unknown format"),
])
def test_bad_bodies_are_refused_and_nothing_is_stored(master: RunningMaster, admin: requests.Session,
                                                      data: str, ctype: str, code: int, reason: str,
                                                      text: str) -> None:
    before = count_configmaps(admin, master)
    resp = post(admin, master, CM_URL, data, ctype)
    assert resp.status_code == code, resp.text
    body = status_of(resp)
    assert body["reason"] == reason
    assert text in body["message"]
    assert count_configmaps(admin, master) == before
    assert admin.get(master.url + "/healthz").status_code == 200


def test_unknown_resource_and_kind(master: RunningMaster, admin: requests.Session) -> None:
    resp = admin.get(master.url + "/api/v1/namespaces/default/widgets")
    assert resp.status_code == 404 and status_of(resp)["reason"] == "NotFound"
    resp = admin.get(master.url + "/apis/nope.example.com/v1")
    assert resp.status_code == 404


def test_missing_required_fields_give_field_causes(master: RunningMaster, admin: requests.Session) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}
    resp = post(admin, master, "/api/v1/namespaces/default/pods", json.dumps(pod))
    assert resp.status_code == 422
    causes = status_of(resp)["details"]["causes"]
    assert {"reason": "FieldValueRequired", "message": "Required value",
            "field": "spec.containers[0].image"} in causes
    assert admin.get(master.url + "/api/v1/namespaces/default/pods/p").status_code == 404


def test_duplicate_create_and_stale_update(master: RunningMaster, admin: requests.Session) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dup"}, "data": {"a": "1"}}
    first = post(admin, master, CM_URL, json.dumps(cm))
    assert first.status_code == 201
    again = post(admin, master, CM_URL, json.dumps(cm))
    assert again.status_code == 409 and status_of(again)["reason"] == "AlreadyExists"
    stored = first.json()
    stored["data"] = {"a": "2"}
    ok = admin.put(master.url + CM_URL + "/dup", json=stored)
    assert ok.status_code == 200
    stored["data"] = {"a": "3"}  # still carries the old resourceVersion
    stale = admin.put(master.url + CM_URL + "/dup", json=stored)
    assert stale.status_code == 409 and status_of(stale)["reason"] == "Conflict"
    assert "the object has been modified" in status_of(stale)["message"]
    assert admin.get(master.url + CM_URL + "/dup").json()["data"] == {"a": "2"}


def test_oversized_body_is_413(master: RunningMaster, admin: requests.Session) -> None:
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"a": "x" * (3 << 20)}}
    resp = post(admin, master, CM_URL, json.dumps(big))
    assert resp.status_code == 413
    assert status_of(resp)["reason"] == "RequestEntityTooLarge"
    assert admin.get(master.url + CM_URL + "/big").status_code == 404


def test_no_credentials_is_401(master: RunningMaster) -> None:
    resp = requests.get(master.url + "/api/v1/namespaces", verify=str(master.ca), timeout=5)
    assert resp.status_code == 401
    assert status_of(resp)["reason"] == "Unauthorized"
    # Public endpoints stay public.
    assert requests.get(master.url + "/version", verify=str(master.ca), timeout=5).status_code == 200


def test_stale_watch_revision_is_gone_after_compaction_and_bad_selector_is_400(
        master: RunningMaster, admin: requests.Session) -> None:
    resp = admin.get(master.url + CM_URL, params={"labelSelector": "a in (b"})
    assert resp.status_code == 400 and status_of(resp)["reason"] == "BadRequest"
    resp = admin.get(master.url + "/api/v1/pods", params={"fieldSelector": "spec.bogus=x"})
    assert resp.status_code == 400
    assert "field label not supported" in status_of(resp)["message"]


def test_unknown_fields_strict_warn_ignore(master: RunningMaster, admin: requests.Session) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fv-strict"}, "dataa": {"a": "1"}}
    strict = admin.post(master.url + CM_URL, params={"fieldValidation": "Strict"}, json=cm)
    assert strict.status_code == 400
    assert 'strict decoding error: unknown field "dataa"' in status_of(strict)["message"]
    assert admin.get(master.url + CM_URL + "/fv-strict").status_code == 404
    cm["metadata"]["name"] = "fv-warn"  # type: ignore[index]
    warn = admin.post(master.url + CM_URL, json=cm)  # no parameter: Warn, as Kubernetes defaults
    assert warn.status_code == 201
    assert 'unknown field \\"dataa\\"' in warn.headers.get("Warning", "")
    assert "dataa" not in admin.get(master.url + CM_URL + "/fv-warn").json()
    bogus = admin.post(master.url + CM_URL, params={"fieldValidation": "Loose"}, json=cm)
    assert bogus.status_code == 400


def test_new_kubectl_refuses_a_misspelt_field(master: RunningMaster, tmp_path: Path) -> None:
    bad = tmp_path / "typo.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: typo\nspec:\n  containers:\n"
                   "  - name: c\n    imagee: busybox\n    image: busybox\n")
    out = kubectl(master, "new", "apply", "-f", str(bad), check=False)
    assert out.returncode != 0
    assert 'unknown field "spec.containers[0].imagee"' in out.stderr
    assert kubectl(master, "new", "get", "pod", "typo", check=False).returncode != 0


def test_system_namespaces_cannot_be_deleted(master: RunningMaster, admin: requests.Session) -> None:
    for ns in ("default", "kube-system", "kube-public"):
        resp = admin.delete(f"{master.url}/api/v1/namespaces/{ns}")
        assert resp.status_code == 403, resp.text
        assert "this namespace may not be deleted" in status_of(resp)["message"]
        assert admin.get(f"{master.url}/api/v1/namespaces/{ns}").json()["status"]["phase"] == "Active"


def test_labelling_a_terminating_namespace_keeps_it(master: RunningMaster, admin: requests.Session) -> None:
    """A namespace being deleted stays until spec.finalizers is emptied, whatever else is updated."""
    base = f"{master.url}/api/v1/namespaces"
    assert admin.post(base, json={"metadata": {"name": "going"}}).status_code == 201
    # Keep a config map inside so the namespace controller cannot finish at once.
    admin.post(f"{base}/going/configmaps", json={"metadata": {"name": "c", "finalizers": ["test/hold"]}})
    assert admin.delete(f"{base}/going").status_code == 200
    patch = {"metadata": {"labels": {"touched": "yes"}}}
    resp = admin.patch(f"{base}/going", json=patch, headers={"Content-Type": "application/merge-patch+json"})
    assert resp.status_code == 200, resp.text
    ns = admin.get(f"{base}/going").json()
    assert ns["status"]["phase"] == "Terminating" and ns["metadata"]["labels"]["touched"] == "yes"
    # Let it go: drop the config map's finalizer; the namespace controller then finishes the namespace.
    admin.patch(f"{base}/going/configmaps/c", json={"metadata": {"finalizers": None}},
                headers={"Content-Type": "application/merge-patch+json"})


def _pod(volumes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "vol-check"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], "volumes": volumes}}


@pytest.mark.parametrize(("volumes", "field", "text"), [
    ([{"name": "v", "configMap": {"name": "cm", "items": [{"key": "k", "path": "../../etc/passwd"}]}}],
     "spec.volumes[0].configMap.items[0].path", "must not contain '..'"),
    ([{"name": "v", "secret": {"secretName": "s", "items": [{"key": "k", "path": "/etc/shadow"}]}}],
     "spec.volumes[0].secret.items[0].path", "must be a relative path"),
    ([{"name": "v", "secret": {"secretName": "s", "items": [{"key": "k", "path": "..data"}]}}],
     "spec.volumes[0].secret.items[0].path", "must not start with '..'"),
    ([{"name": "v", "secret": {"secretName": "s", "defaultMode": 4096}}],
     "spec.volumes[0].secret.defaultMode", "between 0 and 0777"),
    ([{"name": "v", "configMap": {"name": "cm", "items": [{"key": "k", "path": "p", "mode": -1}]}}],
     "spec.volumes[0].configMap.items[0].mode", "between 0 and 0777"),
    ([{"name": "v", "secret": {}}], "spec.volumes[0].secret.secretName", "Required value"),
    ([{"name": "v", "configMap": {"name": "cm", "items": [{"path": "p"}]}}],
     "spec.volumes[0].configMap.items[0].key", "Required value"),
    ([{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}], "spec.volumes[1].name", "Duplicate value"),
    ([{"name": "v", "emptyDir": {}, "hostPath": {"path": "/tmp"}}], "spec.volumes[0].hostPath",
     "may not specify more than 1 volume type"),
])
def test_pod_volumes_that_would_escape_or_make_no_sense_are_refused(
        master: RunningMaster, admin: requests.Session, volumes: list[dict[str, Any]], field: str,
        text: str) -> None:
    url = master.url + "/api/v1/namespaces/default/pods"
    resp = admin.post(url, json=_pod(volumes))
    assert resp.status_code == 422, resp.text
    body = status_of(resp)
    causes = body["details"]["causes"]
    assert any(c["field"] == field and text in c["message"] for c in causes), causes
    assert admin.get(url + "/vol-check").status_code == 404


def test_pod_volume_defaults(master: RunningMaster, admin: requests.Session) -> None:
    url = master.url + "/api/v1/namespaces/default/pods"
    resp = admin.post(url, json=_pod([{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "cm"}}]))
    assert resp.status_code == 201, resp.text
    vols = resp.json()["spec"]["volumes"]
    assert vols[0] == {"name": "scratch", "emptyDir": {}}
    assert vols[1]["configMap"] == {"name": "cm", "defaultMode": 0o644}
    admin.delete(url + "/vol-check", params={"gracePeriodSeconds": "0"})


@pytest.mark.parametrize("key", [".", "..", "..data"])
def test_config_keys_that_are_paths_up_are_refused(master: RunningMaster, admin: requests.Session,
                                                   key: str) -> None:
    before = count_configmaps(admin, master)
    resp = admin.post(master.url + CM_URL, json={"metadata": {"name": "dots"}, "data": {key: "x"}})
    assert resp.status_code == 422, resp.text
    assert any(c["field"] == f"data[{key}]" for c in status_of(resp)["details"]["causes"])
    assert count_configmaps(admin, master) == before
    resp = admin.post(master.url + "/api/v1/namespaces/default/secrets",
                      json={"metadata": {"name": "dots"}, "stringData": {key: "x"}})
    assert resp.status_code == 422, resp.text


def test_watch_timeout_must_be_an_integer(master: RunningMaster, admin: requests.Session) -> None:
    resp = admin.get(master.url + CM_URL, params={"watch": "1", "timeoutSeconds": "soon"}, timeout=10)
    assert resp.status_code == 400, resp.text
    assert 'invalid timeoutSeconds "soon"' in status_of(resp)["message"]
    # A negative timeout ends the watch at once (an empty stream), as Kubernetes does.
    rv = admin.get(master.url + CM_URL).json()["metadata"]["resourceVersion"]
    resp = admin.get(master.url + CM_URL, params={"watch": "1", "timeoutSeconds": "-1", "resourceVersion": rv},
                     timeout=10)
    assert resp.status_code == 200 and resp.text == ""
    assert admin.get(master.url + "/healthz").status_code == 200
