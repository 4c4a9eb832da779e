"""`apiregistration.k8s.io/v1` APIService: the group versions the API serves, as objects charts and kubectl can read.

pikube serves every group itself; it never proxies to an extension API server
(kube-aggregator's job). So:

* every group version the master serves has an APIService (`v1.apps`,
  `v1beta1.metrics.k8s.io` …), made at start (`kube-aggregator.kubernetes.io/automanaged:
  onstart`) and always `Available` (reason `Local`);
* an APIService a manifest brings (metrics-server's, an operator's) is stored,
  so the manifest applies, but its `spec.service` is not used: for a group
  version pikube serves itself it is still `Available` (served locally), for any
  other it is `Available: False` with reason `AggregationNotSupported`, which
  `kubectl get apiservices` shows as `False (AggregationNotSupported)`.

The status is the server's: a client writing `status` sees it recomputed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.errors import Cause
from core.kube import timefmt
from master.registry.resource import Context, Strategy
from master.registry.tables import AGE, NAME, Column, TableDef

Obj = dict[str, Any]
GROUP = "apiregistration.k8s.io"
AUTOMANAGED = "kube-aggregator.kubernetes.io/automanaged"


def name_of(group: str, version: str) -> str:
    """`v1.apps`; the core group's is `v1.` (version, dot, empty group), as Kubernetes names it."""
    return f"{version}.{group}"


# kube-apiserver's priorities of the groups pikube serves (others: 1000/15).
PRIORITIES = {"": (18000, 1), "apps": (17800, 15), "authorization.k8s.io": (17600, 15),
              "autoscaling": (17500, 30), "batch": (17400, 15), "apiregistration.k8s.io": (17300, 15),
              "rbac.authorization.k8s.io": (17000, 15), "coordination.k8s.io": (16500, 15),
              "metrics.k8s.io": (100, 100)}
# Served by the master outside the catalog (their own routes).
EXTRA_LOCAL = (("metrics.k8s.io", "v1beta1"), ("authorization.k8s.io", "v1"))


class APIServiceStrategy(Strategy):
    has_status = True
    name_rule = ""

    def __init__(self, local: frozenset[tuple[str, str]] = frozenset()) -> None:
        self.local = local

    def _status(self, obj: Obj, old: Obj | None) -> Obj:
        spec = obj.get("spec") or {}
        gv = (str(spec.get("group") or ""), str(spec.get("version") or ""))
        service = spec.get("service")
        if gv in self.local:
            cond = {"type": "Available", "status": "True", "reason": "Local",
                    "message": "Local APIServices are always available" if not service else
                    f"pikube serves {gv[0] or 'core'}/{gv[1]} itself; spec.service is not used"}
        else:
            where = f'{service.get("namespace")}/{service.get("name")}' if isinstance(service, dict) else "none"
            cond = {"type": "Available", "status": "False", "reason": "AggregationNotSupported",
                    "message": f"pikube does not proxy to extension API servers: service {where} is not used"}
        before = next((c for c in ((old or {}).get("status") or {}).get("conditions") or []
                       if c.get("type") == "Available"), None)
        since = before.get("lastTransitionTime") if before and before.get("status") == cond["status"] else None
        cond["lastTransitionTime"] = since or timefmt.rfc3339()
        return {"conditions": [cond]}

    def prepare_create(self, obj: Obj, ctx: Context) -> None:
        obj["status"] = self._status(obj, None)

    def prepare_update(self, new: Obj, old: Obj, ctx: Context) -> None:
        new["status"] = self._status(new, old)

    def prepare_status_update(self, new: Obj, old: Obj) -> Obj:
        merged = dict(old)
        merged["status"] = self._status(old, old)
        return merged

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [Cause("spec", "Required value", "FieldValueRequired")]
        causes: list[Cause] = []
        group, version = str(spec.get("group") or ""), str(spec.get("version") or "")
        name = str((obj.get("metadata") or {}).get("name") or "")
        if not version:
            causes.append(Cause("spec.version", "Required value", "FieldValueRequired"))
        if name != name_of(group, version):
            causes.append(Cause("metadata.name", f'Invalid value: "{name}": must be `spec.version+"."+spec.group`: '
                                f'"{name_of(group, version)}"'))
        for fld, most in (("groupPriorityMinimum", 20000), ("versionPriority", 1000)):
            value = spec.get(fld)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= most:
                causes.append(Cause(f"spec.{fld}", f"Invalid value: {value!r}: must be positive and less than {most}"))
        service = spec.get("service")
        if service is None and not spec.get("insecureSkipTLSVerify") and spec.get("caBundle") is not None:
            causes.append(Cause("spec.caBundle", "Invalid value: a local APIService has no caBundle"))
        if isinstance(service, dict) and (not service.get("namespace") or not service.get("name")):
            causes.append(Cause("spec.service", "Required value: namespace and name", "FieldValueRequired"))
        return causes


def local_apiservice(group: str, version: str) -> Obj:
    group_priority, version_priority = PRIORITIES.get(group, (1000, 15))
    if group == "autoscaling" and version == "v1":
        version_priority = 15
    return {"metadata": {"name": name_of(group, version), "labels": {AUTOMANAGED: "onstart"}},
            "spec": {"group": group, "version": version, "groupPriorityMinimum": group_priority,
                     "versionPriority": version_priority}}


def _service_cell(o: Obj, now: dt.datetime) -> str:
    service = (o.get("spec") or {}).get("service")
    return f'{service.get("namespace")}/{service.get("name")}' if isinstance(service, dict) else "Local"


def _available_cell(o: Obj, now: dt.datetime) -> str:
    for c in (o.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Available":
            return "True" if c.get("status") == "True" else f'{c.get("status")} ({c.get("reason")})'
    return "Unknown"


TABLE = TableDef((
    NAME,
    Column("Service", _service_cell, description="The reference to the service that hosts this API endpoint."),
    Column("Available", _available_cell, description="Whether this service is available."),
    AGE,
))
