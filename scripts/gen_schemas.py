#!/usr/bin/env python3
"""Generate the API schema data the master serves from the official `kubernetes` client's models.

Run at development time (`.venv/bin/python scripts/gen_schemas.py`); the output is
committed under `master/registry/schemata/` so the master never imports the heavy client.

The client's pydantic models carry the Kubernetes API definitions' type names, JSON
names, descriptions and required fields: they decide which definitions and fields
exist. The client generator dropped some facts, put back here:
  * named scalar types (Time, MicroTime, Quantity, IntOrString, FieldsV1, RawExtension),
    and enum values of the common fields: from small tables below;
  * the descriptions of fields whose type is another definition, integer formats and
    the extensions kubectl reads (x-kubernetes-patch-merge-key, -patch-strategy,
    -list-type, -list-map-keys, -map-type, -unions): from `--reference`, the
    Kubernetes JSON schemas that the `kubernetes-validate` wheel ships (derived from
    the same Kubernetes OpenAPI definitions, Apache-2.0). Get it with
        pip download kubernetes-validate==1.37.0 --no-deps -d /tmp/kv
    and pass the wheel. With `--no-reference` the tables below stand in for the
    extensions and formats (checked by hand against the Go types) and ref-typed fields
    have no description; with it, the generator reports where the tables disagree.
  * x-kubernetes-group-version-kind: from the kinds served (ROOTS below).

Outputs (compact JSON, keys sorted, so a rerun is a no-op diff):
  definitions.json  every definition reachable from the served kinds, as Swagger 2.0 schemas
                    whose `$ref`s are bare definition names (the server adds the prefix);
  structure.json    the field skeleton `master.registry.schemas.unknown_fields` walks, and the
                    GVK → definition name index (no descriptions: cheap to load on every master).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import types
import typing
import zipfile
from pathlib import Path
from typing import Any

import kubernetes.client.models as models

Obj = dict[str, Any]
OUT = Path(__file__).resolve().parent.parent / "master" / "registry" / "schemata"

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
CORE = "io.k8s.api.core.v1."
EXT = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
TIME = META + "Time"
MICROTIME = META + "MicroTime"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INTORSTR = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
FIELDSV1 = META + "FieldsV1"
RAWEXT = "io.k8s.apimachinery.pkg.runtime.RawExtension"

# (client class, definition package, GVKs). Order matters: a nested type belongs to the
# package of the first root that reaches it (PodTemplateSpec comes before apps and batch).
_CORE_KINDS = ["Namespace", "Node", "Pod", "PodTemplateSpec", "Service", "Endpoints", "ConfigMap",
               "Secret", "Event", "ServiceAccount", "Binding", "ReplicationController", "PersistentVolume",
               "PersistentVolumeClaim"]
ROOTS: list[tuple[str, str, str, str]] = [  # class, package, group, version
    *[("CoreV1Event" if k == "Event" else f"V1{k}", CORE, "", "v1") for k in _CORE_KINDS],
    *[(f"V1{k}", "io.k8s.api.apps.v1.", "apps", "v1") for k in ("Deployment", "ReplicaSet", "DaemonSet",
                                                                  "StatefulSet", "ControllerRevision")],
    ("V1Job", "io.k8s.api.batch.v1.", "batch", "v1"),
    ("V1CronJob", "io.k8s.api.batch.v1.", "batch", "v1"),
    ("V1CronJob", "io.k8s.api.batch.v1.", "batch", "v1beta1"),  # kubectl 1.20 speaks v1beta1
    ("V1Lease", "io.k8s.api.coordination.v1.", "coordination.k8s.io", "v1"),
    ("V1StorageClass", "io.k8s.api.storage.v1.", "storage.k8s.io", "v1"),
    ("V1Scale", "io.k8s.api.autoscaling.v1.", "autoscaling", "v1"),
    ("V1HorizontalPodAutoscaler", "io.k8s.api.autoscaling.v1.", "autoscaling", "v1"),
    ("V2HorizontalPodAutoscaler", "io.k8s.api.autoscaling.v2.", "autoscaling", "v2"),
    *[(f"V1{k}", "io.k8s.api.rbac.v1.", "rbac.authorization.k8s.io", "v1")
      for k in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")],
    ("V1APIService", "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.", "apiregistration.k8s.io", "v1"),
    ("V1Eviction", "io.k8s.api.policy.v1.", "policy", "v1"),
    ("V1CustomResourceDefinition", "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.",
     "apiextensions.k8s.io", "v1"),
    ("V1Status", META, "", "v1"),
    ("V1DeleteOptions", META, "", "v1"),
    ("V1WatchEvent", META, "", "v1"),
]
# Kinds that also have a List kind served by `list`.
LISTED = {"V1ReplicationController", "V1StatefulSet", "V1ControllerRevision", "V1PersistentVolume",
          "V1PersistentVolumeClaim", "V1StorageClass",
          "V1Namespace", "V1Node", "V1Pod", "V1Service", "V1Endpoints", "V1ConfigMap", "V1Secret",
          "CoreV1Event", "V1ServiceAccount", "V1Deployment", "V1ReplicaSet", "V1DaemonSet", "V1Job", "V1CronJob",
          "V1Lease", "V1HorizontalPodAutoscaler", "V2HorizontalPodAutoscaler", "V1Role", "V1ClusterRole",
          "V1RoleBinding", "V1ClusterRoleBinding", "V1APIService", "V1CustomResourceDefinition"}
NOT_A_KIND = {"V1PodTemplateSpec"}
# Types that live in apimachinery's meta/v1 whichever kind reaches them first.
META_TYPES = {"ObjectMeta", "ListMeta", "ManagedFieldsEntry", "OwnerReference", "LabelSelector",
              "LabelSelectorRequirement", "Status", "StatusDetails", "StatusCause", "DeleteOptions",
              "Preconditions", "WatchEvent", "Condition", "ShardInfo"}
# Group-versions that share DeleteOptions and WatchEvent (as in a real cluster, one GVK each).
SHARED_GVS = [("", "v1"), ("apps", "v1"), ("autoscaling", "v1"), ("autoscaling", "v2"), ("batch", "v1"),
              ("batch", "v1beta1"),
              ("rbac.authorization.k8s.io", "v1"), ("apiregistration.k8s.io", "v1"),
              ("coordination.k8s.io", "v1"), ("policy", "v1"), ("storage.k8s.io", "v1")]
ALPHA_PACKAGES = {"V1alpha3": "io.k8s.api.scheduling.v1alpha3."}

# Named scalar definitions, as the Kubernetes OpenAPI spec has them.
SCALARS: dict[str, Obj] = {
    EXT + "CustomResourceSubresourceStatus": {
        "type": "object", "description": "CustomResourceSubresourceStatus defines how to serve the status "
                                         "subresource for CustomResources. Status is represented by the `.status` "
                                         "JSON path inside of a CustomResource. When set, * exposes a /status "
                                         "subresource for the custom resource * PUT requests to the /status "
                                         "subresource take a custom resource object, and ignore changes to "
                                         "anything except the status stanza * PUT/POST/PATCH requests to the "
                                         "custom resource ignore changes to the status stanza"},
    EXT + "JSON": {"description": "JSON represents any valid JSON value. These types are supported: bool, int64, "
                                  "float64, string, []interface{}, map[string]interface{} and nil."},
    EXT + "JSONSchemaPropsOrBool": {"description": "JSONSchemaPropsOrBool represents JSONSchemaProps or a boolean "
                                                   "value. Defaults to true for the boolean property."},
    EXT + "JSONSchemaPropsOrArray": {"description": "JSONSchemaPropsOrArray represents a value that can either be "
                                                    "a JSONSchemaProps or an array of JSONSchemaProps. Mainly here "
                                                    "for serialization purposes."},
    EXT + "JSONSchemaPropsOrStringArray": {"description": "JSONSchemaPropsOrStringArray represents a "
                                                          "JSONSchemaProps or a string array."},
    TIME: {"type": "string", "format": "date-time",
           "description": "Time is a wrapper around time.Time which supports correct marshaling to YAML and "
                          "JSON.  Wrappers are provided for many of the factory methods that the time package "
                          "offers."},
    MICROTIME: {"type": "string", "format": "date-time",
                "description": "MicroTime is version of Time with microsecond level precision."},
    QUANTITY: {"type": "string",
               "description": "Quantity is a fixed-point representation of a number. It provides convenient "
                              "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() "
                              "accessors.\n\nThe serialization format is:\n\n``` <quantity>        ::= "
                              "<signedNumber><suffix>\n\n\t(Note that <suffix> may be empty, from the \"\" case "
                              "in <decimalSI>.)\n\n<digit>           ::= 0 | 1 | ... | 9 <digits>          ::= "
                              "<digit> | <digit><digits> <number>          ::= <digits> | <digits>.<digits> | "
                              "<digits>. | .<digits> <sign>            ::= \"+\" | \"-\" <signedNumber>    ::= "
                              "<number> | <sign><number> <suffix>          ::= <binarySI> | <decimalExponent> | "
                              "<decimalSI> <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei\n\n\t(International "
                              "System of units; See: http://physics.nist.gov/cuu/Units/binary.html)\n\n"
                              "<decimalSI>       ::= m | \"\" | k | M | G | T | P | E\n\n\t(Note that 1024 = 1Ki "
                              "but 1000 = 1k; I didn't choose the capitalization.)\n\n<decimalExponent> ::= "
                              "\"e\" <signedNumber> | \"E\" <signedNumber> ```\n\nNo matter which of the three "
                              "exponent forms is used, no quantity may represent a number greater than 2^63-1 "
                              "in magnitude, nor may it have more than 3 decimal places. Numbers larger or more "
                              "precise will be capped or rounded up. (E.g.: 0.1m will rounded up to 1m.) This "
                              "may be extended in the future if we require larger or smaller quantities.\n\n"
                              "When a Quantity is parsed from a string, it will remember the type of suffix it "
                              "had, and will use the same type again when it is serialized."},
    INTORSTR: {"type": "string", "format": "int-or-string",
               "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or "
                              "YAML marshalling and unmarshalling, it produces or consumes the inner type.  "
                              "This allows you to have, for example, a JSON field that can accept a name or "
                              "number."},
    FIELDSV1: {"type": "object",
               "description": "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format."
                              "\n\nEach key is either a '.' representing the field itself, and will always map "
                              "to an empty set, or a string representing a sub-field or item. The string will "
                              "follow one of these four formats: 'f:<name>', where <name> is the name of a field "
                              "in a struct, or key in a map 'v:<value>', where <value> is the exact json "
                              "formatted value of a list item 'i:<index>', where <index> is position of a item "
                              "in a list 'k:<keys>', where <keys> is a map of  a list item's key fields to their "
                              "unique values If a key maps to an empty Fields value, the field that key "
                              "represents is part of the set.\n\nThe exact format is defined in "
                              "sigs.k8s.io/structured-merge-diff"},
    RAWEXT: {"type": "object",
             "description": "RawExtension is used to hold extensions in external versions."},
}

# Fields whose client type lost the named Kubernetes type.
QUANTITY_MAPS = {"limits", "requests", "capacity", "allocatable", "overhead", "allocatedResources"}
QUANTITY_FIELDS = {"sizeLimit", "divisor"}
MICROTIME_FIELDS = {("CoreV1Event", "eventTime"), ("CoreV1EventSeries", "lastObservedTime"),
                    ("V1LeaseSpec", "acquireTime"), ("V1LeaseSpec", "renewTime")}
OBJECT_FIELDS = {("V1ManagedFieldsEntry", "fieldsV1"): FIELDSV1, ("V1WatchEvent", "object"): RAWEXT,
                 ("V1ControllerRevision", "data"): RAWEXT,
                 ("V1JSONSchemaProps", "additionalItems"): EXT + "JSONSchemaPropsOrBool",
                 ("V1JSONSchemaProps", "additionalProperties"): EXT + "JSONSchemaPropsOrBool",
                 ("V1JSONSchemaProps", "default"): EXT + "JSON", ("V1JSONSchemaProps", "example"): EXT + "JSON",
                 ("V1JSONSchemaProps", "items"): EXT + "JSONSchemaPropsOrArray",
                 ("V1JSONSchemaProps", "enum"): EXT + "JSON",
                 ("V1JSONSchemaProps", "dependencies"): EXT + "JSONSchemaPropsOrStringArray",
                 ("V1CustomResourceSubresources", "status"): EXT + "CustomResourceSubresourceStatus"}
# Integer fields that are int64 in the Go types; every other integer is int32.
INT64 = {"generation", "observedGeneration", "deletionGracePeriodSeconds", "gracePeriodSeconds",
         "terminationGracePeriodSeconds", "activeDeadlineSeconds", "runAsUser", "runAsGroup", "fsGroup",
         "supplementalGroups", "tolerationSeconds", "expirationSeconds", "remainingItemCount", "seconds",
         "sizeBytes"}
INT64_FIELDS = {("V1NodeSwapStatus", "capacity"), ("V1LinuxContainerUser", "uid"),
                ("V1LinuxContainerUser", "gid")}

# Enums of the fields people type most (values as the Kubernetes spec lists them, sorted).
ENUMS: dict[tuple[str, str], list[str]] = {
    ("V1Container", "imagePullPolicy"): ["Always", "IfNotPresent", "Never"],
    ("V1EphemeralContainer", "imagePullPolicy"): ["Always", "IfNotPresent", "Never"],
    ("V1Container", "terminationMessagePolicy"): ["FallbackToLogsOnError", "File"],
    ("V1EphemeralContainer", "terminationMessagePolicy"): ["FallbackToLogsOnError", "File"],
    ("V1ContainerPort", "protocol"): ["SCTP", "TCP", "UDP"],
    ("V1ServicePort", "protocol"): ["SCTP", "TCP", "UDP"],
    ("CoreV1EndpointPort", "protocol"): ["SCTP", "TCP", "UDP"],
    ("V1PodSpec", "restartPolicy"): ["Always", "Never", "OnFailure"],
    ("V1PodSpec", "dnsPolicy"): ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
    ("V1PodSpec", "preemptionPolicy"): ["Never", "PreemptLowerPriority"],
    ("V1PodStatus", "phase"): ["Failed", "Pending", "Running", "Succeeded", "Unknown"],
    ("V1PodStatus", "qosClass"): ["BestEffort", "Burstable", "Guaranteed"],
    ("V1Toleration", "effect"): ["NoExecute", "NoSchedule", "PreferNoSchedule"],
    ("V1Toleration", "operator"): ["Equal", "Exists"],
    ("V1Taint", "effect"): ["NoExecute", "NoSchedule", "PreferNoSchedule"],
    ("V1ServiceSpec", "type"): ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
    ("V1ServiceSpec", "sessionAffinity"): ["ClientIP", "None"],
    ("V1ServiceSpec", "externalTrafficPolicy"): ["Cluster", "Local"],
    ("V1ServiceSpec", "internalTrafficPolicy"): ["Cluster", "Local"],
    ("V1ServiceSpec", "ipFamilyPolicy"): ["PreferDualStack", "RequireDualStack", "SingleStack"],
    ("V1NamespaceStatus", "phase"): ["Active", "Terminating"],
    ("V1NodeAddress", "type"): ["ExternalDNS", "ExternalIP", "Hostname", "InternalDNS", "InternalIP"],
    ("V1DeploymentStrategy", "type"): ["Recreate", "RollingUpdate"],
    ("V1DaemonSetUpdateStrategy", "type"): ["OnDelete", "RollingUpdate"],
    ("V1JobSpec", "completionMode"): ["Indexed", "NonIndexed"],
    ("V1JobSpec", "podReplacementPolicy"): ["Failed", "TerminatingOrFailed"],
    ("V1DeleteOptions", "propagationPolicy"): ["Background", "Foreground", "Orphan"],
}


def _merge(key: str, strategy: str = "merge") -> Obj:
    return {"x-kubernetes-patch-merge-key": key, "x-kubernetes-patch-strategy": strategy}


def _map(*keys: str) -> Obj:
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


ATOMIC: Obj = {"x-kubernetes-list-type": "atomic"}
SET: Obj = {"x-kubernetes-list-type": "set"}
MAP_ATOMIC: Obj = {"x-kubernetes-map-type": "atomic"}
_CONTAINER_EXT: dict[str, Obj] = {
    "command": ATOMIC, "args": ATOMIC, "envFrom": ATOMIC, "resizePolicy": ATOMIC,
    "ports": {**_merge("containerPort"), **_map("containerPort", "protocol")},
    "env": {**_merge("name"), **_map("name")},
    "volumeMounts": {**_merge("mountPath"), **_map("mountPath")},
    "volumeDevices": {**_merge("devicePath"), **_map("devicePath")},
    "restartPolicyRules": ATOMIC,
}
_CONDITIONS = {**_merge("type"), **_map("type")}
# Property extensions, as the Kubernetes Go types declare them (+patchMergeKey, +listType ...).
PROPERTY_EXT: dict[str, dict[str, Obj]] = {
    "V1ObjectMeta": {"finalizers": {"x-kubernetes-patch-strategy": "merge", **SET},
                     "ownerReferences": {**_merge("uid"), **_map("uid")}, "managedFields": ATOMIC},
    "V1PodSpec": {
        "volumes": {**_merge("name", "merge,retainKeys"), **_map("name")},
        "initContainers": {**_merge("name"), **_map("name")},
        "containers": {**_merge("name"), **_map("name")},
        "ephemeralContainers": {**_merge("name"), **_map("name")},
        "imagePullSecrets": {**_merge("name"), **_map("name")},
        "tolerations": ATOMIC, "readinessGates": ATOMIC,
        "hostAliases": {**_merge("ip"), **_map("ip")},
        "topologySpreadConstraints": {**_merge("topologyKey"), **_map("topologyKey", "whenUnsatisfiable")},
        "resourceClaims": {**_merge("name", "merge,retainKeys"), **_map("name")},
        "schedulingGates": {**_merge("name"), **_map("name")},
        "nodeSelector": MAP_ATOMIC,
    },
    "V1Container": _CONTAINER_EXT,
    "V1EphemeralContainer": _CONTAINER_EXT,
    "V1PodSecurityContext": {"supplementalGroups": ATOMIC, "sysctls": ATOMIC},
    "V1Capabilities": {"add": ATOMIC, "drop": ATOMIC},
    "V1ResourceRequirements": {"claims": _map("name")},
    "V1PodDNSConfig": {"nameservers": ATOMIC, "searches": ATOMIC, "options": ATOMIC},
    "V1HostAlias": {"hostnames": ATOMIC},
    "V1ExecAction": {"command": ATOMIC},
    "V1HTTPGetAction": {"httpHeaders": ATOMIC},
    "V1NodeSelector": {"nodeSelectorTerms": ATOMIC},
    "V1NodeSelectorTerm": {"matchExpressions": ATOMIC, "matchFields": ATOMIC},
    "V1NodeSelectorRequirement": {"values": ATOMIC},
    "V1NodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": ATOMIC},
    "V1PodAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": ATOMIC,
                      "preferredDuringSchedulingIgnoredDuringExecution": ATOMIC},
    "V1PodAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": ATOMIC,
                          "preferredDuringSchedulingIgnoredDuringExecution": ATOMIC},
    "V1PodAffinityTerm": {"namespaces": ATOMIC, "matchLabelKeys": ATOMIC, "mismatchLabelKeys": ATOMIC},
    "V1TopologySpreadConstraint": {"matchLabelKeys": ATOMIC},
    "V1LabelSelector": {"matchExpressions": ATOMIC},
    "V1LabelSelectorRequirement": {"values": ATOMIC},
    "V1ConfigMapVolumeSource": {"items": ATOMIC},
    "V1SecretVolumeSource": {"items": ATOMIC},
    "V1DownwardAPIVolumeSource": {"items": ATOMIC},
    "V1ProjectedVolumeSource": {"sources": ATOMIC},
    "V1ConfigMapProjection": {"items": ATOMIC},
    "V1SecretProjection": {"items": ATOMIC},
    "V1DownwardAPIProjection": {"items": ATOMIC},
    "V1PodStatus": {
        "conditions": _CONDITIONS,
        "podIPs": {**_merge("ip"), **_map("ip")},
        "hostIPs": {**_merge("ip"), **_map("ip")},
        "initContainerStatuses": ATOMIC, "containerStatuses": ATOMIC, "ephemeralContainerStatuses": ATOMIC,
        "resourceClaimStatuses": {**_merge("name", "merge,retainKeys"), **_map("name")},
    },
    "V1ContainerStatus": {"volumeMounts": {**_merge("mountPath"), **_map("mountPath")},
                          "allocatedResourcesStatus": _map("name")},
    "V1ServiceSpec": {"ports": {**_merge("port"), **_map("port", "protocol")}, "externalIPs": ATOMIC,
                      "loadBalancerSourceRanges": ATOMIC, "clusterIPs": ATOMIC, "ipFamilies": ATOMIC,
                      "selector": MAP_ATOMIC},
    "V1ServiceStatus": {"conditions": _CONDITIONS},
    "V1LoadBalancerStatus": {"ingress": ATOMIC},
    "V1LoadBalancerIngress": {"ports": ATOMIC},
    "V1NodeSpec": {"podCIDRs": {"x-kubernetes-patch-strategy": "merge", **SET}, "taints": ATOMIC},
    "V1NodeStatus": {"conditions": _CONDITIONS, "addresses": {**_merge("type"), **ATOMIC},
                     "images": ATOMIC, "volumesInUse": ATOMIC, "volumesAttached": ATOMIC,
                     "runtimeHandlers": ATOMIC},
    "V1NamespaceSpec": {"finalizers": ATOMIC},
    "V1NamespaceStatus": {"conditions": _CONDITIONS},
    "V1Endpoints": {"subsets": ATOMIC},
    "V1EndpointSubset": {"addresses": ATOMIC, "notReadyAddresses": ATOMIC, "ports": ATOMIC},
    "V1ServiceAccount": {"secrets": {**_merge("name"), **_map("name")}, "imagePullSecrets": ATOMIC},
    "V1DeploymentSpec": {"strategy": {"x-kubernetes-patch-strategy": "retainKeys"}},
    "V1DeploymentStatus": {"conditions": _CONDITIONS},
    "V1ReplicaSetStatus": {"conditions": _CONDITIONS},
    "V1DaemonSetStatus": {"conditions": _CONDITIONS},
    "V1JobStatus": {"conditions": {**_merge("type"), **ATOMIC}},
    "V1PodFailurePolicy": {"rules": ATOMIC},
    "V1PodFailurePolicyRule": {"onPodConditions": ATOMIC},
    "V1PodFailurePolicyOnExitCodesRequirement": {"values": SET},
    "V1SuccessPolicy": {"rules": ATOMIC},
    "V1UncountedTerminatedPods": {"succeeded": SET, "failed": SET},
    "V1StatusDetails": {"causes": ATOMIC},
    "V1DeleteOptions": {"dryRun": ATOMIC},
}
# Structs Kubernetes marks +structType=atomic (replaced whole by a merge).
ATOMIC_STRUCTS = {"V1ObjectReference", "V1LocalObjectReference", "V1ConfigMapKeySelector",
                  "V1SecretKeySelector", "V1ObjectFieldSelector", "V1ResourceFieldSelector",
                  "V1NodeSelector", "V1NodeSelectorTerm", "V1LabelSelector", "V1TypedLocalObjectReference",
                  "V1ConfigMapEnvSource", "V1SecretEnvSource", "V1SecretReference"}

_NAME = re.compile(r"^(CoreV1|RbacV1|ApiregistrationV1|ApiextensionsV1|V1alpha3|V1|V2)([A-Z]\w*)$")
_PRIMS = {"str": {"type": "string"}, "bytes": {"type": "string", "format": "byte"}, "bool": {"type": "boolean"},
          "float": {"type": "number", "format": "double"},
          "object": {"type": "object"}}


REFERENCE_MEMBER = "kubernetes_validate/kubernetes-json-schema/v1.37.0-local/_definitions.json"
_REF_EXT = ("x-kubernetes-patch-merge-key", "x-kubernetes-patch-strategy", "x-kubernetes-list-type",
            "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-unions")


def load_reference(path: Path) -> Obj:
    """The `$defs` of kubernetes-validate's Kubernetes JSON schemas (from its wheel or the JSON file)."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            data = json.loads(wheel.read(REFERENCE_MEMBER))
    else:
        data = json.loads(path.read_text(encoding="utf-8"))
    defs: Obj = data.get("$defs") or data.get("definitions") or {}
    return defs


