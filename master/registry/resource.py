"""What the API server knows about one kind of resource, declared as data.

Adding a resource is a `ResourceType(...)` line in `master/registry/catalog.py` plus,
where the kind has rules of its own, a `Strategy` subclass: the handlers,
discovery, OpenAPI and tables are generic over these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from core.errors import Cause
from core.settings import MasterSettings
from master.registry.tables import TableDef
from master.store.base import Store

Obj = dict[str, Any]



class Context(Protocol):
    """What a strategy may read while it prepares a write: the settings, and the store (to allocate
    cluster IPs and node ports against what other objects hold). `ApiContext` is one."""

    @property
    def settings(self) -> MasterSettings: ...

    @property
    def store(self) -> Store: ...


class Strategy:
    """Per-kind rules: defaulting, validation and what an update may change.

    The base class is right for plain objects (ConfigMap, Secret …); kinds with a
    spec/status split or allocated fields override the hooks they need.
    """

    has_status = False
    # Hold the context's allocation lock from prepare_* until the write lands.
    serialize_writes = False
    # How metadata.name is checked: "subdomain", "label" or "" (any non-empty string).
    name_rule = "subdomain"

    def default(self, obj: Obj) -> None:
        """Fill in defaults in place (called on create and update)."""

    def prepare_create(self, obj: Obj, ctx: Context) -> None:
        """Adjust a new object before validation (clear status, allocate ...)."""
        if self.has_status:
            obj["status"] = self.initial_status(obj)

    def initial_status(self, obj: Obj) -> Obj:
        return {}

    def prepare_update(self, new: Obj, old: Obj, ctx: Context) -> None:
        """Adjust an update of the main resource: status is kept from the old object."""
        if self.has_status:
            new["status"] = old.get("status", {})

    def prepare_status_update(self, new: Obj, old: Obj) -> Obj:
        """For the `status` subresource: the old object with the new status only."""
        merged = dict(old)
        merged["status"] = new.get("status", {})
        meta = dict(old.get("metadata", {}))
        # Kubernetes lets status writers also change labels/annotations? No: keep old metadata.
        merged["metadata"] = meta
        return merged

    def validate(self, obj: Obj) -> list[Cause]:
        return []

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return []

    def spec_changed(self, new: Obj, old: Obj) -> bool:
        """Whether `metadata.generation` must be bumped."""
        if self.has_status:
            return bool(new.get("spec") != old.get("spec"))
        return False

    def holds_deletion(self, obj: Obj) -> bool:
        """Whether a deleted object must stay for a reason besides metadata.finalizers."""
        return False

    def check_delete(self, obj: Obj) -> None:
        """Raise (e.g. Forbidden) when this object may not be deleted at all."""

    def release(self, obj: Obj, ctx: Context) -> None:
        """Free what the object held (e.g. a NodePort) once it is deleted."""

    def is_volatile_update(self, new: Obj, old: Obj) -> bool:
        """Whether an update only refreshes heartbeats and may stay in memory."""
        return False


class Conversion(Protocol):
    """How a served version other than the stored one reads and writes the stored object.

    A kind served in two versions is two `ResourceType`s with one storage prefix: the
    stored one has no conversion, the other converts at the API's edge (`with_type` on
    the way out, `Handlers` on the way in), so strategies, controllers and the store
    only ever see the stored version. Neither direction may change its argument.
    """

    storage_version: str  # the apiVersion of the stored form, e.g. "autoscaling/v2"

    def from_storage(self, obj: Obj) -> Obj: ...

    def to_storage(self, obj: Obj) -> Obj: ...


class Custom(Protocol):
    """What a custom resource's type adds (see `master.registry.customresources.CustomKind`)."""

    @property
    def crd_name(self) -> str: ...

    @property
    def definition(self) -> str: ...

    @property
    def schema(self) -> Obj: ...

    @property
    def apply_type(self) -> str: ...

    def prune(self, obj: Obj) -> list[str]: ...


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    strategy: Strategy = field(default_factory=Strategy)
    # Extra field selectors beyond metadata.name / metadata.namespace.
    field_selectors: tuple[str, ...] = ()
    # Every write is volatile (kept in memory only): Leases.
    volatile: bool = False
    table: TableDef | None = None
    verbs: tuple[str, ...] = (
        "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
    )
    # Set on a version served as a view of another (see `Conversion`); None: this is the stored version.
    conversion: Conversion | None = None
    # Set on the types a CustomResourceDefinition makes (their schema, printer columns, scale paths).
    custom: Custom | None = None

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def key(self, namespace: str, name: str) -> str:
        if self.namespaced:
            return f"{self.prefix(namespace)}{name}"
        return f"{self.prefix('')}{name}"

    def prefix(self, namespace: str = "") -> str:
        base = f"/{self.group or 'core'}/{self.plural}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def allowed_field_selectors(self) -> tuple[str, ...]:
        base = ("metadata.name", "metadata.namespace") if self.namespaced else ("metadata.name",)
        return base + self.field_selectors
