"""A StatefulSet pod's identity: its name and ordinal, labels, hostname, subdomain and claim volumes.

A pod belongs to set `web` when its name is `web-<ordinal>` (Kubernetes reads
the parent and ordinal off the name, `(.*)-([0-9]+)$`); the set's ordinals
run from `spec.ordinals.start` (0) for `replicas`. A new pod is the template
of its revision with the labels `statefulset.kubernetes.io/pod-name`,
`apps.kubernetes.io/pod-index` and `controller-revision-hash`, `hostname` =
its name and `subdomain` = `serviceName` (so the headless service gives it a
DNS name), and for each claim template a volume of the template's name that
mounts the pod's own claim (replacing a template volume of that name).
"""

from __future__ import annotations

import re
from typing import Any

from master.controllers import podutil
from master.controllers.statefulset import claims

Obj = dict[str, Any]
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"
_NAME = re.compile(r"(.*)-([0-9]+)")


def ordinal(set_name: str, pod_name: str) -> int | None:
    """The pod's ordinal if it is a member of set `set_name` by its name, else None."""
    match = _NAME.fullmatch(pod_name)
    if match is None or match.group(1) != set_name:
        return None
    return int(match.group(2))


def start(sts: Obj) -> int:
    return int(((sts.get("spec") or {}).get("ordinals") or {}).get("start") or 0)


def wanted(sts: Obj) -> range:
    first = start(sts)
    return range(first, first + int((sts.get("spec") or {}).get("replicas") or 0))


def new_pod(sts: Obj, template: Obj, revision: str, index: int) -> Obj:
    spec, name = sts.get("spec") or {}, str(podutil.meta(sts)["name"])
    pod_name = f"{name}-{index}"
    pod = podutil.pod_from_template(template, sts, "apps/v1", "StatefulSet", f"{name}-", {
        POD_NAME_LABEL: pod_name, POD_INDEX_LABEL: str(index), REVISION_LABEL: revision})
    pod["metadata"]["name"] = pod_name
    pod_spec = pod["spec"]
    pod_spec["hostname"] = pod_name
    if spec.get("serviceName"):
        pod_spec["subdomain"] = spec["serviceName"]
    templates = [t for t in spec.get("volumeClaimTemplates") or [] if isinstance(t, dict)]
    names = {(t.get("metadata") or {}).get("name") for t in templates}
    volumes = [{"name": (t.get("metadata") or {}).get("name"),
                "persistentVolumeClaim": {"claimName": claims.name(t, name, index)}} for t in templates]
    volumes += [v for v in pod_spec.get("volumes") or [] if v.get("name") not in names]
    if volumes:
        pod_spec["volumes"] = volumes
    return pod
