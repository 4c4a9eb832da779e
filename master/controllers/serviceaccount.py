"""Every active namespace has a `default` ServiceAccount, recreated if someone deletes it.

Pods default to `serviceAccountName: default`, so a namespace without one is
a namespace whose pods reference something missing.
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

    def _account_changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is None and old is not None and podutil.meta(old).get("name") == DEFAULT:
            self.queue.add(str(podutil.meta(old).get("namespace", "")))

    def sync(self, key: str) -> None:
        _, name = split_key(key)
        ns = self.namespaces.get("", name)
        if ns is None or podutil.meta(ns).get("deletionTimestamp"):
            return
        if self.accounts.get(name, DEFAULT) is not None:
            return
        with contextlib.suppress(errors.AlreadyExists, errors.Forbidden, errors.NotFound):
            self.client.create(self.kinds.serviceaccounts, name, {"metadata": {"name": DEFAULT}})
