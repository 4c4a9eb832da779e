"""Tests for `master.api.protobuf`: Kubernetes protobuf request bodies decode to the JSON kubectl means.

Three kinds of evidence:
  * real bodies: kubectl 1.33 `create …` commands against a tiny recording HTTP server, compared with
    the same command's `--dry-run=client -o json` (kubectl's own JSON of the very object it sends);
  * hand-built bodies for what `kubectl create` never sends (times, quantities, inline structs,
    pointers set to zero, unknown fields, packed repeats), with the expected JSON written from the
    Kubernetes Go types' JSON rules, not from our table;
  * robustness: every truncation, byte flips and garbage raise `errors.BadRequest` or decode, nothing else.
"""

from __future__ import annotations

import base64
import json
import random
import shlex
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from core import errors
from master.api import protobuf
from master.api.protobuf import decode_object, go_duration
from tests.conftest import require
from tests.master.conftest import KUBECTL_NEW, ROOT

# `kubectl.1.33 create deployment d --image=busybox --replicas=3 --port=80`, as sent on the wire.
DEPLOYMENT_BODY = bytes.fromhex(
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b4010a1b0a016412001a0022002a003200380042005a080a"
    "036170701201641286010803120a0a080a036170701201641a6e0a1a0a0012001a0022002a003200380042005a080a0361707012"
    "0164125012320a0762757379626f78120762757379626f782a00320a0a001000185022002a0042006a007200800100880100900100"
    "a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038"
    "001a002200")


# ---- a minimal protobuf encoder for hand-built bodies ----------------------------------------------------------

def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative numbers: two's complement, ten bytes, as Go writes int32/int64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def i(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def b(num: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def msg(*parts: bytes) -> bytes:
    return b"".join(parts)


def entry(num: int, key: str, value: bytes | str) -> bytes:
    return b(num, msg(b(1, key), b(2, value)))


def envelope(api_version: str, kind: str, raw: bytes, encoding: str = "") -> bytes:
    return protobuf.MAGIC + msg(b(1, msg(b(1, api_version), b(2, kind))), b(2, raw), b(3, encoding), b(4, ""))


def meta(name: str, *extra: bytes) -> bytes:
    return b(1, msg(b(1, name), *extra))


# ---- real kubectl bodies -------------------------------------------------------------------------------------

_RESOURCES = {"namespaces": ("v1", "Namespace"), "configmaps": ("v1", "ConfigMap"), "secrets": ("v1", "Secret"),
              "services": ("v1", "Service"), "serviceaccounts": ("v1", "ServiceAccount"), "pods": ("v1", "Pod"),
              "deployments": ("apps/v1", "Deployment"), "jobs": ("batch/v1", "Job")}
