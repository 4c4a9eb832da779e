"""The OpenAPI documents: valid v3/v2, every served path and verb, what kubectl reads from them."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from master.api import schema_proto
from master.api.schema_docs import Documents
from master.registry.catalog import Catalog, builtin_resources
from tests.master.conftest import RunningMaster, kubectl

CATALOG = Catalog(builtin_resources())
DOCS = Documents(CATALOG)
TOKEN = "test-admin-token"
PB_ACCEPT = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def _v3(gv: str) -> dict[str, Any]:
    rendered = DOCS.v3(gv)
    assert rendered is not None
    doc: dict[str, Any] = json.loads(rendered.body)
    return doc


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


@pytest.mark.parametrize("gv", DOCS.group_versions())
def test_v3_documents_are_valid_openapi_30_with_resolvable_refs(gv: str) -> None:
    from schemathesis.specs.openapi import definitions as meta_schemas

    doc = _v3(gv)
    errors = [str(e) for e in meta_schemas.OPENAPI_30_VALIDATOR.iter_errors(doc)]
    assert errors == []
    schemas = doc["components"]["schemas"]
    for target in _refs(doc):
        assert target.startswith("#/components/schemas/")
        assert target.removeprefix("#/components/schemas/") in schemas, target


def test_v2_document_is_valid_swagger_20_with_resolvable_refs() -> None:
    from schemathesis.specs.openapi import definitions as meta_schemas

    doc = json.loads(DOCS.v2().body)
    assert [str(e) for e in meta_schemas.SWAGGER_20_VALIDATOR.iter_errors(doc)] == []
    for target in _refs(doc):
        assert target.removeprefix("#/definitions/") in doc["definitions"], target
    assert "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale" in doc["paths"]


@pytest.mark.parametrize("rt", list(CATALOG), ids=lambda rt: rt.kind)
def test_every_resource_path_and_verb_is_documented(rt: Any) -> None:
    doc = _v3(rt.group_version)
    prefix = f"/api/{rt.version}" if not rt.group else f"/apis/{rt.group}/{rt.version}"
    coll = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{prefix}/{rt.plural}"
    paths = doc["paths"]
    assert set(paths[coll]) >= {"get", "post", "delete", "parameters"}
    assert set(paths[coll + "/{name}"]) >= {"get", "put", "patch", "delete"}
    if rt.namespaced:
        assert paths[f"{prefix}/{rt.plural}"]["get"]["x-kubernetes-action"] == "list"
    list_op = paths[coll]["get"]
    names = {p["name"] for p in list_op["parameters"]}
    assert names >= {"labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch",
                     "allowWatchBookmarks", "timeoutSeconds"}
    kind_ref = paths[coll + "/{name}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert kind_ref["$ref"].endswith("." + rt.kind)
    for sub in ("status", "scale", "binding", "log", "eviction"):
        assert (f"{coll}/{{name}}/{sub}" in paths) == (sub in rt.subresources), sub


def _gvk_patch_has_field_validation(doc: dict[str, Any], group: str, version: str, kind: str) -> bool:
    """client-go's supportsQueryParamV3: the first PATCH operation tagged with the GVK decides."""
    for item in doc["paths"].values():
        op = item.get("patch")
        if not op or op.get("x-kubernetes-group-version-kind") != {"group": group, "version": version,
                                                                   "kind": kind}:
            continue
        return any(p["name"] == "fieldValidation" and p["in"] == "query" for p in op.get("parameters", []))
    raise AssertionError(f"no PATCH operation for {group}/{version} {kind}")


@pytest.mark.parametrize("rt", list(CATALOG), ids=lambda rt: rt.kind)
def test_kubectl_sees_server_side_field_validation_for_every_kind(rt: Any) -> None:
    doc = _v3(rt.group_version)
    assert _gvk_patch_has_field_validation(doc, rt.group, rt.version, rt.kind)
    for item in doc["paths"].values():
        for method in ("post", "put", "patch"):
            if method in item and item[method]["x-kubernetes-action"] != "connect":  # streams, proxies: no body
                names = [p["name"] for p in item[method].get("parameters", [])]
                assert "fieldValidation" in names and "dryRun" in names, item[method]["operationId"]


