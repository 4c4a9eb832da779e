"""Object metadata rules every kind shares: names, labels, uids, timestamps, generateName."""

from __future__ import annotations

import random
import uuid
from typing import Any

import core.kube.validation as validation
from core.errors import Cause

Obj = dict[str, Any]

# The alphabet Kubernetes uses for generateName suffixes (no vowels, no look-alikes).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# Fields the server owns: a client can neither set nor change them.
SERVER_FIELDS = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")


def new_uid() -> str:
    return str(uuid.uuid4())


def generated_name(prefix: str) -> str:
    return prefix + "".join(random.choice(_SUFFIX_ALPHABET) for _ in range(5))


def validate_meta(obj: Obj, namespaced: bool, name_rule: str = "subdomain") -> list[Cause]:
    """Causes for metadata problems, as Kubernetes' ValidateObjectMeta reports them."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return [Cause("metadata", "Required value", "FieldValueRequired")]
    causes: list[Cause] = []
    name = meta.get("name")
    if not name:
        causes.append(Cause("metadata.name", "Required value: name or generateName is required",
                            "FieldValueRequired"))
    elif not isinstance(name, str):
        causes.append(Cause("metadata.name", "Invalid value: must be a string"))
    elif name_rule == "label":
        causes += validation.dns1123_label(name, "metadata.name")
    elif name_rule == "subdomain":
        causes += validation.dns1123_subdomain(name, "metadata.name")
    if namespaced and not meta.get("namespace"):
        causes.append(Cause("metadata.namespace", "Required value", "FieldValueRequired"))
    labels = meta.get("labels")
    if labels is not None:
        if not isinstance(labels, dict):
            causes.append(Cause("metadata.labels", "Invalid value: must be a map of strings"))
        else:
            causes += validation.labels(labels, "metadata.labels")
    annotations = meta.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict):
            causes.append(Cause("metadata.annotations", "Invalid value: must be a map of strings"))
        else:
            causes += validation.annotations(annotations, "metadata.annotations")
    for fld in ("finalizers",):
        value = meta.get(fld)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            causes.append(Cause(f"metadata.{fld}", "Invalid value: must be a list of strings"))
    owners = meta.get("ownerReferences")
    if owners is not None:
        if not isinstance(owners, list):
            causes.append(Cause("metadata.ownerReferences", "Invalid value: must be a list"))
        else:
            for i, ref in enumerate(owners):
                for req in ("apiVersion", "kind", "name", "uid"):
                    if not isinstance(ref, dict) or not ref.get(req):
                        causes.append(Cause(f"metadata.ownerReferences[{i}].{req}", "Required value",
                                            "FieldValueRequired"))
            controllers = [r for r in owners if isinstance(r, dict) and r.get("controller")]
            if len(controllers) > 1:
                causes.append(Cause("metadata.ownerReferences",
                                    "Invalid value: Only one reference can have Controller set to true"))
    return causes


def validate_meta_update(new: Obj, old: Obj) -> list[Cause]:
    causes: list[Cause] = []
    nm, om = new.get("metadata", {}), old.get("metadata", {})
    if nm.get("name") != om.get("name"):
        causes.append(Cause("metadata.name", "Invalid value: field is immutable"))
    if nm.get("namespace", "") != om.get("namespace", ""):
        causes.append(Cause("metadata.namespace", "Invalid value: field is immutable"))
    return causes


def invalid_message(kind: str, name: str, causes: list[Cause]) -> str:
    """`Pod "x" is invalid: spec.containers: Required value` (several causes in brackets)."""
    parts = [f"{c.field}: {c.message}" for c in causes]
    text = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return f'{kind} "{name}" is invalid: {text}'
