"""The state every API handler works with: settings, store, catalog and allocators.

Built once by the app factory and passed down; handlers never reach for globals.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from core.ratelimit import KeyedSlots
from core.settings import MasterSettings
from master.registry.catalog import Catalog
from master.registry.rbacindex import RbacIndex
from master.registry.satokens import ServiceAccountTokens
from master.store.base import Store
from master.usage import UsageStore


@dataclass(frozen=True)
class Identity:
    """Who made a request, as authentication established it."""

    user: str
    groups: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return "system:masters" in self.groups

    @property
    def node_name(self) -> str | None:
        if "system:nodes" in self.groups and self.user.startswith("system:node:"):
            return self.user.removeprefix("system:node:")
        return None


@dataclass
class ApiContext:
    settings: MasterSettings
    store: Store
    catalog: Catalog
    # Serialises allocation of cluster IPs and node ports, which scan the store.
    alloc_lock: threading.Lock = field(default_factory=threading.Lock)
    # The boards' resource usage, in memory only (metrics.k8s.io, autoscaling, the status page).
    usage: UsageStore = field(default_factory=UsageStore)
    # Streams relayed to each board's agent right now (exec, attach, port-forward), capped per node.
    stream_slots: KeyedSlots = field(default_factory=KeyedSlots)
    _rbac: RbacIndex | None = field(default=None, repr=False)
    _sa_tokens: ServiceAccountTokens | None = field(default=None, repr=False)
    _rbac_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def sa_tokens(self) -> ServiceAccountTokens:
        """The service account token signer and checker (its key made on first use, under DATA/pki/)."""
        with self._rbac_lock:
            if self._sa_tokens is None:
                self._sa_tokens = ServiceAccountTokens(self.settings.data_dir / "pki" / "sa.key",
                                                       self.settings.service_account_issuer, self.store)
            return self._sa_tokens

    @property
    def rbac(self) -> RbacIndex:
        """The roles and bindings, kept in memory (made on first use: most contexts never need it)."""
        with self._rbac_lock:
            if self._rbac is None:
                self._rbac = RbacIndex(self.store)
            return self._rbac