class Generator:
    def __init__(self, reference: Obj | None = None) -> None:
        self.names: dict[str, str] = {}  # client class → definition name
        self.order: list[str] = []
        self.reference = reference
        self.disagreements: list[str] = []

    def assign(self, cls_name: str, package: str) -> None:
        if cls_name in self.names:
            return
        m = _NAME.match(cls_name)
        if m is None:
            raise SystemExit(f"unexpected client model {cls_name}")
        prefix, short = m.groups()
        if prefix in ALPHA_PACKAGES:
            package = ALPHA_PACKAGES[prefix]
        elif short in META_TYPES:
            package = META
        self.names[cls_name] = package + short
        self.order.append(cls_name)
        for t in getattr(models, cls_name).openapi_types.values():
            for ref in re.findall(r"\b(?:CoreV1|RbacV1|ApiregistrationV1|ApiextensionsV1|V1alpha3|V1|V2)[A-Z]\w*", t):
                self.assign(ref, package)

    def run(self) -> tuple[Obj, Obj]:
        for cls_name, package, _g, _v in ROOTS:
            self.assign(cls_name, package)
            if cls_name in LISTED:
                self.assign(cls_name + "List", package)
        defs: Obj = {name: dict(schema) for name, schema in SCALARS.items()}
        for cls_name in self.order:
            defs[self.names[cls_name]] = self.definition(cls_name)
        self.add_gvks(defs)
        self.check_refs(defs)
        return defs, structure(defs)

    def definition(self, cls_name: str) -> Obj:
        cls = getattr(models, cls_name)
        out: Obj = {"type": "object"}
        doc = _class_description(cls)
        if doc:
            out["description"] = doc
        props: Obj = {}
        required: list[str] = []
        ext = PROPERTY_EXT.get(cls_name, {})
        by_json = {f.serialization_alias or n: f for n, f in cls.model_fields.items()}
        for attr, ctype in cls.openapi_types.items():
            json_name = cls.attribute_map[attr]
            field = by_json[json_name]
            schema = self.prop_type(cls_name, json_name, ctype, field.annotation)
            if field.description:
                schema["description"] = field.description
            if (cls_name, json_name) in ENUMS:
                schema["enum"] = ENUMS[(cls_name, json_name)]
            schema.update(ext.get(json_name, {}))
            self.overlay(cls_name, json_name, schema)
            props[json_name] = schema
            if field.is_required():
                required.append(json_name)
        unknown = set(ext) - set(props)
        if unknown:
            raise SystemExit(f"extension table names fields {cls_name} does not have: {sorted(unknown)}")
        if props:
            out["properties"] = dict(sorted(props.items()))
        if required:
            out["required"] = sorted(required)
        if cls_name in ATOMIC_STRUCTS:
            out.update(MAP_ATOMIC)
        ref_def = self._reference_def(cls_name)
        if ref_def is not None:
            for key in _REF_EXT:
                self._take(f"{cls_name}", out, ref_def, key)
        return out

    def _reference_def(self, cls_name: str) -> Obj | None:
        if self.reference is None:
            return None
        found: Obj | None = self.reference.get(self.names[cls_name])
        return found

    def _take(self, where: str, mine: Obj, theirs: Obj, key: str) -> None:
        if mine.get(key) != theirs.get(key):
            self.disagreements.append(f"{where} {key}: table {mine.get(key)!r}, reference {theirs.get(key)!r}")
        if key in theirs:
            mine[key] = theirs[key]
        else:
            mine.pop(key, None)

    def overlay(self, cls_name: str, json_name: str, schema: Obj) -> None:
        """Put back from the reference what the client lost about one field."""
        ref_def = self._reference_def(cls_name)
        if ref_def is None:
            return
        theirs = ref_def.get("properties", {}).get(json_name)
        if theirs is None:
            self.disagreements.append(f"{cls_name}.{json_name}: not in the reference")
            return
        if "description" not in schema and "description" in theirs:
            schema["description"] = theirs["description"]
        for key in _REF_EXT:
            self._take(f"{cls_name}.{json_name}", schema, theirs, key)
        item = schema.get("items", schema)
        their_item = theirs.get("items", theirs)
        if item.get("type") == "integer" and "format" in their_item:
            if item.get("format") != their_item["format"]:
                self.disagreements.append(f"{cls_name}.{json_name} format: table {item.get('format')}, "
                                          f"reference {their_item['format']}")
            item["format"] = their_item["format"]

    def prop_type(self, owner: str, json_name: str, ctype: str, annotation: Any) -> Obj:
        if ctype.startswith("List["):
            inner = ctype[5:-1]
            return {"type": "array", "items": self.prop_type(owner, json_name, inner, _list_item(annotation))}
        if ctype.startswith("Dict[str, "):
            inner = ctype[10:-1]
            if inner == "str" and json_name in QUANTITY_MAPS:
                return {"type": "object", "additionalProperties": {"$ref": QUANTITY}}
            if inner == "bytes":
                return {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}}
            return {"type": "object", "additionalProperties": self.prop_type(owner, json_name, inner, None)}
        if ctype == "int":
            wide = json_name in INT64 or (owner, json_name) in INT64_FIELDS
            return {"type": "integer", "format": "int64" if wide else "int32"}
        if ctype == "str" and json_name in QUANTITY_FIELDS:
            return {"$ref": QUANTITY}
        if ctype == "datetime":
            return {"$ref": MICROTIME if (owner, json_name) in MICROTIME_FIELDS else TIME}
        if ctype == "object":
            if (owner, json_name) in OBJECT_FIELDS:
                return {"$ref": OBJECT_FIELDS[(owner, json_name)]}
            if _is_int_or_string(annotation):
                return {"$ref": INTORSTR}
            if owner.startswith("V1alpha3"):
                return {"type": "object"}
            raise SystemExit(f"untyped object field {owner}.{json_name}: add it to a table")
        if ctype in _PRIMS:
            return dict(_PRIMS[ctype])
        if ctype in self.names:
            return {"$ref": self.names[ctype]}
        raise SystemExit(f"unknown client type {ctype!r} in {owner}.{json_name}")

    def add_gvks(self, defs: Obj) -> None:
        for cls_name, _package, group, version in ROOTS:
            if cls_name in NOT_A_KIND:
                continue
            name = self.names[cls_name]
            kind = name.rsplit(".", 1)[1]
            if kind in ("DeleteOptions", "WatchEvent"):
                gvks = [{"group": g, "kind": kind, "version": v} for g, v in SHARED_GVS]
            else:
                # A kind served in an older version with the same fields (batch/v1beta1 CronJob) shares the
                # definition: one more group-version-kind on it.
                gvks = [*(defs[name].get("x-kubernetes-group-version-kind") or []),
                        {"group": group, "kind": kind, "version": version}]
            defs[name]["x-kubernetes-group-version-kind"] = gvks
            if cls_name in LISTED:
                defs[name + "List"]["x-kubernetes-group-version-kind"] = [
                    *(defs[name + "List"].get("x-kubernetes-group-version-kind") or []),
                    {"group": group, "kind": kind + "List", "version": version}]

    def check_refs(self, defs: Obj) -> None:
        def walk(node: Any) -> None:
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and ref not in defs:
                    raise SystemExit(f"dangling $ref {ref}")
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
        walk(defs)


