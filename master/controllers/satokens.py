"""Legacy service account token Secrets: filled in when made, deleted with their service account.

A Secret of type `kubernetes.io/service-account-token` annotated
`kubernetes.io/service-account.name: NAME` gets, as Kubernetes' token
controller gives it, the account's uid in `kubernetes.io/service-account.uid`
and `data.token` (a non-expiring token, valid while this Secret holds it),
`data.ca.crt` and `data.namespace`. One naming an account that does not exist
(or no longer has that uid) is deleted. Charts and older tools still make
such Secrets to get a long-lived token for a dashboard or a CI job.
"""

from __future__ import annotations

import base64
import contextlib
import copy
from typing import Any

from core import errors
from master.client import Env, Informer, split_key
from master.controllers import podutil
from master.controllers.base import Controller
from master.registry.satokens import SA_NAME_ANNOTATION, SA_UID_ANNOTATION, TOKEN_SECRET_TYPE

Obj = dict[str, Any]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class ServiceAccountTokenController(Controller):
    name = "serviceaccount-token"
    workers = 1

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.secrets: Informer = env.informers.metadata_informer(self.kinds.secrets)
        self.accounts: Informer = env.informers.informer(self.kinds.serviceaccounts)
        self.primary = self.secrets
        self.secrets.add_handler(self._secret_changed)
        self.accounts.add_handler(self._account_changed)

    def resync_keys(self) -> list[str]:
        keys = self.secrets.keys()
        return [k for k in keys if self._named(self.secrets.get_key(k))]

    @staticmethod
    def _named(secret: Obj | None) -> bool:
        return bool(secret) and bool((podutil.meta(secret or {}).get("annotations") or {}).get(SA_NAME_ANNOTATION))

    def _secret_changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is not None and self._named(new):
            self.enqueue(new)

    def _account_changed(self, old: Obj | None, new: Obj | None) -> None:
        sa = new or old
        assert sa is not None
        ns, name = podutil.meta(sa).get("namespace", ""), podutil.meta(sa).get("name")
        for secret in self.secrets.list(str(ns)):
            if (podutil.meta(secret).get("annotations") or {}).get(SA_NAME_ANNOTATION) == name:
                self.enqueue(secret)

    def sync(self, key: str) -> None:
        ns, name = split_key(key)
        secret = self.client.get(self.kinds.secrets, ns, name)
        if secret is None or secret.get("type") != TOKEN_SECRET_TYPE or podutil.meta(secret).get("deletionTimestamp"):
            return
        annotations = podutil.meta(secret).get("annotations") or {}
        account_name = str(annotations.get(SA_NAME_ANNOTATION) or "")
        account = self.accounts.get(ns, account_name)
        uid = str(annotations.get(SA_UID_ANNOTATION) or "")
        if account is None or (uid and podutil.meta(account).get("uid") != uid):
            if account is None and self.client.get(self.kinds.serviceaccounts, ns, account_name) is not None:
                return  # the cache is behind: the account exists
            with contextlib.suppress(errors.NotFound):
                self.client.delete(self.kinds.secrets, ns, name, uid=str(podutil.meta(secret).get("uid") or ""))
            return
        data = secret.get("data") or {}
        if data.get("token") and data.get("ca.crt") and data.get("namespace") and uid:
            return
        account_uid = str(podutil.meta(account).get("uid"))
        token = self.client.handlers.ctx.sa_tokens.legacy(ns, account_name, account_uid, name)
        ca = (self.env.settings.data_dir / "pki" / "ca.crt").read_text()
        filled = copy.deepcopy(secret)
        filled["metadata"].setdefault("annotations", {})[SA_UID_ANNOTATION] = account_uid
        filled["data"] = {**data, "token": _b64(token), "ca.crt": _b64(ca), "namespace": _b64(ns)}
        with contextlib.suppress(errors.Conflict, errors.NotFound):
            self.client.update(self.kinds.secrets, filled)
