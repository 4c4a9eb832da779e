#!/usr/bin/env python3
"""Generate `master/api/proto_types.json`, the field table `master.api.protobuf` decodes request bodies with.

Run at development time (`.venv/bin/python scripts/gen_proto_types.py [--kubectl PATH]`); the output is
committed, so neither the build nor the master needs this script, a network or a Go toolchain.

The facts come from a kubectl binary (the committed table was made from kubectl v1.33, i.e. the
Kubernetes API definitions of that release, Apache-2.0). Every Go program linked with the Kubernetes
API packages carries both halves of what the decoder needs:

  1. gogo-protobuf registers each `generated.proto` as a gzipped `FileDescriptorProto`: message
     names, field numbers, field names (Kubernetes names proto fields after their JSON names), types,
     `repeated`, map entries, and the gogoproto options (`nullable=false` = a non-pointer Go field);
  2. Go's runtime type information keeps every API struct's fields in declaration order with their
     struct tags, i.e. `json:"replicas,omitempty"` next to `protobuf:"varint,1,opt,name=replicas"`.

Joining the two by (package, message, field number) gives, per field, the JSON name and how Go's JSON
encoding treats the value the protobuf decoder produced:

  p  pointer (`*int32`, `*Foo`): emitted whenever it is on the wire, even as 0 / false / "";
  o  non-pointer scalar with `omitempty`: gogo writes it always, JSON drops the zero value;
  v  non-pointer scalar without `omitempty`, or a non-pointer struct (encoding/json never omits
     structs): always emitted, the zero value when absent;
  l  repeated field or map: emitted when non-empty;
  i  embedded `json:",inline"` struct: its fields are merged into the parent object.

Types are `string`, `int32`, `int64`, `uint32`, `uint64`, `bool`, `bytes` (JSON: base64), `double`,
`float`, `map:<value type>` (string keys) or a message name. The messages in `SPECIAL` (Time, MicroTime,
Duration, IntOrString, Quantity, FieldsV1) have hand-written JSON forms in the decoder; this script
only checks that their field numbers are the ones the decoder assumes. A served kind that reaches a
message in `UNSUPPORTED` (RawExtension: an embedded object of any encoding) stops the script.

Reading the Go type data relies on the Go ≥ 1.21 ABI layout (`internal/abi.Type`/`StructType`/
`UncommonType`) of a 64-bit little-endian ELF; the script fails loudly if any message cannot be
matched to exactly one Go struct, so a layout change cannot silently produce a wrong table.
"""

from __future__ import annotations

import argparse
import array
import json
import re
import struct
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "master" / "api" / "proto_types.json"
DEFAULT_KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"

