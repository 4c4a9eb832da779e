"""The strategic-merge-patch facts of the Kubernetes types pikube serves, as one declarative table.

Kubernetes keeps these in Go struct tags (`patchStrategy:"merge"
patchMergeKey:"name"`); strategic merge patch needs them to know that
`containers` merge by `name` while `tolerations` are replaced whole. Each
entry below names a field of a type, how lists (or maps) in it patch, and the
type of its value (the element type for lists) so the lookup can descend.
Fields not listed patch the default way: maps merge key by key, lists are
replaced. Tags checked against k8s.io/api (core/v1, apps/v1, batch/v1,
meta/v1) as shipped in kubectl 1.33.

Server-side apply reads the same table (one source of list facts): its
list types follow the rule Kubernetes' OpenAPI converter uses when a field has
no `x-kubernetes-list-type` — a merge list with a key is a map keyed by it, a
merge list of primitives is a set, anything else is atomic. Where Kubernetes'
list-map keys differ from the strategic merge key (container and service
ports are keyed by port *and* protocol) the entry says so in `ssa_keys`, and
`atomic` marks structs and maps Kubernetes tags `x-kubernetes-map-type:
atomic` (label selectors).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MERGE = "merge"
REPLACE = "replace"


@dataclass(frozen=True)
class PatchMeta:
    """How one field patches.

    `strategy` is "merge" (lists merge: by `merge_key` for lists of objects,
    as a set for primitives), "replace" (maps replaced whole) or "" (default);
    `retain_keys` marks fields whose patches may carry `$retainKeys`; `type` is
    the table entry of the value (of each element for lists), if known.
    """

    strategy: str = ""
    merge_key: str = ""
    retain_keys: bool = False
    type: str | None = None
    ssa_keys: tuple[str, ...] = ()
    atomic: bool = False


DEFAULT = PatchMeta()


def _merge(key: str = "", of: str | None = None, *, retain_keys: bool = False,
           ssa_keys: tuple[str, ...] = ()) -> PatchMeta:
    return PatchMeta(strategy=MERGE, merge_key=key, retain_keys=retain_keys, type=of, ssa_keys=ssa_keys)


#: `x-kubernetes-map-type: atomic`: applied and owned as one value.
ATOMIC_MAP = PatchMeta(atomic=True)

#: Defaults of list-map key fields an element may omit (Kubernetes' schema carries them).
KEY_DEFAULTS: Mapping[str, object] = {"protocol": "TCP"}

ATOMIC_LIST, SET_LIST, MAP_LIST = "atomic", "set", "map"


def list_type(meta: PatchMeta) -> tuple[str, tuple[str, ...]]:
    """Server-side apply's view of a list field: (list type, list-map keys)."""
    if meta.strategy != MERGE:
        return ATOMIC_LIST, ()
    if meta.ssa_keys:
        return MAP_LIST, meta.ssa_keys
    if meta.merge_key:
        return MAP_LIST, (meta.merge_key,)
    return SET_LIST, ()


def _of(type_name: str, *, retain_keys: bool = False) -> PatchMeta:
    return PatchMeta(retain_keys=retain_keys, type=type_name)


def _object(spec: str | None = None, status: str | None = None, **fields: PatchMeta) -> dict[str, PatchMeta]:
    """A top-level kind: metadata is always ObjectMeta."""
    out: dict[str, PatchMeta] = {"metadata": _of("ObjectMeta")}
    if spec:
        out["spec"] = _of(spec)
    if status:
        out["status"] = _of(status)
    out.update(fields)
    return out


_CONDITIONS = {"conditions": _merge("type")}

