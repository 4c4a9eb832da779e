"""What 20 CustomResourceDefinitions cost the master: memory (target ≤ 5 MB) and the time until one is served.

The set is modelled on what a Pi owner installs (cert-manager, Traefik, a
Prometheus operator): three large CRDs of cert-manager's size (its
`challenges` and `certificaterequests` schemas are 100 to 400 KB of JSON, mostly
descriptions), the rest 10 to 60 KB. The master's RSS is read before, after the
CRDs are served, and after each has a few objects and kubectl-style reads
(discovery, OpenAPI v3 for each group-version, a table list) were made. Run:

    .venv/bin/python -m bench.crds
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.api import rss_mb
from pikube.dev.localmaster import RunningMaster, start_master

Obj = dict[str, Any]
WORDS = (
    "the", "certificate", "issuer", "reference", "resolves", "against", "the", "namespace", "of", "this",
    "resource", "unless", "a", "cluster", "scoped", "kind", "is", "named", "explicitly", "and", "its",
    "secret", "is", "read", "from", "the", "controller", "namespace", "instead",
)


def _text(seed: int, words: int) -> str:
    return " ".join(WORDS[(seed + i * 7) % len(WORDS)] for i in range(words))


def _schema(depth: int, breadth: int, seed: int) -> Obj:
    """A nested object schema with descriptions, enums, lists and patterns, like a generated operator CRD."""
    props: Obj = {}
    for i in range(breadth):
        name = f"field{seed % 97}x{i}"
        kind = (seed + i) % 5
        if depth > 0 and kind == 0:
            props[name] = {**_schema(depth - 1, breadth, seed * 31 + i), "description": _text(seed + i, 40)}
        elif depth > 0 and kind == 1:
            props[name] = {"type": "array", "description": _text(seed + i, 30),
                           "items": _schema(depth - 1, max(2, breadth // 2), seed * 17 + i)}
        elif kind == 2:
            props[name] = {"type": "string", "enum": ["Always", "Never", "IfNotPresent"],
                           "description": _text(seed + i, 25)}
        elif kind == 3:
            props[name] = {"type": "integer", "format": "int32", "minimum": 0, "description": _text(seed + i, 20)}
        else:
            props[name] = {"type": "string", "pattern": "^[a-z0-9.-]+$", "description": _text(seed + i, 30)}
    return {"type": "object", "properties": props}


def crd(index: int, depth: int, breadth: int) -> Obj:
    group = f"g{index}.bench.example.com"
    spec_schema = _schema(depth, breadth, index + 1)
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"things{index}.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": f"things{index}", "kind": f"Thing{index}", "categories": ["bench"]},
                 "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                               "additionalPrinterColumns": [{"name": "Ready", "type": "string",
                                                             "jsonPath": '.status.conditions[?(@.type=="Ready")]'
                                                                         ".status"}],
                               "schema": {"openAPIV3Schema": {
                                   "type": "object", "description": _text(index, 60),
                                   "properties": {"spec": spec_schema,
                                                  "status": {"type": "object",
                                                             "x-kubernetes-preserve-unknown-fields": True}}}}}]},
    }


def crd_set() -> list[Obj]:
    """3 large (cert-manager-sized) and 17 ordinary CRDs."""
    return [crd(i, 5, 10) if i < 3 else crd(i, 3, 6) for i in range(20)]


class Api:
    def __init__(self, m: RunningMaster) -> None:
        self.base = m.url
        self.session = m.session()

    def call(self, method: str, path: str, body: Obj | None = None, accept: str = "application/json") -> Any:
        resp = self.session.request(method, self.base + path, json=body, headers={"Accept": accept}, timeout=60)
        if resp.status_code >= 400:
            raise LookupError(resp.status_code, resp.text[:300])
        return resp.json() if resp.content[:1] in (b"{", b"[") else resp.content


def _established(api: Api, name: str) -> bool:
    got = api.call("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (got.get("status") or {}).get("conditions") or [])


def run() -> Obj:
    crds = crd_set()
    sizes = sorted(len(json.dumps(c)) for c in crds)
    with tempfile.TemporaryDirectory() as tmp:
        m = start_master(Path(tmp) / "data")
        try:
            api = Api(m)
            api.call("GET", "/apis")
            time.sleep(2.0)  # let start-up settle (controllers' first sync) before the baseline
            before = rss_mb(m.proc.pid)
            served: list[float] = []
            for c in crds:
                t0 = time.monotonic()
                api.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", c)
                group, plural = c["spec"]["group"], c["spec"]["names"]["plural"]
                while True:
                    try:
                        api.call("GET", f"/apis/{group}/v1/namespaces/default/{plural}")
                        break
                    except LookupError as exc:
                        if exc.args[0] != 404:
                            raise
                        time.sleep(0.005)
                served.append(time.monotonic() - t0)
            deadline = time.monotonic() + 30
            while not all(_established(api, c["metadata"]["name"]) for c in crds):
                if time.monotonic() > deadline:
                    raise SystemExit("CRDs not Established within 30 s")
                time.sleep(0.1)
            after_crds = rss_mb(m.proc.pid)
            for c in crds:
                group, plural, kind = c["spec"]["group"], c["spec"]["names"]["plural"], c["spec"]["names"]["kind"]
                for j in range(3):
                    api.call("POST", f"/apis/{group}/v1/namespaces/default/{plural}",
                             {"apiVersion": f"{group}/v1", "kind": kind, "metadata": {"name": f"o{j}"}, "spec": {}})
                api.call("GET", f"/apis/{group}/v1", None)
                api.call("GET", f"/apis/{group}/v1/namespaces/default/{plural}",
                         accept="application/json;as=Table;v=v1;g=meta.k8s.io")
            index = api.call("GET", "/openapi/v3")
            for path, entry in index["paths"].items():
                if ".bench.example.com" in path:
                    api.call("GET", entry["serverRelativeURL"])
            api.call("GET", "/openapi/v2")
            after_use = rss_mb(m.proc.pid)
        finally:
            m.stop()
    served.sort()
    return {
        "crds": len(crds), "crd_json_kb_total": round(sum(sizes) / 1024),
        "crd_json_kb_largest": round(sizes[-1] / 1024),
        "crd_json_kb_median": round(sizes[len(sizes) // 2] / 1024),
        "rss_mb_before": round(before, 1), "rss_mb_20_crds_served": round(after_crds, 1),
        "rss_mb_after_objects_and_documents": round(after_use, 1),
        "crd_cost_mb": round(after_crds - before, 2), "crd_cost_with_use_mb": round(after_use - before, 2),
        "target_mb": 5.0, "ratio_to_target": round((after_use - before) / 5.0, 2),
        "create_to_served_ms_p50": round(served[len(served) // 2] * 1000, 1),
        "create_to_served_ms_max": round(served[-1] * 1000, 1),
    }


def catalog_cost() -> Obj:
    """What serving the set costs the catalog itself (its compact schemas, types and tables), measured in this
    process with tracemalloc from the CRDs' JSON as the store holds it: the figure the ≤ 5 MB target is about."""
    import tracemalloc

    from master.registry.customresources import served_types

    crds = crd_set()
    for i, c in enumerate(crds):
        c["metadata"].update(creationTimestamp="2026-01-01T00:00:00Z", uid=f"u{i}", generation=1)
    blobs = [json.dumps(c).encode() for c in crds]
    del crds
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    parsed = [json.loads(b) for b in blobs]
    types = served_types(parsed)
    peak = tracemalloc.get_traced_memory()[0]
    del parsed  # the CRD objects stay in the store (as bytes), not in the catalog
    kept = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert types
    return {"catalog_mb_20_crds": round((kept - base) / 2**20, 2),
            "catalog_ratio_to_5mb_target": round((kept - base) / 2**20 / 5.0, 2),
            "peak_mb_while_building": round((peak - base) / 2**20, 2)}


def main() -> int:
    print(json.dumps({**catalog_cost(), **run()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
