"""The labels every container the agent makes carries: how an agent restart finds and adopts them.

The `io.kubernetes.*` names are dockershim's, so `docker ps` reads as it did on a
kubelet node. `pikube.io/node` scopes everything: several agents may share one
Docker engine (the local dev cluster does) and each touches only its own.
"""

from __future__ import annotations

from enum import StrEnum

from core import wellknown

NODE = wellknown.NODE_LABEL
KIND = wellknown.KIND_LABEL
POD_UID = "io.kubernetes.pod.uid"
POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
CONTAINER_NAME = "io.kubernetes.container.name"
RESTART_COUNT = "io.kubernetes.container.restartCount"
SPEC_HASH = "io.kubernetes.container.hash"
GRACE = "io.kubernetes.pod.terminationGracePeriod"
SANDBOX_NAME = "POD"


class Kind(StrEnum):
    SANDBOX = "sandbox"
    INIT = "init"
    APP = "app"


def container_name(kind: Kind, pod_name: str, namespace: str, uid: str, name: str, attempt: int) -> str:
    """dockershim's naming: `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`."""
    shown = SANDBOX_NAME if kind is Kind.SANDBOX else name
    return f"k8s_{shown}_{pod_name}_{namespace}_{uid}_{attempt}"
