"""The CustomResourceDefinition controller: a CRD's status conditions, and its objects deleted before it goes.

As kube-apiserver's naming, establishing and finalizing controllers together:

* `NamesAccepted` says whether the CRD's plural, kind and short names are its own
  (the verdict this master's CRD watcher published with what it serves, by
  `customresources.accepted_names`), `Established` that its resources are served; `acceptedNames`
  and `storedVersions` follow. Only a change is written.
* A deleted CRD keeps the `customresourcecleanup` finalizer until every object of
  it is gone: it is marked `Terminating`, its objects are deleted (new ones are
  refused meanwhile), then the finalizer is removed and the CRD leaves the store.
"""

from __future__ import annotations

import copy
from typing import Any

from core.kube import timefmt
from master.client import Env, Informer
from master.controllers.base import Controller
from master.registry.crds import CLEANUP_FINALIZER, GROUP, storage_version
from master.registry.resource import ResourceType

Obj = dict[str, Any]


class CustomResourceDefinitionController(Controller):
    name = "customresourcedefinitions"
    workers = 1

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        rt = env.client.catalog.by_kind(GROUP, "CustomResourceDefinition")
        if rt is None:
            raise LookupError("the catalog serves no CustomResourceDefinition")
        self.rt = rt
        # Only metadata is cached (a cert-manager CRD is hundreds of KB of schema): a sync reads the CRDs
        # from the store, which happens only when one changes.
        self.crds: Informer = env.informers.metadata_informer(rt)
        self.primary = self.crds
        self.crds.add_handler(self._changed)

    def _changed(self, old: Obj | None, new: Obj | None) -> None:
        # A CRD's names decide another's (a conflict clears when the older one goes): look at all of them.
        for crd in self.crds.list():
            self.enqueue(crd)

    def sync(self, key: str) -> None:
        name = key.rsplit("/", 1)[-1]
        crd = self.client.get(self.rt, "", name)
        if crd is None:
            return
        if crd["metadata"].get("deletionTimestamp"):
            self._finalize(crd)
            return
        verdicts = self.client.catalog.crd_verdicts  # decided by this master's CRD watcher (master.crdsync)
        if name not in verdicts:
            self.queue.add_after(name, 0.2)  # the watcher has not seen it yet
            return
        problem = verdicts[name]
        status = _status(crd, problem)
        if status != crd.get("status"):
            new = copy.deepcopy(crd)
            new["status"] = status
            self.client.update_status(self.rt, new)

    def _served_type(self, crd: Obj) -> ResourceType | None:
        spec = crd.get("spec") or {}
        rt = self.client.catalog.by_kind(str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", "")))
        if rt is None or rt.custom is None or rt.custom.crd_name != crd["metadata"]["name"]:
            return None
        return rt

    def _finalize(self, crd: Obj) -> None:
        name = crd["metadata"]["name"]
        if CLEANUP_FINALIZER not in (crd["metadata"].get("finalizers") or []):
            return
        status = crd.get("status") or {}
        if not _condition(status, "Terminating"):
            new = copy.deepcopy(crd)
            new["status"] = _set_condition(copy.deepcopy(status), "Terminating", "True",
                                           "InstanceDeletionInProgress", "CustomResource deletion is in progress")
            self.client.update_status(self.rt, new)
            return  # the informer brings the CRD back
        rt = self._served_type(crd)
        if rt is None and _condition(status, "Established") == "True":
            # Its objects may exist but this master's catalog does not have the type (yet): look again soon.
            self.queue.add_after(name, 1.0)
            return
        if rt is not None:
            remaining = 0
            for obj in self.client.list(rt):
                remaining += 1
                m = obj["metadata"]
                if not m.get("deletionTimestamp"):
                    self.client.delete(rt, m.get("namespace", ""), m["name"], propagation="Background",
                                       uid=m.get("uid", ""))
            if remaining:
                self.queue.add_after(name, 1.0)
                return
        live = self.client.get(self.rt, "", name)
        if live is None:
            return
        new = copy.deepcopy(live)
        new["metadata"]["finalizers"] = [f for f in new["metadata"].get("finalizers") or []
                                         if f != CLEANUP_FINALIZER]
        self.client.update(self.rt, new)


def _condition(status: Obj, kind: str) -> str:
    for c in status.get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == kind:
            return str(c.get("status", ""))
    return ""


def _set_condition(status: Obj, kind: str, value: str, reason: str, message: str) -> Obj:
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    for c in conditions:
        if c.get("type") == kind:
            if c.get("status") != value:
                c["lastTransitionTime"] = timefmt.rfc3339()
            c.update({"status": value, "reason": reason, "message": message})
            break
    else:
        conditions.append({"type": kind, "status": value, "lastTransitionTime": timefmt.rfc3339(),
                           "reason": reason, "message": message})
    status["conditions"] = conditions
    return status


def _status(crd: Obj, problem: str) -> Obj:
    """The status a live CRD should have, given whether its names are accepted (`problem` empty)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    status = copy.deepcopy(crd.get("status") or {})
    if problem:
        reason, _, message = problem.partition(": ")
        _set_condition(status, "NamesAccepted", "False", reason, message)
        _set_condition(status, "Established", "False", "NotAccepted", "not all names are accepted")
        status.setdefault("acceptedNames", {"kind": "", "plural": ""})
    else:
        accepted = {k: names[k] for k in ("plural", "singular", "shortNames", "kind", "listKind", "categories")
                    if names.get(k)}
        status["acceptedNames"] = accepted
        _set_condition(status, "NamesAccepted", "True", "NoConflicts", "no conflicts found")
        _set_condition(status, "Established", "True", "InitialNamesAccepted", "the initial names have been accepted")
    stored = list(status.get("storedVersions") or [])
    version = storage_version(crd)
    if version and version not in stored and not problem:
        stored.append(version)
    status["storedVersions"] = stored
    return status
