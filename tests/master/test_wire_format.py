"""Status lines and error bodies byte for byte as kube-apiserver writes them: clients compare both.

The expected bytes are what kube-apiserver sends for the same requests, built from the Kubernetes sources:
the messages of k8s.io/apimachinery/pkg/api/errors/errors.go (NewNotFound, NewAlreadyExists, NewConflict,
NewInvalid: `<kind> "<name>" is invalid: <field>: <message>`), negotiation.NewUnsupportedMediaTypeError of
k8s.io/apiserver (the patch types in the order installer.go lists them for built-in kinds), `metav1.Status`'s
field order (kind, apiVersion, metadata, status, message, reason, details, code; StatusCause: reason, message,
field), Go's encoding/json (no spaces, a newline after the object) and Go's net/http reason phrases.
"""

from __future__ import annotations

import json
import socket
import ssl
from typing import Any

from tests.master.conftest import RunningMaster

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "wire"},
       "spec": {"containers": [{"name": "a", "image": "busybox"}]}}


def raw(m: RunningMaster, method: str, path: str, body: Any = None,
        ctype: str = "application/json") -> tuple[str, bytes]:
    """The status line and body exactly as they came over the wire."""
    s = m.session()
    ctx = ssl.create_default_context(cafile=str(s.verify))
    cert, key = s.cert if isinstance(s.cert, tuple) else (str(s.cert), None)
    ctx.load_cert_chain(cert, key)
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    with socket.create_connection(("127.0.0.1", m.port)) as plain, \
            ctx.wrap_socket(plain, server_hostname="localhost") as tls:
        tls.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
        got = b""
        while chunk := tls.recv(65536):
            got += chunk
    head, _, payload = got.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", payload
        while rest:
            size_text, _, rest = rest.partition(b"\r\n")
            size = int(size_text, 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        payload = out
    return head.split(b"\r\n", 1)[0].decode(), payload


def status(message: str, reason: str, code: int, details: str = "") -> bytes:
    detail = f',"details":{details}' if details else ""
    return (f'{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":{json.dumps(message)},'
            f'"reason":"{reason}"{detail},"code":{code}}}\n').encode()


def test_errors_are_byte_for_byte_kubernetes(master: RunningMaster) -> None:
    base = "/api/v1/namespaces/default/pods"
    assert raw(master, "GET", f"{base}/nope") == (
        "HTTP/1.1 404 Not Found", status('pods "nope" not found', "NotFound", 404, '{"name":"nope","kind":"pods"}'))
    line, _ = raw(master, "POST", base, POD)
    assert line == "HTTP/1.1 201 Created"
    assert raw(master, "POST", base, POD) == (
        "HTTP/1.1 409 Conflict",
        status('pods "wire" already exists', "AlreadyExists", 409, '{"name":"wire","kind":"pods"}'))
    stale = {**POD, "metadata": {"name": "wire", "resourceVersion": "1"}}
    assert raw(master, "PUT", f"{base}/wire", stale) == (
        "HTTP/1.1 409 Conflict",
        status('Operation cannot be fulfilled on pods "wire": the object has been modified; please apply your '
               "changes to the latest version and try again", "Conflict", 409, '{"name":"wire","kind":"pods"}'))
    invalid = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"}, "spec": {}}
    assert raw(master, "POST", base, invalid) == (
        "HTTP/1.1 422 Unprocessable Entity",
        status('Pod "bad" is invalid: spec.containers: Required value', "Invalid", 422,
               '{"name":"bad","kind":"Pod","causes":[{"reason":"FieldValueRequired","message":"Required value",'
               '"field":"spec.containers"}]}'))
    assert raw(master, "PATCH", f"{base}/wire", b"{}", "text/plain") == (
        "HTTP/1.1 415 Unsupported Media Type",
        status("the body of the request was in an unknown format - accepted media types include: "
               "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, "
               "application/apply-patch+yaml", "UnsupportedMediaType", 415))


def test_the_python_clients_reason_is_gos_phrase(master: RunningMaster) -> None:
    import pytest
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    api = client.CoreV1Api(config.new_client_from_config(str(master.kubeconfig)))
    with pytest.raises(ApiException) as caught:
        api.read_namespaced_config_map("absent", "default")
    assert (caught.value.status, caught.value.reason) == (404, "Not Found")
    api.create_namespaced_config_map("default", {"metadata": {"name": "twice"}})
    with pytest.raises(ApiException) as again:
        api.create_namespaced_config_map("default", {"metadata": {"name": "twice"}})
    assert (again.value.status, again.value.reason) == (409, "Conflict")