# (apiVersion, kind, fully qualified message); "*" = any group version (the options kinds are
# registered in every group version, so a body may name any of them).
ROOTS: list[tuple[str, str, str]] = [
    *[("v1", k, f"k8s.io.api.core.v1.{k}") for k in (
        "Namespace", "ConfigMap", "Secret", "Service", "Pod", "Endpoints", "ServiceAccount", "Event", "Node",
        "Binding", "ReplicationController", "PersistentVolume", "PersistentVolumeClaim")],
    # (ControllerRevision's data is a RawExtension the table cannot express; only controllers write them.)
    *[("apps/v1", k, f"k8s.io.api.apps.v1.{k}") for k in ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet")],
    ("batch/v1", "Job", "k8s.io.api.batch.v1.Job"),
    ("batch/v1", "CronJob", "k8s.io.api.batch.v1.CronJob"),
    # kubectl 1.20's batch/v1beta1 CronJob has v1's field numbers (v1 only adds timeZone = 8).
    ("batch/v1beta1", "CronJob", "k8s.io.api.batch.v1.CronJob"),
    ("coordination.k8s.io/v1", "Lease", "k8s.io.api.coordination.v1.Lease"),
    ("storage.k8s.io/v1", "StorageClass", "k8s.io.api.storage.v1.StorageClass"),
    ("autoscaling/v1", "Scale", "k8s.io.api.autoscaling.v1.Scale"),
    ("autoscaling/v1", "HorizontalPodAutoscaler", "k8s.io.api.autoscaling.v1.HorizontalPodAutoscaler"),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "k8s.io.api.autoscaling.v2.HorizontalPodAutoscaler"),
    *[("rbac.authorization.k8s.io/v1", k, f"k8s.io.api.rbac.v1.{k}")
      for k in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")],
    ("policy/v1", "Eviction", "k8s.io.api.policy.v1.Eviction"),
    ("authentication.k8s.io/v1", "TokenRequest", "k8s.io.api.authentication.v1.TokenRequest"),
    # (SubjectAccessReview's spec.extra is a map of ExtraValue, a named []string the table cannot express; kubectl
    # never sends one, and other clients send JSON.)
    *[("authorization.k8s.io/v1", k, f"k8s.io.api.authorization.v1.{k}") for k in (
        "SelfSubjectAccessReview", "SelfSubjectRulesReview")],
    ("*", "DeleteOptions", "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions"),
]

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
# Fields whose JSON name is not their proto name (the table records the JSON one, which the decoder writes).
RENAMED = {("k8s.io.api.authentication.v1.BoundObjectReference", "uID")}
# Messages the decoder renders by hand → the (number, name) pairs it assumes.
SPECIAL: dict[str, set[tuple[int, str]]] = {
    _META + "Time": {(1, "seconds"), (2, "nanos")},
    _META + "MicroTime": {(1, "seconds"), (2, "nanos")},
    _META + "Duration": {(1, "duration")},
    _META + "FieldsV1": {(1, "Raw")},
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": {(1, "type"), (2, "intVal"), (3, "strVal")},
    "k8s.io.apimachinery.pkg.api.resource.Quantity": {(1, "string")},
}
UNSUPPORTED = {"k8s.io.apimachinery.pkg.runtime.RawExtension"}
# The envelope every body is wrapped in; also hand-decoded.
ENVELOPE: dict[str, set[tuple[int, str]]] = {
    "k8s.io.apimachinery.pkg.runtime.Unknown": {(1, "typeMeta"), (2, "raw"), (3, "contentEncoding"),
                                                (4, "contentType")},
    "k8s.io.apimachinery.pkg.runtime.TypeMeta": {(1, "apiVersion"), (2, "kind")},
}

_SCALARS = {9: "string", 12: "bytes", 8: "bool", 5: "int32", 3: "int64", 13: "uint32", 4: "uint64", 1: "double",
            2: "float"}
_PREFIXES = ("k8s.io.apimachinery.pkg.apis.", "k8s.io.apimachinery.pkg.util.", "k8s.io.apimachinery.pkg.api.",
             "k8s.io.apimachinery.pkg.", "k8s.io.api.")
_GO_POINTER, _GO_STRUCT = 22, 25


def short(name: str) -> str:
    """k8s.io.api.core.v1.Pod → core.v1.Pod; k8s.io.apimachinery.pkg.apis.meta.v1.Time → meta.v1.Time."""
    for p in _PREFIXES:
        if name.startswith(p):
            return name[len(p):]
    return name


# ---- protobuf wire format (just enough to read descriptors) ------------------------------------------------

def _uvarint(b: bytes, i: int) -> tuple[int, int]:
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def _fields(b: bytes) -> Iterator[tuple[int, int | bytes]]:
    i = 0
    while i < len(b):
        key, i = _uvarint(b, i)
        num, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, i = _uvarint(b, i)
        elif wire == 2:
            n, i = _uvarint(b, i)
            value = b[i:i + n]
            i += n
        elif wire == 1:
            value, i = b[i:i + 8], i + 8
        elif wire == 5:
            value, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield num, value


def _first(b: bytes) -> dict[int, int | bytes]:
    out: dict[int, int | bytes] = {}
    for num, value in _fields(b):
        out.setdefault(num, value)
    return out


def _text(v: int | bytes | None) -> str:
    return v.decode() if isinstance(v, bytes) else ""


@dataclass
class ProtoField:
    name: str
    number: int
    repeated: bool
    type: int
    type_name: str
    nullable: bool


@dataclass
class ProtoMessage:
    name: str
    go_package: str
    map_entry: bool
    fields: list[ProtoField]


def descriptors(binary: bytes) -> dict[str, ProtoMessage]:
    """Every message of every gzipped `*generated.proto` FileDescriptorProto embedded in the binary."""
    messages: dict[str, ProtoMessage] = {}
    at = 0
    while (at := binary.find(b"\x1f\x8b\x08", at)) >= 0:
        try:
            raw = zlib.decompressobj(31).decompress(binary[at:at + 4_000_000])
        except zlib.error:
            raw = b""
        at += 3
        if not raw.startswith(b"\x0a") or b"generated.proto" not in raw[:200]:
            continue
        try:
            top = list(_fields(raw))
        except (ValueError, IndexError):
            continue
        package = next(_text(v) for n, v in top if n == 2)
        opts = next((v for n, v in top if n == 8 and isinstance(v, bytes)), b"")
        go_package = _text(_first(opts).get(11)) if opts else ""
        for n, v in top:
            if n == 4 and isinstance(v, bytes):
                _message(v, package, go_package, messages)
    return messages


def _message(b: bytes, prefix: str, go_package: str, out: dict[str, ProtoMessage]) -> None:
    parts = list(_fields(b))
    name = prefix + "." + next(_text(v) for n, v in parts if n == 1)
    msg = ProtoMessage(name, go_package, False, [])
    for n, v in parts:
        if not isinstance(v, bytes):
            continue
        if n == 7:
            msg.map_entry = _first(v).get(7) == 1
        elif n == 3:
            _message(v, name, go_package, out)
        elif n == 2:
            f = _first(v)
            raw_options = f.get(8)
            options = _first(raw_options) if isinstance(raw_options, bytes) else {}
            msg.fields.append(ProtoField(
                name=_text(f[1]), number=int(f[3]), repeated=f[4] == 3, type=int(f[5]),
                type_name=_text(f.get(6)).lstrip("."), nullable=options.get(65001, 1) != 0))
    out[name] = msg


# ---- Go runtime type information --------------------------------------------------------------------------

@dataclass
class GoField:
    name: str
    tag: str
    kind: int  # reflect.Kind of the field's type


class Elf:
    """Virtual address ↔ file offset for the PT_LOAD segments of a 64-bit little-endian ELF."""

    def __init__(self, data: bytes) -> None:
        if data[:6] != b"\x7fELF\x02\x01":
            raise SystemExit("not a 64-bit little-endian ELF binary")
        phoff, = struct.unpack_from("<Q", data, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
        self.data = data
        self.loads: list[tuple[int, int, int, int]] = []  # vaddr, offset, filesz, flags
        for i in range(phnum):
            header = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
            p_type, p_flags, p_offset, p_vaddr, _paddr, p_filesz = header
            if p_type == 1:
                self.loads.append((p_vaddr, p_offset, p_filesz, p_flags))

    def off(self, va: int) -> int | None:
        for vaddr, offset, size, _ in self.loads:
            if vaddr <= va < vaddr + size:
                return va - vaddr + offset
        return None

    def name(self, va: int) -> tuple[str, str] | None:
        """An `internal/abi.Name` at va: flags, varint length, bytes, [varint tag length, tag]."""
        o = self.off(va)
        if o is None or self.data[o] & 0xF0:
            return None
        n, i = _uvarint(self.data, o + 1)
        text = self.data[i:i + n].decode("latin-1")
        tag = ""
        if self.data[o] & 2:
            tn, j = _uvarint(self.data, i + n)
            tag = self.data[j:j + tn].decode("latin-1")
        return text, tag


def go_structs(elf: Elf) -> dict[str, list[GoField]]:
    """`pkgpath.TypeName` → fields, for every named struct type under k8s.io/ in the read-only segment."""
    ro = [seg for seg in elf.loads if seg[3] == 4]  # PF_R only: .rodata, .typelink, ...
    if len(ro) != 1:
        raise SystemExit("expected one read-only PT_LOAD segment holding the Go type data")
    base, offset, size, _ = ro[0]
    words = array.array("Q", elf.data[offset:offset + size - size % 8])
    lo, hi = base, base + size
    structs: dict[str, list[GoField]] = {}
    for i in range(len(words) - 11):
        # abi.StructType: Type (6 words) | PkgPath | Fields.ptr | Fields.len | Fields.cap | UncommonType
        n = words[i + 8]
        if not 0 < n < 400 or words[i + 9] != n or not lo <= words[i + 7] < hi:
            continue
        head = words[i + 2]
        if (head >> 56) & 0x1F != _GO_STRUCT or not (head >> 32) & 1:  # Kind_, TFlagUncommon
            continue
        pkg_off = words[i + 10] & 0xFFFFFFFF
        pkg = elf.name(base + pkg_off)
        if pkg is None or not pkg[0].startswith("k8s.io/"):
            continue
        tname = elf.name(base + (words[i + 5] & 0xFFFFFFFF))
        if tname is None or "." not in tname[0]:
            continue
        fields: list[GoField] = []
        first = (words[i + 7] - base) // 8
        for k in range(n):
            name_va, type_va = words[first + 3 * k], words[first + 3 * k + 1]
            nm = elf.name(name_va)
            to = elf.off(type_va)
            if nm is None or to is None:
                break
            fields.append(GoField(nm[0], nm[1], elf.data[to + 23] & 0x1F))
        else:
            structs[pkg[0] + "." + tname[0].lstrip("*").split(".", 1)[1]] = fields
    return structs


def _tag(tag: str, key: str) -> str | None:
    m = re.search(rf'(?:^| ){key}:"([^"]*)"', tag)
    return m.group(1) if m else None


# ---- the table ----------------------------------------------------------------------------------------------

def build(kubectl: Path) -> str:
    binary = kubectl.read_bytes()
    messages = descriptors(binary)
    for name, want in (SPECIAL | ENVELOPE).items():
        have = {(f.number, f.name) for f in messages[name].fields}
        if have != want:
            raise SystemExit(f"{name} has fields {sorted(have)}, the decoder assumes {sorted(want)}")
    structs = go_structs(Elf(binary))
    table: dict[str, list[list[object]]] = {}
    pending = [m for _, _, m in ROOTS]
    while pending:
        name = pending.pop()
        if name in table or name in SPECIAL:
            continue
        if name in UNSUPPORTED:
            raise SystemExit(f"{name} is reachable from a served kind; the decoder has no JSON form for it")
        msg = messages[name]
        go = structs.get(msg.go_package + "." + name.rsplit(".", 1)[1])
        if go is None:
            raise SystemExit(f"no Go struct found for {name}")
        by_number: dict[int, GoField] = {}
        for gf in go:
            ptag = _tag(gf.tag, "protobuf")
            if ptag and ptag != "-":
                by_number[int(ptag.split(",")[1])] = gf
        rows: list[list[object]] = []
        for f in msg.fields:
            if f.number not in by_number:
                raise SystemExit(f"{name}.{f.name}: no Go field carries protobuf number {f.number}")
            gf = by_number[f.number]
            jtag = _tag(gf.tag, "json") or ""
            jname, _, jopts = jtag.partition(",")
            if jname == "-":
                continue
            typ = _type(f, messages, pending)
            if f.repeated:
                mode = "l"
            elif jname == "" and "inline" in jopts:
                mode, jname = "i", f.name
            elif gf.kind == _GO_POINTER:
                mode = "p"
            elif f.type == 11 or "omitempty" not in jopts.split(","):
                mode = "v"
            else:
                mode = "o"
            if not f.repeated and (gf.kind == _GO_POINTER) != f.nullable:
                raise SystemExit(f"{name}.{f.name}: Go pointer-ness and gogoproto nullable disagree")
            if jname != f.name and (name, f.name) not in RENAMED:
                raise SystemExit(f"{name}.{f.name}: JSON name {jname!r} differs from the proto name")
            rows.append([f.number, jname or f.name, typ, mode])
        table[short(name)] = rows
    kinds = {f"{v}/{k}": short(m) for v, k, m in ROOTS}
    lines = [f"  {json.dumps(k)}: {json.dumps(table[k], separators=(',', ':'))}" for k in sorted(table)]
    source = ("Kubernetes API protobuf field table (Kubernetes API definitions, Apache-2.0), generated by "
              f"scripts/gen_proto_types.py from {kubectl.name}; see that script for the format. Do not edit.")
    return ("{\n" + f' "_source": {json.dumps(source)},\n "kinds": {json.dumps(kinds, sort_keys=True)},\n'
            + ' "messages": {\n' + ",\n".join(lines) + "\n }\n}\n")


def _type(f: ProtoField, messages: dict[str, ProtoMessage], pending: list[str]) -> str:
    if f.type != 11:
        if f.type not in _SCALARS:
            raise SystemExit(f"{f.name}: unsupported protobuf type {f.type}")
        return _SCALARS[f.type]
    target = messages[f.type_name]
    if target.map_entry:
        key, value = sorted(target.fields, key=lambda x: x.number)
        if key.type != 9:
            raise SystemExit(f"{f.name}: map keys of type {key.type} are not supported")
        return "map:" + _type(value, messages, pending)
    pending.append(target.name)
    return short(target.name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kubectl", type=Path, default=Path(DEFAULT_KUBECTL), help="a kubectl binary (Linux, amd64)")
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed table differs")
    args = ap.parse_args()
    text = build(args.kubectl)
    if args.check:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date", file=sys.stderr)
            sys.exit(1)
        return
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
