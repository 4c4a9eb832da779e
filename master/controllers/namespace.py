"""Namespace lifecycle: a deleted namespace empties itself, then goes.

Deleting a namespace makes it `Terminating` with `spec.finalizers:
[kubernetes]` (the API does that). This controller then deletes everything
namespaced in it — workloads in the background, so their own controllers and
the garbage collector are not raced — and checks again until nothing is left
(pods may take their grace period), and finally removes the `kubernetes`
finalizer through the `finalize` subresource, which lets the namespace go.
"""

from __future__ import annotations

import copy
from typing import Any

from core import errors
from master.client import Env, Informer, split_key
from master.controllers import podutil
from master.controllers.base import Controller

Obj = dict[str, Any]
FINALIZER = "kubernetes"
COMPONENT = "namespace-controller"


class NamespaceController(Controller):
    name = "namespace"
    workers = 1

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.namespaces: Informer = env.informers.informer(self.kinds.namespaces)
        self.primary = self.namespaces
        self.namespaces.add_handler(lambda old, new: self.enqueue(new or old))

    def sync(self, key: str) -> None:
        _, name = split_key(key)
        ns = self.namespaces.get("", name)
        if ns is None:
            # Gone without us (an update of a Terminating namespace can remove it early):
            # whatever is left in it can never be listed by namespace again, so remove it.
            if self.client.get(self.kinds.namespaces, "", name) is None and self._delete_contents(name):
                self.queue.add_after(key, 1.0)
            return
        if not podutil.meta(ns).get("deletionTimestamp"):
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return
        if self._delete_contents(name):
            self.queue.add_after(key, 1.0)
            return
        live = self.client.get(self.kinds.namespaces, "", name)
        if live is None:
            return
        new = copy.deepcopy(live)
        new.setdefault("spec", {})["finalizers"] = [
            f for f in (new["spec"].get("finalizers") or []) if f != FINALIZER]
        try:
            self.client.update(self.kinds.namespaces, new, subresource="finalize")
        except errors.NotFound:
            return

    def _delete_contents(self, namespace: str) -> int:
        """Delete everything in `namespace` (in the background); how many objects are still there."""
        remaining = 0
        for rt in self.client.catalog.stored():
            if not rt.namespaced:
                continue
            for obj in self.client.list(rt, namespace):
                remaining += 1
                m = podutil.meta(obj)
                if not m.get("deletionTimestamp"):
                    self.client.delete(rt, namespace, m["name"], propagation="Background", uid=m.get("uid", ""))
        return remaining