def test_operations_are_named_like_the_real_api_server() -> None:
    ids = {op["operationId"] for item in _v3("v1")["paths"].values() for k, op in item.items()
           if k != "parameters"}
    assert {"listCoreV1NamespacedPod", "createCoreV1NamespacedPod", "readCoreV1NamespacedPod",
            "replaceCoreV1NamespacedPod", "patchCoreV1NamespacedPod", "deleteCoreV1NamespacedPod",
            "deleteCoreV1CollectionNamespacedPod", "listCoreV1PodForAllNamespaces", "watchCoreV1NamespacedPod",
            "readCoreV1NamespacedPodLog", "createCoreV1NamespacedPodBinding", "readCoreV1Node",
            "patchCoreV1NamespaceStatus", "connectCoreV1GetNamespacedPodExec", "connectCoreV1PostNamespacedPodExec",
            "connectCoreV1PostNamespacedPodAttach", "connectCoreV1GetNamespacedPodPortForward",
            "connectCoreV1GetNamespacedPodProxyWithPath", "connectCoreV1DeleteNamespacedServiceProxy",
            "connectCoreV1HeadNodeProxyWithPath"} <= ids
    apps = {op["operationId"] for item in _v3("apps/v1")["paths"].values() for k, op in item.items()
            if k != "parameters"}
    assert "readAppsV1NamespacedDeploymentScale" in apps


def test_v3_field_descriptions_sit_beside_refs_in_allof() -> None:
    container = _v3("v1")["components"]["schemas"]["io.k8s.api.core.v1.Container"]
    lifecycle = container["properties"]["lifecycle"]
    assert lifecycle["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.core.v1.Lifecycle"}]
    assert lifecycle["description"].startswith("Actions that the management system")
    int_or_string = _v3("v1")["components"]["schemas"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert int_or_string["oneOf"] == [{"type": "integer"}, {"type": "string"}]


# ---- protobuf -----------------------------------------------------------------------------------------

def _fields(data: bytes) -> list[tuple[int, Any]]:
    """A minimal protobuf reader: (field number, int or bytes) in order."""
    out: list[tuple[int, Any]] = []
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(data, i)
            out.append((number, value))
        elif wire == 2:
            length, i = _read_varint(data, i)
            out.append((number, data[i:i + length]))
            i += length
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def test_v2_protobuf_is_a_gnostic_document_with_every_definition() -> None:
    doc = json.loads(DOCS.v2().body)
    top = dict(_fields(DOCS.v2_protobuf().body))
    assert top[1] == b"2.0"
    named = [dict(_fields(entry)) for _, entry in _fields(top[9])]  # Definitions.additional_properties
    by_name = {entry[1].decode(): entry[2] for entry in named}
    assert set(by_name) == set(doc["definitions"])
    pod = dict(_fields(by_name["io.k8s.api.core.v1.Pod"]))
    assert pod[4].decode().startswith("Pod is a collection of containers")
    ext = dict(_fields(pod[31]))  # vendor_extension NamedAny
    assert ext[1] == b"x-kubernetes-group-version-kind"
    assert json.loads(dict(_fields(ext[2]))[2]) == [{"group": "", "kind": "Pod", "version": "v1"}]
    props = [dict(_fields(p)) for _, p in _fields(pod[25])]
    assert {p[1].decode() for p in props} == {"apiVersion", "kind", "metadata", "spec", "status"}
    paths = [dict(_fields(p)) for _, p in _fields(top[8]) if _ == 2]
    assert len(paths) == len(doc["paths"])


def test_protobuf_varints_round_trip() -> None:
    for n in (0, 1, 127, 128, 300, 2**31, 2**63 - 1):
        assert _read_varint(schema_proto._varint(n), 0) == (n, len(schema_proto._varint(n)))


# ---- over HTTP ----------------------------------------------------------------------------------------

@pytest.fixture
def client(tmp_path: Path) -> Iterator[FlaskClient]:
    from core.settings import MasterSettings
    from master.api.app import create_app
    from master.registry.context import ApiContext
    from master.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "state.db")
    ctx = ApiContext(settings=MasterSettings(data_dir=tmp_path), store=store, catalog=CATALOG)
    app = create_app(ctx, admin_token=TOKEN)
    with app.test_client() as c:
        c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
        yield c
    close = getattr(store, "close", None)
    if close is not None:
        close()