_DISCOVERY: dict[str, Any] = {
    "/api": {"kind": "APIVersions", "versions": ["v1"],
             "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}} for g in ("apps", "batch")]},
}
_ANSWERS = {**_RESOURCES, "priorityclasses": ("scheduling.k8s.io/v1", "PriorityClass")}  # what a POST returns
for _plural, (_gv, _kind) in _RESOURCES.items():
    _doc = _DISCOVERY.setdefault("/api/v1" if _gv == "v1" else f"/apis/{_gv}",
                                 {"kind": "APIResourceList", "groupVersion": _gv, "resources": []})
    _doc["resources"].append({"name": _plural, "singularName": _kind.lower(), "kind": _kind,
                              "namespaced": _plural != "namespaces", "verbs": ["create", "get", "list"]})


@dataclass
class Captured:
    path: str
    content_type: str
    body: bytes


@dataclass
class Recorder:
    """A plain-HTTP stand-in for the API server: discovery, and POSTs recorded and answered 201."""

    kubeconfig: Path
    cache: Path
    posts: list[Captured] = field(default_factory=list)

    def kubectl(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([KUBECTL_NEW, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache),
                               *args], capture_output=True, text=True, timeout=60)

    def capture(self, args: list[str]) -> Captured:
        self.posts.clear()
        done = self.kubectl(args)
        assert done.returncode == 0, done.stderr
        assert len(self.posts) == 1, self.posts
        return self.posts[0]

    def client_json(self, args: list[str]) -> Any:
        # flags go before a `--` that ends kubectl's own arguments (`create job … -- sh -c …`)
        before = len(self.posts)
        done = self.kubectl([args[0], "--dry-run=client", "-o", "json", *args[1:]])
        assert done.returncode == 0, done.stderr
        assert len(self.posts) == before, "a client-side dry run must not reach the server"
        return json.loads(done.stdout)


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _json(self, code: int, obj: Any) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            doc = _DISCOVERY.get(self.path.split("?")[0])
            if doc is None:
                self._json(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                                 "reason": "NotFound", "message": "not served by the recorder"})
            else:
                self._json(200, doc)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path.split("?")[0]
            recorder.posts.append(Captured(path, self.headers.get("Content-Type", ""), body))
            api_version, kind = _ANSWERS[path.rsplit("/", 1)[-1]]
            self._json(201, {"apiVersion": api_version, "kind": kind, "metadata": {"name": "captured"}})

    return Handler


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorder]:
    require(Path(KUBECTL_NEW).exists(), f"{KUBECTL_NEW} is not installed")
    tmp = tmp_path_factory.mktemp("protobuf")
    kubeconfig = tmp / "kubeconfig"
    rec = Recorder(kubeconfig, tmp / "cache")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # kubectl talks plain HTTP to an http:// server, without credentials
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "default"}}]}))
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _without_null_creation_timestamps(obj: Any) -> Any:
    """kubectl's JSON writes the zero metav1.Time as `creationTimestamp: null`; the decoder leaves zero
    times out (on the wire they are an empty message, and the master treats null and absent alike)."""
    if isinstance(obj, dict):
        return {k: _without_null_creation_timestamps(v) for k, v in obj.items()
                if not (k == "creationTimestamp" and v is None)}
    if isinstance(obj, list):
        return [_without_null_creation_timestamps(v) for v in obj]
    return obj


CREATES = [
    "create namespace x",
    "create configmap c --from-literal=a=b --from-literal=n=1",
    "create secret generic s --from-literal=k=v",
    "create secret docker-registry reg --docker-server=r.io --docker-username=u --docker-password=p",
    "create deployment d --image=busybox --replicas=3 --port=80",
    "create deployment z --image=busybox --replicas=0",
    "create deployment m --image=busybox --image=nginx",
    "create service nodeport n --tcp=80:8080 --node-port=30080",
    "create service clusterip cl --tcp=5678:8080 --tcp=53",
    "create job j --image=busybox -- sh -c 'echo hi'",
    "create serviceaccount sa",
]


@pytest.mark.integration
@pytest.mark.parametrize("command", CREATES)
def test_kubectl_create_bodies_decode_to_kubectls_own_json(recorder: Recorder, command: str) -> None:
    args = shlex.split(command)
    sent = recorder.capture(args)
    assert sent.content_type == protobuf.MEDIA_TYPE
    assert sent.body.startswith(protobuf.MAGIC)
    # Everything else is equal as it stands: `status: {}`, `strategy: {}`, `resources: {}` are on the wire
    # too (gogo writes non-pointer structs always) and Go's JSON never omits a struct.
    assert decode_object(sent.body) == _without_null_creation_timestamps(recorder.client_json(args))


