"""Every active namespace has a `default` ServiceAccount and the `kube-root-ca.crt` config map, put back if
someone deletes or changes them.

Pods default to `serviceAccountName: default`, so a namespace without one is
a namespace whose pods reference something missing. `kube-root-ca.crt` holds
the cluster CA (`ca.crt`) every pod's API access volume mounts, as
Kubernetes' root CA publisher keeps it.
"""

from __future__ import annotations

import contextlib
from typing import Any

from core import errors
from master.client import Env, Informer, split_key
from master.controllers import podutil
from master.controllers.base import Controller

Obj = dict[str, Any]
DEFAULT = "default"
ROOT_CA = "kube-root-ca.crt"
DESCRIPTION = "kubernetes.io/description"
DESCRIPTION_TEXT = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
                    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
                    "guaranteed across distributions of Kubernetes clusters.")


class ServiceAccountController(Controller):
    name = "serviceaccount"
    workers = 1

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.namespaces: Informer = env.informers.informer(self.kinds.namespaces)
        self.accounts: Informer = env.informers.informer(self.kinds.serviceaccounts)
        self.primary = self.namespaces
        self.namespaces.add_handler(lambda old, new: self.enqueue(new))
        self.accounts.add_handler(self._account_changed)
        self.configmaps: Informer = env.informers.metadata_informer(self.kinds.configmaps)
        self.configmaps.add_handler(self._configmap_changed)
        self._ca: str | None = None

    def _configmap_changed(self, old: Obj | None, new: Obj | None) -> None:
        cm = new or old
        if cm is not None and podutil.meta(cm).get("name") == ROOT_CA:
            self.queue.add(str(podutil.meta(cm).get("namespace", "")))

    def ca_pem(self) -> str:
        if self._ca is None:
            self._ca = (self.env.settings.data_dir / "pki" / "ca.crt").read_text()
        return self._ca

    def _account_changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is None and old is not None and podutil.meta(old).get("name") == DEFAULT:
            self.queue.add(str(podutil.meta(old).get("namespace", "")))

    def sync(self, key: str) -> None:
        _, name = split_key(key)
        ns = self.namespaces.get("", name)
        if ns is None or podutil.meta(ns).get("deletionTimestamp"):
            return
        if self.accounts.get(name, DEFAULT) is None:
            with contextlib.suppress(errors.AlreadyExists, errors.Forbidden, errors.NotFound):
                self.client.create(self.kinds.serviceaccounts, name, {"metadata": {"name": DEFAULT}})
        self._root_ca(name)

    def _root_ca(self, ns: str) -> None:
        try:
            data = {"ca.crt": self.ca_pem()}
        except OSError:
            return  # a master without its CA file (tests that run controllers on a bare store)
        want = {"metadata": {"name": ROOT_CA, "annotations": {DESCRIPTION: DESCRIPTION_TEXT}}, "data": data}
        if self.configmaps.get(ns, ROOT_CA) is None:
            with contextlib.suppress(errors.AlreadyExists, errors.Forbidden, errors.NotFound):
                self.client.create(self.kinds.configmaps, ns, want)
            return
        current = self.client.get(self.kinds.configmaps, ns, ROOT_CA)
        if current is not None and (current.get("data") != data or current.get("binaryData")):
            with contextlib.suppress(errors.Conflict, errors.NotFound):
                fixed = {k: v for k, v in current.items() if k != "binaryData"}
                self.client.update(self.kinds.configmaps, {**fixed, "data": data})