def _class_description(cls: type) -> str:
    doc = cls.__doc__ or ""
    text = doc.split("Attributes:", 1)[0]
    lines = [line.strip() for line in text.strip("\n").splitlines()]
    return "\n".join(lines).strip()


def _list_item(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    while args and typing.get_origin(args[0]) is typing.Union:
        args = [a for a in typing.get_args(args[0]) if a is not type(None)]
    if args and typing.get_origin(args[0]) in (list, typing.List):  # noqa: UP006
        inner = typing.get_args(args[0])
        return inner[0] if inner else None
    return None


def _is_int_or_string(annotation: Any) -> bool:
    def flat(a: Any) -> list[Any]:
        if typing.get_origin(a) in (typing.Union, types.UnionType):
            return [x for arg in typing.get_args(a) for x in flat(arg)]
        if typing.get_origin(a) is typing.Annotated:
            return flat(typing.get_args(a)[0])
        return [a]
    kinds = {a for a in flat(annotation) if a is not type(None)}
    return kinds == {int, str}


def _leaf(schema: Obj, defs: Obj) -> str:
    """The skeleton code of one property schema: "" for a leaf, a definition name, []x or {}x."""
    if "$ref" in schema:
        target = defs[schema["$ref"]]
        if "properties" not in target:
            return "*" if target.get("type") == "object" else ""
        return str(schema["$ref"])
    if schema.get("type") == "array":
        inner = _leaf(schema["items"], defs)
        return "[]" + inner if inner else ""
    if schema.get("type") == "object":
        if "additionalProperties" in schema:
            inner = _leaf(schema["additionalProperties"], defs)
            return "{}" + inner if inner else ""
        return "*"
    return ""


def structure(defs: Obj) -> Obj:
    """Per definition, only the fields that can hold more fields; every known field name."""
    types_: Obj = {}
    kinds: dict[str, str] = {}
    for name, schema in defs.items():
        props = schema.get("properties")
        if props is None:
            continue
        types_[name] = {field: _leaf(sub, defs) for field, sub in props.items()}
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            kinds.setdefault(f"{gvk['group']}/{gvk['version']}/{gvk['kind']}", name)
    return {"kinds": dict(sorted(kinds.items())), "types": types_}


def dump(obj: Obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="fail if the committed data differs")
    ap.add_argument("--reference", type=Path,
                    help="kubernetes-validate wheel (or its _definitions.json): field descriptions, formats, "
                         "extensions")
    ap.add_argument("--no-reference", action="store_true",
                    help="generate from the client and the tables alone (ref-typed fields lose descriptions)")
    ap.add_argument("--show-disagreements", action="store_true",
                    help="list where the hand-written tables differ from the reference")
    args = ap.parse_args(argv)
    if not args.reference and not args.no_reference:
        ap.error("--reference WHEEL is needed for the committed data (see the module docstring); "
                 "--no-reference to generate without it")
    gen = Generator(load_reference(args.reference) if args.reference else None)
    defs, skel = gen.run()
    if gen.disagreements:
        print(f"{len(gen.disagreements)} facts taken from the reference over the tables", file=sys.stderr)
        if args.show_disagreements:
            for line in gen.disagreements:
                print("  " + line, file=sys.stderr)
    files = {"definitions.json": dump(defs), "structure.json": dump(skel)}
    if args.check:
        stale = [n for n, text in files.items()
                 if not (args.out / n).exists() or (args.out / n).read_text(encoding="utf-8") != text]
        if stale:
            print(f"stale generated schema data: {', '.join(stale)}", file=sys.stderr)
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for n, text in files.items():
        (args.out / n).write_text(text, encoding="utf-8")
        print(f"wrote {args.out / n} ({len(text.encode())} bytes)")
    print(f"{len(defs)} definitions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
