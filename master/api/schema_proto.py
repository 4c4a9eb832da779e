"""The Swagger 2.0 document as gnostic's `openapi.v2.Document` protobuf, for kubectl's protobuf request.

kubectl 1.20 (and every kubectl up to 1.26 for `explain`, apply and client-side
validation) fetches `/openapi/v2` with `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`
and fails `apply`/`create -f` if it cannot parse the answer. An empty Document would
parse too, but only by turning kubectl's validation and schema-based patching off;
a real encoding lets kubectl 1.20 reject misspelt fields and compute apply patches
from the `x-kubernetes-patch-*` extensions, as against a real cluster.

No protobuf library is needed for this: the wire format is small (varints and
length-delimited fields) and only a handful of messages of gnostic's
`openapiv2/OpenAPIv2.proto` are written. Field numbers below are that file's.
Extension values and enum members travel as gnostic's `Any{yaml}`; JSON is YAML.
"""

from __future__ import annotations

import json
from typing import Any

Obj = dict[str, Any]


# ---- wire format ---------------------------------------------------------------------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _bytes(number: int, data: bytes) -> bytes:
    return _key(number, 2) + _varint(len(data)) + data


def _str(number: int, text: str | None) -> bytes:
    return _bytes(number, text.encode()) if text else b""


def _strs(number: int, texts: list[str] | None) -> bytes:
    return b"".join(_bytes(number, t.encode()) for t in texts or [])


def _bool(number: int, value: bool | None) -> bytes:
    return _key(number, 0) + b"\x01" if value else b""


def _msg(number: int, data: bytes) -> bytes:
    """An embedded message (written even when empty: presence matters for oneofs)."""
    return _bytes(number, data)


# ---- messages ------------------------------------------------------------------------------------------

def _any(value: Any) -> bytes:
    """gnostic Any: field 2 is the YAML text of the value."""
    return _str(2, json.dumps(value, sort_keys=True))


def _named_any(name: str, value: Any) -> bytes:
    return _str(1, name) + _msg(2, _any(value))


def _extensions(number: int, obj: Obj) -> bytes:
    return b"".join(_msg(number, _named_any(k, v)) for k, v in obj.items() if k.startswith("x-"))


def schema(s: Obj) -> bytes:
    """openapi.v2.Schema."""
    out = [_str(1, s.get("$ref")), _str(2, s.get("format")), _str(3, s.get("title")),
           _str(4, s.get("description"))]
    if "default" in s:
        out.append(_msg(5, _any(s["default"])))
    out.append(_strs(19, s.get("required")))
    out.extend(_msg(20, _any(v)) for v in s.get("enum", []))
    extra = s.get("additionalProperties")
    if isinstance(extra, dict):
        out.append(_msg(21, _msg(1, schema(extra))))
    elif isinstance(extra, bool):
        out.append(_msg(21, _key(2, 0) + _varint(int(extra))))
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        out.append(_msg(22, _strs(1, types)))
    items = s.get("items")
    if isinstance(items, dict):
        out.append(_msg(23, _msg(1, schema(items))))
    out.extend(_msg(24, schema(sub)) for sub in s.get("allOf", []))
    props = s.get("properties")
    if props:
        out.append(_msg(25, b"".join(_msg(1, _str(1, n) + _msg(2, schema(p))) for n, p in props.items())))
    out.append(_bool(27, s.get("readOnly")))
    out.append(_extensions(31, s))
    return b"".join(out)


def _parameter(p: Obj) -> bytes:
    """openapi.v2.ParametersItem (a body, query or path parameter)."""
    if p.get("in") == "body":
        body = (_str(1, p.get("description")) + _str(2, p["name"]) + _str(3, "body") +
                _bool(4, p.get("required")) + _msg(5, schema(p.get("schema", {}))) + _extensions(6, p))
        return _msg(1, _msg(1, body))
    where = p.get("in")
    common = _bool(1, p.get("required")) + _str(2, where) + _str(3, p.get("description")) + _str(4, p["name"])
    if where == "query":
        sub = (common + _str(6, p.get("type")) + _str(7, p.get("format")) + _bool(20, p.get("uniqueItems")) +
               b"".join(_msg(21, _any(v)) for v in p.get("enum", [])) + _extensions(23, p))
        which = 3
    elif where == "path":
        sub = (common + _str(5, p.get("type")) + _str(6, p.get("format")) + _bool(19, p.get("uniqueItems")) +
               b"".join(_msg(20, _any(v)) for v in p.get("enum", [])) + _extensions(22, p))
        which = 4
    else:
        raise ValueError(f"parameter location {where!r} is not encoded")
    return _msg(1, _msg(2, _msg(which, sub)))


def _operation(op: Obj) -> bytes:
    out = [_strs(1, op.get("tags")), _str(2, op.get("summary")), _str(3, op.get("description")),
           _str(5, op.get("operationId")), _strs(6, op.get("produces")), _strs(7, op.get("consumes"))]
    out.extend(_msg(8, _parameter(p)) for p in op.get("parameters", []))
    codes = b""
    for code, response in op.get("responses", {}).items():
        body = _str(1, response.get("description"))
        if "schema" in response:
            body += _msg(2, _msg(1, schema(response["schema"])))
        codes += _msg(1, _str(1, code) + _msg(2, _msg(1, body)))
    out.append(_msg(9, codes))
    out.append(_strs(10, op.get("schemes")))
    out.append(_extensions(13, op))
    return b"".join(out)


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item(item: Obj) -> bytes:
    out = [_msg(_METHODS[m], _operation(item[m])) for m in _METHODS if m in item]
    out.extend(_msg(9, _parameter(p)) for p in item.get("parameters", []))
    out.append(_extensions(10, item))
    return b"".join(out)


def encode_document(doc: Obj) -> bytes:
    """openapi.v2.Document for a Swagger 2.0 document (as `master.api.schema_docs` writes them)."""
    info = doc.get("info", {})
    out = [_str(1, doc.get("swagger", "2.0")),
           _msg(2, _str(1, info.get("title")) + _str(2, info.get("version")) + _str(3, info.get("description")))]
    out.append(_strs(6, doc.get("consumes")))
    out.append(_strs(7, doc.get("produces")))
    paths = b"".join(_msg(2, _str(1, p) + _msg(2, _path_item(item))) for p, item in doc.get("paths", {}).items())
    out.append(_msg(8, paths))
    definitions = b"".join(_msg(1, _str(1, n) + _msg(2, schema(s)))
                           for n, s in doc.get("definitions", {}).items())
    out.append(_msg(9, definitions))
    out.append(_extensions(16, doc))
    return b"".join(out)