TYPES: Mapping[str, Mapping[str, PatchMeta]] = {
    # meta/v1
    "ObjectMeta": {
        "finalizers": _merge(),
        "ownerReferences": _merge("uid"),
    },
    # core/v1
    "PodTemplateSpec": {"metadata": _of("ObjectMeta"), "spec": _of("PodSpec")},
    "PodSpec": {
        "volumes": _merge("name", retain_keys=True),
        "initContainers": _merge("name", "Container"),
        "containers": _merge("name", "Container"),
        "ephemeralContainers": _merge("name", "Container"),
        "imagePullSecrets": _merge("name"),
        "hostAliases": _merge("ip"),
        "topologySpreadConstraints": _merge("topologyKey", ssa_keys=("topologyKey", "whenUnsatisfiable")),
        "resourceClaims": _merge("name", retain_keys=True),
        "schedulingGates": _merge("name"),
        "tolerations": DEFAULT,  # no strategy: replaced whole
        "readinessGates": DEFAULT,
    },
    "Container": {
        "ports": _merge("containerPort", ssa_keys=("containerPort", "protocol")),
        "env": _merge("name"),
        "volumeMounts": _merge("mountPath"),
        "volumeDevices": _merge("devicePath"),
        "envFrom": DEFAULT,  # no strategy: replaced whole
        "resizePolicy": DEFAULT,
    },
    "PodStatus": {
        **_CONDITIONS,
        "podIPs": _merge("ip"),
        "hostIPs": _merge("ip"),
        "resourceClaimStatuses": _merge("name", retain_keys=True),
        "containerStatuses": DEFAULT,
        "initContainerStatuses": DEFAULT,
        "ephemeralContainerStatuses": DEFAULT,
    },
    "ServiceSpec": {"ports": _merge("port", ssa_keys=("port", "protocol")), "selector": ATOMIC_MAP},
    "ServiceStatus": dict(_CONDITIONS),
    "NodeSpec": {"podCIDRs": _merge(), "taints": DEFAULT},
    "NodeStatus": {"addresses": _merge("type"), **_CONDITIONS},
    "NamespaceSpec": {"finalizers": DEFAULT},
    "NamespaceStatus": dict(_CONDITIONS),
    # apps/v1
    "DeploymentSpec": {
        "selector": ATOMIC_MAP,
        "template": _of("PodTemplateSpec"),
        "strategy": _of("DeploymentStrategy", retain_keys=True),
    },
    "DeploymentStrategy": {},
    "DeploymentStatus": dict(_CONDITIONS),
    "ReplicaSetSpec": {"template": _of("PodTemplateSpec"), "selector": ATOMIC_MAP},
    "ReplicaSetStatus": dict(_CONDITIONS),
    "DaemonSetSpec": {"template": _of("PodTemplateSpec"), "selector": ATOMIC_MAP},
    "DaemonSetStatus": dict(_CONDITIONS),
    "StatefulSetSpec": {"template": _of("PodTemplateSpec"), "volumeClaimTemplates": DEFAULT,
                        "selector": ATOMIC_MAP},
    "StatefulSetStatus": dict(_CONDITIONS),
    # batch/v1
    "JobSpec": {"template": _of("PodTemplateSpec"), "selector": ATOMIC_MAP},
    "JobStatus": dict(_CONDITIONS),
    "JobTemplateSpec": {"metadata": _of("ObjectMeta"), "spec": _of("JobSpec")},
    "CronJobSpec": {"jobTemplate": _of("JobTemplateSpec")},
    # top-level kinds
    "Pod": _object("PodSpec", "PodStatus"),
    "PodTemplate": _object(template=_of("PodTemplateSpec")),
    "Service": _object("ServiceSpec", "ServiceStatus"),
    "Node": _object("NodeSpec", "NodeStatus"),
    "Namespace": _object("NamespaceSpec", "NamespaceStatus"),
    "Endpoints": _object(subsets=DEFAULT),  # no strategy: replaced whole
    "ConfigMap": _object(),
    "Secret": _object(),
    "Event": _object(),
    "ServiceAccount": _object(secrets=_merge("name"), imagePullSecrets=DEFAULT),
    "Deployment": _object("DeploymentSpec", "DeploymentStatus"),
    "ReplicaSet": _object("ReplicaSetSpec", "ReplicaSetStatus"),
    "DaemonSet": _object("DaemonSetSpec", "DaemonSetStatus"),
    "StatefulSet": _object("StatefulSetSpec", "StatefulSetStatus"),
    "Job": _object("JobSpec", "JobStatus"),
    "CronJob": _object("CronJobSpec"),
    "Lease": _object(),
    "Scale": _object(),
}

#: Kinds strategic merge patch knows. Others patch by the default rules (lists replaced).
KINDS = frozenset({
    "Pod", "PodTemplate", "Service", "Node", "Namespace", "Endpoints", "ConfigMap", "Secret", "Event",
    "ServiceAccount", "Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job", "CronJob", "Lease",
    "Scale",
})


# Entries made at run time from custom resources' schemas (`master.registry.customresources`), under names
# that cannot clash with the table's ("cr:<definition>…"). A field "*" stands for every key of a map
# (`additionalProperties`).
_RUNTIME: dict[str, Mapping[str, PatchMeta]] = {}
ANY_KEY = "*"


def register(types: Mapping[str, Mapping[str, PatchMeta]]) -> None:
    """Add (or replace) run-time type entries: a CustomResourceDefinition's list and map facts."""
    _RUNTIME.update(types)


def root_type(kind: str) -> str | None:
    """The table entry for a top-level `kind` (or a registered run-time root), or None for kinds without
    patch metadata."""
    return kind if kind in KINDS or kind in _RUNTIME else None


def lookup(type_name: str | None, field: str) -> PatchMeta:
    """How `field` of `type_name` patches; the default for unknown types and fields."""
    if type_name is None:
        return DEFAULT
    entry = TYPES.get(type_name)
    if entry is not None:
        return entry.get(field, DEFAULT)
    runtime = _RUNTIME.get(type_name)
    if runtime is None:
        return DEFAULT
    return runtime.get(field) or runtime.get(ANY_KEY, DEFAULT)