@pytest.mark.integration
def test_kubectl_binary_configmap_and_explicit_zero_replicas(recorder: Recorder, tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(bytes(range(256)))
    args = ["create", "configmap", "bin", f"--from-file={blob}"]
    got = decode_object(recorder.capture(args).body)
    assert got == _without_null_creation_timestamps(recorder.client_json(args))
    assert got["binaryData"] == {"blob": base64.b64encode(bytes(range(256))).decode()}
    zero = decode_object(recorder.capture(["create", "deployment", "z", "--image=busybox", "--replicas=0"]).body)
    assert zero["spec"]["replicas"] == 0  # a pointer set to 0 survives; absent would mean "default to 1"


@pytest.mark.integration
def test_unserved_kind_from_kubectl_is_a_clear_bad_request(recorder: Recorder) -> None:
    sent = recorder.capture(["create", "priorityclass", "pc", "--value=5"])
    with pytest.raises(errors.BadRequest) as err:
        decode_object(sent.body)
    assert "the protobuf body names kind PriorityClass which this server does not know" in err.value.message


@pytest.mark.integration
@pytest.mark.parametrize("command", CREATES)
def test_every_truncation_of_a_real_body_is_a_bad_request_or_a_prefix_message(recorder: Recorder,
                                                                              command: str) -> None:
    _truncations(recorder.capture(shlex.split(command)).body)


@pytest.mark.integration
def test_committed_table_matches_the_generator() -> None:
    require(Path(KUBECTL_NEW).exists(), f"{KUBECTL_NEW} is not installed")
    done = subprocess.run([str(ROOT / ".venv/bin/python"), str(ROOT / "scripts/gen_proto_types.py"), "--check",
                           "--kubectl", KUBECTL_NEW], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# ---- the captured body, without kubectl --------------------------------------------------------------------

def test_captured_deployment_body() -> None:
    assert decode_object(DEPLOYMENT_BODY) == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"app": "d"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "busybox", "image": "busybox", "resources": {},
                                         "ports": [{"containerPort": 80}]}]}},
            "strategy": {}},
        "status": {}}


def _raw_span(body: bytes) -> tuple[int, int]:
    """Where runtime.Unknown's `raw` (field 2) lies in a body: (first byte, end)."""
    pos = len(protobuf.MAGIC)
    assert body[pos] == 0x0A
    pos += 2 + body[pos + 1]  # typeMeta, shorter than 128 bytes in every body here
    assert body[pos] == 0x12
    length, shift, pos = 0, 0, pos + 1
    while True:
        length |= (body[pos] & 0x7F) << shift
        pos += 1
        if body[pos - 1] < 0x80:
            return pos, pos + length
        shift += 7


def _truncations(body: bytes) -> None:
    start, end = _raw_span(body)
    for cut in range(len(body)):
        try:
            got = decode_object(body[:cut])
        except errors.BadRequest:
            continue
        # A cut between the envelope's fields leaves a shorter, valid message; one inside `raw` cannot
        assert not start < cut < end, f"a body cut at {cut} inside raw [{start}, {end}) decoded: {got}"
        assert isinstance(got, dict)


def test_truncations_of_the_captured_body() -> None:
    _truncations(DEPLOYMENT_BODY)


def test_byte_flips_and_garbage_raise_only_bad_request() -> None:
    rng = random.Random(1234)
    bodies = []
    for pos in range(len(protobuf.MAGIC), len(DEPLOYMENT_BODY)):
        for value in (0x00, 0x7F, 0x80, 0xFF, DEPLOYMENT_BODY[pos] ^ 0x08):
            bodies.append(DEPLOYMENT_BODY[:pos] + bytes([value]) + DEPLOYMENT_BODY[pos + 1:])
    bodies += [protobuf.MAGIC + rng.randbytes(rng.randrange(1, 200)) for _ in range(2000)]
    bodies += [protobuf.MAGIC + b"\x0a\x0f\x0a\x07apps/v1\x12\x0aDeployment\x12" + rng.randbytes(n) for n in range(60)]
    decoded = 0
    for body in bodies:
        try:
            assert isinstance(decode_object(body), dict)
            decoded += 1
        except errors.BadRequest as exc:
            assert exc.message.startswith("the protobuf body") or "empty" in exc.message
    assert decoded < len(bodies)


