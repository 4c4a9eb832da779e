"""The ServiceAccount admission step Kubernetes runs on every new pod: its account must exist, and its API
credentials are mounted.

Unless the pod (or else its service account) says `automountServiceAccountToken:
false`, the pod gets the volume kube-apiserver adds, `kube-api-access-XXXXX`: a
projected volume of a bound token (`token`, 3607 s, refreshed by the agent),
the cluster CA (`ca.crt`, from the `kube-root-ca.crt` config map every
namespace holds) and the pod's namespace (`namespace`), mounted read-only at
`/var/run/secrets/kubernetes.io/serviceaccount` in every container that does
not mount something there itself.

A pod naming a service account that does not exist is refused with Kubernetes'
words. The `default` account is the exception: the service account controller
makes it in every namespace a moment after the namespace, and a pod created in
that moment is let in (its agent's token request waits for the account) where
kube-apiserver would refuse it and have the pod's controller retry.
"""

from __future__ import annotations

import secrets
from typing import Any

from core import errors
from master.registry.resource import Context

Obj = dict[str, Any]
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
TOKEN_SECONDS = 3607
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def api_access_volume(name: str) -> Obj:
    return {"name": name, "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_SECONDS, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                       "fieldPath": "metadata.namespace"}}]}}]}}


def admit_pod(pod: Obj, ctx: Context) -> None:
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    meta = pod.get("metadata") or {}
    ns = str(meta.get("namespace") or "default")
    account = str(spec.get("serviceAccountName") or "default")
    spec["serviceAccountName"] = account
    sa = ctx.store.get(f"/core/serviceaccounts/{ns}/{account}")
    if sa is None and account != "default":
        who = meta.get("name") or meta.get("generateName") or ""
        raise errors.Forbidden(message=f'pods "{who}" is forbidden: error looking up service account {ns}/{account}: '
                                       f'serviceaccount "{account}" not found', kind="pods", name=str(who))
    automount = spec.get("automountServiceAccountToken")
    if automount is None and sa is not None:
        automount = sa.get("automountServiceAccountToken")
    if automount is False:
        return
    containers = [c for key in ("initContainers", "containers") for c in spec.get(key) or [] if isinstance(c, dict)]
    if all(any(m.get("mountPath") == MOUNT_PATH for m in c.get("volumeMounts") or []) for c in containers):
        return
    volumes = spec.setdefault("volumes", [])
    if not isinstance(volumes, list):
        return
    taken = {v.get("name") for v in volumes if isinstance(v, dict)}
    name = ""
    while not name or name in taken:
        name = "kube-api-access-" + "".join(secrets.choice(_ALPHABET) for _ in range(5))
    volumes.append(api_access_volume(name))
    for c in containers:
        mounts = c.setdefault("volumeMounts", [])
        if isinstance(mounts, list) and not any(m.get("mountPath") == MOUNT_PATH for m in mounts):
            mounts.append({"name": name, "readOnly": True, "mountPath": MOUNT_PATH})
