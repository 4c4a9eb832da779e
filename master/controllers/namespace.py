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

from master.client import Informer, split_key
from master.controllers import podutil
from master.controllers.base import Controller, Env
from pikube import errors

Obj = dict[str, Any]
FINALIZER = "kubernetes"
COMPONENT = "namespace-controller"


class NamespaceController(Controller):
    name = "namespace"

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.namespaces: Informer = env.informers.informer(self.kinds.namespaces)
        self.primary = self.namespaces
        self.namespaces.add_handler(lambda old, new: self.enqueue(new))

    def sync(self, key: str) -> None:
        _, name = split_key(key)
        ns = self.namespaces.get("", name)
        if ns is None or not podutil.meta(ns).get("deletionTimestamp"):
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return
        remaining = 0
        for rt in self.client.catalog:
            if not rt.namespaced:
                continue
            for obj in self.client.list(rt, name):
                remaining += 1
                m = podutil.meta(obj)
                if not m.get("deletionTimestamp"):
                    self.client.delete(rt, name, m["name"], propagation="Background", uid=m.get("uid", ""))
        if remaining:
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