def test_v3_index_and_documents_over_http(client: FlaskClient) -> None:
    index = client.get("/openapi/v3").get_json()
    assert set(index["paths"]) == {"api/v1", "apis/apps/v1", "apis/autoscaling/v1", "apis/autoscaling/v2",
                                   "apis/batch/v1", "apis/batch/v1beta1", "apis/coordination.k8s.io/v1",
                                   "apis/rbac.authorization.k8s.io/v1", "apis/apiregistration.k8s.io/v1",
                                   "apis/storage.k8s.io/v1", "apis/apiextensions.k8s.io/v1"}
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    resp = client.get(url)
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert url.endswith("?hash=" + hashlib.sha512(resp.data).hexdigest().upper())
    assert "immutable" in resp.headers["Cache-Control"]
    doc = resp.get_json()
    assert doc["openapi"].startswith("3.0")
    assert "io.k8s.api.apps.v1.Deployment" in doc["components"]["schemas"]
    stale = client.get("/openapi/v3/apis/apps/v1?hash=0000")
    assert stale.status_code == 301 and stale.headers["Location"] == url
    assert client.get("/openapi/v3/apis/nope/v1").status_code == 404
    assert client.get("/openapi/v3", environ_base={"HTTP_AUTHORIZATION": ""}).status_code == 401


def test_v2_json_and_protobuf_over_http(client: FlaskClient) -> None:
    doc = client.get("/openapi/v2", headers={"Accept": "application/json"}).get_json()
    assert doc["swagger"] == "2.0" and "io.k8s.api.core.v1.Pod" in doc["definitions"]
    pb = client.get("/openapi/v2", headers={"Accept": PB_ACCEPT})
    assert pb.status_code == 200
    assert pb.headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert dict(_fields(pb.data))[1] == b"2.0"
    # client-go's Accept for v2 lists protobuf first, then JSON: protobuf wins.
    both = client.get("/openapi/v2", headers={"Accept": f"{PB_ACCEPT}, application/json"})
    assert both.data == pb.data


def test_documents_are_sent_gzipped_to_clients_that_accept_it(client: FlaskClient) -> None:
    plain = client.get("/openapi/v3/api/v1")
    zipped = client.get("/openapi/v3/api/v1", headers={"Accept-Encoding": "gzip, deflate"})
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    assert len(zipped.data) * 4 < len(plain.data)


# ---- real kubectl --------------------------------------------------------------------------------------

@pytest.mark.integration
def test_kubectl_explain_pod_spec_containers(master: RunningMaster) -> None:
    out = kubectl(master, "new", "explain", "pod.spec.containers").stdout
    assert out.startswith("KIND:       Pod\nVERSION:    v1\n\nFIELD: containers <[]Container>\n")
    assert "List of containers belonging to the pod." in out
    assert "A single application container that you want to run within a pod." in out
    assert "  name\t<string> -required-\n    Name of the container specified as a DNS_LABEL." in out
    assert "  ports\t<[]ContainerPort>\n" in out
    assert "  resources\t<ResourceRequirements>\n    Compute Resources required by this container." in out
    assert "  imagePullPolicy\t<string>\n  enum: Always, IfNotPresent, Never\n" in out


@pytest.mark.integration
def test_kubectl_120_validates_against_the_protobuf_document(master: RunningMaster, tmp_path: Path) -> None:
    out = kubectl(master, "old", "explain", "deployment.spec.template.spec.containers.resources").stdout
    assert "RESOURCE: resources <Object>" in out and "Compute Resources required" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers:\n"
                   "  - {name: c, image: i, imagee: x}\n")
    proc = kubectl(master, "old", "create", "--dry-run=client", "-f", str(bad), check=False)
    assert proc.returncode != 0
    assert 'unknown field "imagee" in io.k8s.api.core.v1.Container' in proc.stderr