@pytest.mark.parametrize(("body", "message"), [
    (b"", "the body of the request is empty"),
    (b"k8s", "does not start with the Kubernetes magic prefix"),
    (b"{\"kind\": \"Pod\"}", "does not start with the Kubernetes magic prefix"),
    (protobuf.MAGIC, "names no kind"),
    (protobuf.MAGIC + b"\x0a\x05\x0a\x02v1", "is malformed"),
    (protobuf.MAGIC + b"\x0a\x80", "is malformed"),
    (protobuf.MAGIC + b"\x08\x01", "is malformed"),  # typeMeta as a varint
    (protobuf.MAGIC + b"\x0b", "is malformed"),  # group wire types are not protobuf Kubernetes writes
    (envelope("v1", "Widget", b""), "the protobuf body names kind Widget which this server does not know"),
    (envelope("apps/v1beta1", "Deployment", b""), "names kind Deployment which this server does not know"),
    (envelope("v1", "ConfigMap", b"", encoding="gzip"), "content encoding 'gzip'"),
    (envelope("v1", "ConfigMap", i(1, 5)), "wrong wire type 0 for field 'metadata' of core.v1.ConfigMap"),
    (envelope("v1", "ConfigMap", meta("c", b(1, "x"))[:-1]), "is malformed"),
    (envelope("v1", "Pod", b(2, b(2, b(8, entry(1, "cpu", b(1, "")))))), "an empty string is not a quantity"),
])
def test_bad_bodies(body: bytes, message: str) -> None:
    with pytest.raises(errors.BadRequest) as err:
        decode_object(body)
    assert message in err.value.message


# ---- hand-built bodies: JSON rules of the Go types ---------------------------------------------------------

T = 1704164645  # 2024-01-02T03:04:05Z


def test_object_meta_times_pointers_and_managed_fields() -> None:
    raw = msg(
        meta("p",
             b(3, "ns"), i(7, 0),  # generation 0: int64 with omitempty → dropped
             b(8, i(1, T)),  # creationTimestamp
             b(9, b""),  # deletionTimestamp: *Time present but zero → JSON null → left out
             i(10, 0),  # deletionGracePeriodSeconds: *int64 0 → kept
             entry(11, "app", "web"),
             b(13, msg(b(1, "ReplicaSet"), b(3, "rs"), b(4, "u-1"), b(5, "apps/v1"), i(6, 1), i(7, 0))),
             b(17, msg(b(1, "kubectl"), b(2, "Update"), b(3, "v1"), b(4, i(1, T + 1)), b(6, "FieldsV1"),
                       b(7, b(1, b'{"f:metadata":{"f:labels":{}}}'))))),
    )
    got = decode_object(envelope("v1", "Pod", raw))
    assert got["metadata"] == {
        "name": "p", "namespace": "ns", "creationTimestamp": "2024-01-02T03:04:05Z",
        "deletionGracePeriodSeconds": 0, "labels": {"app": "web"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-1",
                             "controller": True, "blockOwnerDeletion": False}],
        "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                           "time": "2024-01-02T03:04:06Z", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:metadata": {"f:labels": {}}}}]}
    assert got["spec"] == {} and got["status"] == {}  # absent non-pointer structs: Go's JSON writes `{}`


