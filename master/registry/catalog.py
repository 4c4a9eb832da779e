"""Every resource the API serves, declared in one table.

Handlers, discovery, tables and OpenAPI all read this catalog; a new resource
is one more `ResourceType` entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from master.registry import apiservices, crds, cronjobs, printers, replicationcontrollers, statefulsets, storage
from master.registry.autoscaling import HorizontalPodAutoscalerStrategy
from master.registry.core import (
    ConfigMapStrategy,
    EndpointsStrategy,
    EventStrategy,
    LeaseStrategy,
    NamespaceStrategy,
    NodeStrategy,
    SecretStrategy,
    ServiceAccountStrategy,
)
from master.registry.hpatable import HPA
from master.registry.hpaversions import HpaConversion
from master.registry.pods import PodStrategy
from master.registry.rbac import (
    BINDING_TABLE,
    ROLE_TABLE,
    ClusterRoleBindingStrategy,
    ClusterRoleStrategy,
    RoleBindingStrategy,
    RoleStrategy,
)
from master.registry.resource import ResourceType
from master.registry.services import ServiceStrategy
from master.registry.workloads import DaemonSetStrategy, DeploymentStrategy, JobStrategy, ReplicaSetStrategy

ALL = ("all",)
_EVENT_FIELDS = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                 "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                 "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type")


def builtin_resources(toleration_seconds: int = 30) -> list[ResourceType]:
    resources = _with_crds(_served(toleration_seconds))
    local = frozenset({(r.group, r.version) for r in resources} | {(apiservices.GROUP, "v1")}
                      | set(apiservices.EXTRA_LOCAL))
    return [*resources, ResourceType(apiservices.GROUP, "v1", "APIService", "apiservices", False, (), (),
                                     ("status",), apiservices.APIServiceStrategy(local), table=apiservices.TABLE)]


def _served(toleration_seconds: int) -> list[ResourceType]:
    return [
        ResourceType("", "v1", "Namespace", "namespaces", False, ("ns",), (), ("status", "finalize"),
                     NamespaceStrategy(), ("status.phase",), table=printers.NAMESPACE),
        ResourceType("", "v1", "Node", "nodes", False, ("no",), (), ("status", "proxy"), NodeStrategy(),
                     ("spec.unschedulable",), table=printers.NODE),
        ResourceType("", "v1", "Pod", "pods", True, ("po",), ALL,
                     ("status", "binding", "log", "eviction", "exec", "attach", "portforward", "proxy"),
                     PodStrategy(toleration_seconds),
                     ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                      "spec.serviceAccountName", "status.phase", "status.podIP", "status.nominatedNodeName"),
                     table=printers.POD),
        ResourceType("", "v1", "Service", "services", True, ("svc",), ALL, ("status", "proxy"),
                     ServiceStrategy(), table=printers.SERVICE),
        ResourceType("", "v1", "Endpoints", "endpoints", True, ("ep",), (), (), EndpointsStrategy(),
                     table=printers.ENDPOINTS),
        ResourceType("", "v1", "ConfigMap", "configmaps", True, ("cm",), (), (), ConfigMapStrategy(),
                     table=printers.CONFIGMAP),
        ResourceType("", "v1", "Secret", "secrets", True, (), (), (), SecretStrategy(), ("type",),
                     table=printers.SECRET),
        ResourceType("", "v1", "Event", "events", True, ("ev",), (), (), EventStrategy(), _EVENT_FIELDS,
                     table=printers.EVENT),
        ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), (), ("token",),
                     ServiceAccountStrategy(), table=printers.SERVICEACCOUNT),
        ResourceType("", "v1", "ReplicationController", "replicationcontrollers", True, ("rc",), ALL,
                     ("status", "scale"), replicationcontrollers.ReplicationControllerStrategy(),
                     table=replicationcontrollers.TABLE),
        ResourceType("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",), (), ("status",),
                     storage.PersistentVolumeStrategy(), table=storage.PV_TABLE),
        ResourceType("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",), (), ("status",),
                     storage.PersistentVolumeClaimStrategy(), table=storage.PVC_TABLE),
        ResourceType("apps", "v1", "Deployment", "deployments", True, ("deploy",), ALL, ("status", "scale"),
                     DeploymentStrategy(), table=printers.DEPLOYMENT),
        ResourceType("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ALL, ("status", "scale"),
                     ReplicaSetStrategy(), table=printers.REPLICASET),
        ResourceType("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ALL, ("status",),
                     DaemonSetStrategy(), table=printers.DAEMONSET),
        ResourceType("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ALL, ("status", "scale"),
                     statefulsets.StatefulSetStrategy(), table=statefulsets.TABLE),
        ResourceType("apps", "v1", "ControllerRevision", "controllerrevisions", True, (), (), (),
                     statefulsets.ControllerRevisionStrategy(), table=statefulsets.REVISION_TABLE),
        ResourceType("batch", "v1", "Job", "jobs", True, (), ALL, ("status",), JobStrategy(),
                     ("status.successful",), table=printers.JOB),
        ResourceType("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ALL, ("status",),
                     cronjobs.CronJobStrategy(), table=cronjobs.TABLE),
        ResourceType("batch", "v1beta1", "CronJob", "cronjobs", True, ("cj",), ALL, ("status",),
                     cronjobs.CronJobStrategy(), table=cronjobs.TABLE, conversion=cronjobs.V1beta1Conversion()),
        # Stored as v2 (listed first: the preferred version); v1 is a view of it for older kubectl.
        ResourceType("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",),
                     ALL, ("status",), HorizontalPodAutoscalerStrategy(), table=HPA),
        ResourceType("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",),
                     ALL, ("status",), HorizontalPodAutoscalerStrategy(), table=HPA, conversion=HpaConversion()),
        ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles", True, (), (), (), RoleStrategy(),
                     table=ROLE_TABLE),
        ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False, (), (), (),
                     ClusterRoleStrategy(), table=ROLE_TABLE),
        ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True, (), (), (),
                     RoleBindingStrategy(), table=BINDING_TABLE),
        ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False, (), (),
                     (), ClusterRoleBindingStrategy(), table=BINDING_TABLE),
        ResourceType("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",), (), (),
                     storage.StorageClassStrategy(), table=storage.STORAGECLASS_TABLE),
        ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True, (), (), (), LeaseStrategy(),
                     volatile=True, table=printers.LEASE),
    ]


def _with_crds(resources: list[ResourceType]) -> list[ResourceType]:
    groups = frozenset(r.group for r in resources) | {crds.GROUP}
    return [*resources, ResourceType(crds.GROUP, "v1", "CustomResourceDefinition", "customresourcedefinitions",
                                     False, ("crd", "crds"), ("api-extensions",), ("status",),
                                     crds.CustomResourceDefinitionStrategy(groups), table=crds.TABLE)]


class _View:
    """One consistent set of lookups; the catalog swaps in a new one when the custom resources change."""

    def __init__(self, resources: list[ResourceType]) -> None:
        self.resources = resources
        self.by_path = {(r.group, r.version, r.plural): r for r in resources}
        # A kind served in several versions: by_kind answers the stored one (no conversion).
        self.by_kind = {(r.group, r.kind): r for r in resources if r.conversion is None}
        self.by_gvk = {(r.group, r.version, r.kind): r for r in resources}


class Catalog:
    """Lookup of resource types by group/version/plural, kind, or short name.

    The built-in kinds are fixed; the custom resources that CustomResourceDefinitions
    declare are replaced as a whole (`set_custom`) by whoever watches the CRDs
    (`master.crdsync`). Readers see either the old or the new set, never a mix.
    """

    def __init__(self, resources: list[ResourceType]) -> None:
        self.builtin = list(resources)
        self._view = _View(self.builtin)
        self.custom_signature: object = None
        # CRD name → "" when its names are accepted, else why not (`customresources.accepted_names`).
        self.crd_verdicts: dict[str, str] = {}
        self.generation = 0  # bumped on each change of the custom resources (documents rebuild on it)
        self._listeners: list[Callable[[list[ResourceType]], None]] = []

    @property
    def resources(self) -> list[ResourceType]:
        return self._view.resources

    def set_custom(self, custom: list[ResourceType], signature: object = None,
                   verdicts: dict[str, str] | None = None) -> None:
        """Serve exactly these custom resource types (and the built-in ones); `signature`: what they were
        made from, kept for the caller to compare (`custom_signature`); `verdicts`: every CRD's names verdict."""
        self._view = _View([*self.builtin, *custom])
        self.custom_signature = signature
        self.crd_verdicts = dict(verdicts or {})
        self.generation += 1
        for listener in list(self._listeners):
            listener(custom)

    def on_change(self, listener: Callable[[list[ResourceType]], None]) -> None:
        """Call `listener(custom types)` after every change of the custom resources."""
        self._listeners.append(listener)

    def builtin_groups(self) -> frozenset[str]:
        return frozenset(r.group for r in self.builtin)

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(self._view.resources)

    def stored(self) -> Iterator[ResourceType]:
        """Each kind once, in its stored version: what walks every object (GC, namespace deletion) reads."""
        return (r for r in self._view.resources if r.conversion is None)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._view.by_path.get((group, version, plural))

    def by_kind(self, group: str, kind: str) -> ResourceType | None:
        return self._view.by_kind.get((group, kind))

    def by_api_version(self, api_version: str, kind: str) -> ResourceType | None:
        """The resource type of `kind` in `api_version`; of its stored version when that version is not served."""
        group, _, version = api_version.rpartition("/")
        view = self._view
        return view.by_gvk.get((group, version, kind)) or view.by_kind.get((group, kind))

    def groups(self) -> dict[str, list[str]]:
        """Group name → versions, core group ("") included."""
        out: dict[str, list[str]] = {}
        for r in self._view.resources:
            versions = out.setdefault(r.group, [])
            if r.version not in versions:
                versions.append(r.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [r for r in self._view.resources if r.group == group and r.version == version]