def test_pod_spec_inline_structs_intorstring_quantity_and_zero_values() -> None:
    probe = msg(b(1, b(2, msg(b(1, "/healthz"), b(2, msg(i(1, 1), b(3, "http")))))),  # handler (inline)
                i(2, 0), i(4, 10))  # initialDelaySeconds 0 (omitempty) dropped, periodSeconds 10
    container = msg(
        b(1, "app"), b(2, "nginx"),
        b(6, msg(b(1, ""), i(3, 0), b(4, "TCP"))),  # containerPort has no omitempty: 0 stays
        b(7, msg(b(1, "K"), b(3, b(4, msg(b(1, b(1, "s")), b(2, "k")))))),  # secretKeyRef with inline name
        b(8, msg(entry(1, "cpu", b(1, "500m")), entry(2, "memory", b""))),  # a Quantity with no string → "0"
        b(10, probe),
        b(15, msg(i(5, 0), i(4, -1))),  # runAsNonRoot (ptr) false stays, runAsUser (ptr) negative
    )
    spec = msg(
        b(1, msg(b(1, "v"), b(2, b(2, msg(b(1, ""), b(2, b(1, "1Gi"))))))),  # volume with inline emptyDir
        b(2, container),
        i(4, 0),  # terminationGracePeriodSeconds *int64 = 0 → kept
        i(11, 0),  # hostNetwork false (omitempty) → dropped
        b(22, msg(b(1, "k"), b(2, "Exists"), b(3, ""), i(5, 30))),  # toleration, tolerationSeconds ptr
    )
    got = decode_object(envelope("v1", "Pod", msg(meta("p"), b(2, spec))))
    assert got["spec"] == {
        "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}}],
        "containers": [{
            "name": "app", "image": "nginx",
            "ports": [{"containerPort": 0, "protocol": "TCP"}],
            "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "0"}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
            "securityContext": {"runAsNonRoot": False, "runAsUser": -1},
        }],
        "terminationGracePeriodSeconds": 0,
        "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 30}],
    }


def test_intorstring_integer_and_packed_repeated_ints() -> None:
    rule = msg(b(1, "FailJob"),
               b(2, msg(b(2, "In"), b(3, _varint(1) + _varint(2)), i(3, 42))))  # packed 1, 2 then unpacked 42
    spec = msg(b(6, b(2, b(2, msg(b(1, "c"), b(2, "busybox"))))),  # template.spec.containers
               b(11, b(1, rule)))  # podFailurePolicy
    got = decode_object(envelope("batch/v1", "Job", msg(meta("j"), b(2, spec))))
    assert got["spec"]["podFailurePolicy"] == {"rules": [{"action": "FailJob", "onExitCodes": {
        "operator": "In", "values": [1, 2, 42]}}]}
    svc = msg(meta("s"), b(2, b(1, msg(b(1, "p"), i(3, 80), b(4, msg(i(1, 0), i(2, 8080)))))))
    assert decode_object(envelope("v1", "Service", svc))["spec"]["ports"] == [
        {"name": "p", "port": 80, "targetPort": 8080}]
    svc = msg(meta("s"), b(2, b(1, msg(i(3, 80)))))  # targetPort absent: a non-pointer struct, Go writes 0
    assert decode_object(envelope("v1", "Service", svc))["spec"]["ports"] == [{"port": 80, "targetPort": 0}]


def test_lease_microtime_and_explicit_zero_pointers() -> None:
    spec = msg(b(1, "node-a"), i(2, 15), b(3, msg(i(1, T), i(2, 123_456_789))), b(4, b""), i(5, 0))
    got = decode_object(envelope("coordination.k8s.io/v1", "Lease", msg(meta("l"), b(2, spec))))
    assert got["spec"] == {"holderIdentity": "node-a", "leaseDurationSeconds": 15,
                           "acquireTime": "2024-01-02T03:04:05.123456Z", "leaseTransitions": 0}


def test_event_required_strings_and_zero_times() -> None:
    raw = msg(meta("e.1", b(3, "default")),
              b(2, msg(b(1, "Pod"), b(3, "p"))),
              b(3, "Started"), b(6, b""), b(7, i(1, T)), i(8, 0), b(10, b""))
    got = decode_object(envelope("v1", "Event", raw))
    # firstTimestamp and eventTime are zero (null in JSON): left out. count 0 is omitempty. The
    # reporting fields have no omitempty in the Go type, so Go's JSON writes them even when empty.
    assert got == {"apiVersion": "v1", "kind": "Event",
                   "metadata": {"name": "e.1", "namespace": "default"},
                   "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Started",
                   "source": {}, "lastTimestamp": "2024-01-02T03:04:05Z",
                   "reportingComponent": "", "reportingInstance": ""}


def test_scale_omitempty_versus_required_int() -> None:
    got = decode_object(envelope("autoscaling/v1", "Scale", msg(meta("d"), b(2, i(1, 0)), b(3, i(1, 0)))))
    # ScaleSpec.replicas is `int32 json:"replicas,omitempty"`, ScaleStatus.replicas `int32 json:"replicas"`
    assert got["spec"] == {} and got["status"] == {"replicas": 0}


def test_node_quantities_daemon_endpoint_and_required_strings() -> None:
    status = msg(entry(1, "cpu", b(1, "4")), entry(1, "memory", b(1, "8Gi")),
                 b(6, b(1, i(1, 10250))),  # daemonEndpoints.kubeletEndpoint.Port (JSON name "Port")
                 b(7, b(7, "v1.33.0")))  # nodeInfo: only kubeletVersion set
    got = decode_object(envelope("v1", "Node", msg(meta("n"), b(3, status))))
    assert got["status"]["capacity"] == {"cpu": "4", "memory": "8Gi"}
    assert got["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    info = got["status"]["nodeInfo"]
    assert info["kubeletVersion"] == "v1.33.0"
    assert info["machineID"] == "" and info["architecture"] == ""  # `json:"machineID"`: written even when empty


def test_secret_bytes_and_delete_options_in_any_group_version() -> None:
    secret = msg(meta("s"), entry(2, "k", b"\x00\xffv"), b(3, "Opaque"), i(5, 0))
    assert decode_object(envelope("v1", "Secret", secret)) == {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "AP92"},
        "type": "Opaque", "immutable": False}
    options = msg(i(1, 0), b(2, b(1, "uid-1")), b(4, "Foreground"), b(5, "All"))
    for gv in ("v1", "apps/v1", "meta.k8s.io/v1"):
        assert decode_object(envelope(gv, "DeleteOptions", options)) == {
            "apiVersion": gv, "kind": "DeleteOptions", "gracePeriodSeconds": 0,
            "preconditions": {"uid": "uid-1"}, "propagationPolicy": "Foreground", "dryRun": ["All"]}


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    unknown = (i(99, 7) + _varint(98 << 3 | 1) + b"\x00" * 8 + b(97, "x") + _varint(96 << 3 | 5) + b"\x00" * 4)
    raw = msg(unknown, meta("c", unknown), entry(2, "a", "b"), unknown)
    assert decode_object(envelope("v1", "ConfigMap", raw)) == {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}


def test_invalid_utf8_becomes_replacement_characters_like_go_json() -> None:
    got = decode_object(envelope("v1", "ConfigMap", msg(meta("c"), entry(2, "a", b"x\xffy"))))
    assert got["data"] == {"a": "x\ufffdy"}


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"), (1, "1ns"), (999, "999ns"), (1_500, "1.5µs"), (2_000_000, "2ms"), (1_234_567, "1.234567ms"),
    (1_000_000_000, "1s"), (1_500_000_000, "1.5s"), (90_000_000_000, "1m30s"), (3_600_000_000_000, "1h0m0s"),
    (-3_723_000_000_001, "-1h2m3.000000001s"), (-5, "-5ns"),
])
def test_go_duration_strings(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_known_kinds_cover_the_served_creates() -> None:
    kinds = set(protobuf.known_kinds())
    for gv_kind in [("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"), ("v1", "Pod"),
                    ("v1", "Endpoints"), ("v1", "ServiceAccount"), ("v1", "Event"), ("v1", "Node"),
                    ("v1", "Binding"), ("apps/v1", "Deployment"), ("apps/v1", "ReplicaSet"),
                    ("apps/v1", "DaemonSet"), ("batch/v1", "Job"), ("coordination.k8s.io/v1", "Lease"),
                    ("autoscaling/v1", "Scale"), ("policy/v1", "Eviction"), ("*", "DeleteOptions")]:
        assert gv_kind in kinds
