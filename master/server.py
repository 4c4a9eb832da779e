"""The master process: PKI, store, bootstrap objects, the API app served over TLS by `core.httpserver`.

The server runs in-process (gunicorn would add worker processes a 1 GB board
cannot spare), does TLS with client certificates through Python's `ssl`, and
streams chunked responses (watches); why it is pikube's own and what it bounds
is in `core/httpserver.py` and docs/api.md.
"""

from __future__ import annotations

import gc
import logging
import secrets
import socket
import ssl
import threading
from dataclasses import dataclass, field

from flask import Flask

from core import errors
from core.httpserver import Limits, Server
from core.settings import MasterSettings
from master import bootstrap, controllermanager, datastorehealth
from master.api.app import create_app
from master.api.fairness import Fairness, Shares
from master.api.join import JoinService
from master.api.masterjoin import MasterJoinService
from master.api.streaming import serve_streams
from master.apiserverleases import ApiserverLeases
from master.crdsync import CrdSync
from master.leaderelection import LeaderElector
from master.pki import Pki, ensure_admin_kubeconfig, ensure_pki
from master.registry.catalog import Catalog, builtin_resources
from master.registry.context import ApiContext
from master.registry.verbs import Handlers
from master.store.base import Store
from master.store.sqlite import SqliteStore
from master.tokens import TokenStore

log = logging.getLogger(__name__)


def tls_context(pki: Pki) -> ssl.SSLContext:
    """Server TLS: our serving cert; client certificates optional (tokens also work) but verified."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_cert))
    ctx.load_cert_chain(str(pki.serving_cert), str(pki.serving_key))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


@dataclass
class Master:
    """Everything one `pikube master` runs; `start()` returns once it is serving."""

    settings: MasterSettings
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        hostnames = [socket.gethostname(), *s.hostnames]
        addresses = [a for a in (s.advertise_address, s.api_address, *s.addresses) if a]
        if s.bind not in ("0.0.0.0", "::", ""):
            addresses.append(s.bind)
        self.pki = ensure_pki(s.data_dir, hostnames, addresses)
        self.tokens = TokenStore.for_pki(s.data_dir, self.pki)
        self.server_url = f"https://{s.advertise_address}:{s.port}"
        ensure_admin_kubeconfig(self.pki, s.data_dir / "admin.kubeconfig", self.server_url)
        self.store = open_store(s)
        self.catalog = Catalog(builtin_resources(s.default_toleration_seconds))
        self.ctx = ApiContext(settings=s, store=self.store, catalog=self.catalog)
        self.crd_sync = CrdSync(self.store, self.catalog, self.stopping)  # CRDs served before the API is
        bootstrap.ensure_defaults(self.ctx)
        self.app: Flask = create_app(self.ctx, JoinService(self.pki, self.tokens), stopping=self.stopping,
                                     master_join=MasterJoinService(self.pki, self.tokens, self.store, s.data_dir,
                                                                   s.api_address))
        self._server: Server | None = None
        self._threads: list[threading.Thread] = []
        self._term = threading.Event()
        self._term_threads: list[threading.Thread] = []
        self.elector: LeaderElector | None = None

    def start(self) -> None:
        s = self.settings
        shares = Shares(s.max_long_running, s.max_long_running_per_identity, s.max_in_flight_per_identity)
        limits = Limits(max_connections=s.max_connections, max_per_client=s.max_connections_per_client)
        server = Server(serve_streams(Fairness(self.app, shares=shares, tokens=self.ctx.sa_tokens)), s.bind, s.port,
                        ssl_context=tls_context(self.pki), limits=limits, name="api")
        server.start()
        self._server = server
        t = threading.Thread(target=self.crd_sync.run, name="crd-sync", daemon=True)
        t.start()
        self._threads.append(t)
        t = threading.Thread(target=self._compact_loop, name="compactor", daemon=True)
        t.start()
        self._threads.append(t)
        lease_rt = self.catalog.by_kind("coordination.k8s.io", "Lease")
        ep_rt = self.catalog.by_kind("", "Endpoints")
        assert lease_rt is not None and ep_rt is not None
        leases = ApiserverLeases(Handlers(self.ctx), lease_rt, ep_rt, s.advertise_address, s.port, self.stopping,
                                 api_service=bool(s.api_address), board_node=s.board_node)
        t = threading.Thread(target=leases.run, name="apiserver-lease", daemon=True)
        t.start()
        self._threads.append(t)
        if s.datastore_endpoints:
            # Other masters may share this etcd: only the elected one runs the scheduler and controllers.
            lease_rt = self.catalog.by_kind("coordination.k8s.io", "Lease")
            assert lease_rt is not None
            # Which master, at a glance (kube-controller-manager's `<host>_<uuid>`): its board's node name.
            identity = f"{s.board_node or socket.gethostname()}_{secrets.token_hex(4)}"
            elector = LeaderElector(Handlers(self.ctx), lease_rt, self._lead, self._step_down, self.stopping,
                                    identity)
            self.elector = elector
            t = threading.Thread(target=elector.run, name="leader-election", daemon=True)
            t.start()
            self._threads.append(t)
            t = threading.Thread(target=self._upkeep_loop, name="datastore-upkeep", daemon=True)
            t.start()
            self._threads.append(t)
        else:
            self._threads += controllermanager.start_all(self.ctx, Handlers(self.ctx), self.stopping)
        _freeze_startup_heap()
        log.info("pikube master serving on %s:%d (advertised as %s)", s.bind, s.port, self.server_url)

    def _lead(self) -> None:
        """Elected: start the scheduler and controllers, for as long as this term lasts."""
        self._term = threading.Event()
        self._term_threads = controllermanager.start_all(self.ctx, Handlers(self.ctx), self._term)

    def _step_down(self) -> None:
        self._term.set()
        controllermanager.stop_all(self._term_threads)
        self._term_threads = []

    def _upkeep_loop(self) -> None:
        """On etcd, the leading master defragments and recovers from NOSPACE now and then (datastorehealth.py)."""
        node_rt = self.catalog.by_kind("", "Node")
        assert node_rt is not None
        while not self.stopping.wait(self.settings.datastore_maintenance_seconds):
            if self.elector is None or not self.elector.leading:
                continue
            try:
                datastorehealth.maintain(self.store, Handlers(self.ctx), node_rt)
            except Exception:  # the next round tries again
                log.exception("datastore upkeep failed")

    def _compact_loop(self) -> None:
        while not self.stopping.wait(60):
            try:
                self.store.compact_older_than(self.settings.history_revisions)
                if self.settings.datastore_endpoints:  # etcd (its module is imported only then: see open_store)
                    from master.store.etcd import EtcdStore

                    assert isinstance(self.store, EtcdStore)
                    self.store.learn_endpoints()  # members that joined since: more ways to the cluster
            except Exception:  # a failed compaction only delays the next one
                log.exception("compaction failed")

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.stop()
        controllermanager.stop_all(self._threads)
        self.store.close()


def open_store(s: MasterSettings) -> Store:
    """SQLite in the data dir, or the etcd cluster the settings name."""
    if not s.datastore_endpoints:
        return SqliteStore(s.db_path)
    # Only a master on etcd loads its client (and `requests` with it): a second or more of a board's start
    # under emulation, for nothing, on SQLite.
    from master.store.etcd import EtcdStore, EtcdTls

    tls = EtcdTls(s.datastore_cafile, s.datastore_certfile, s.datastore_keyfile) if s.datastore_cafile else None
    store = EtcdStore(list(s.datastore_endpoints), prefix=s.datastore_prefix, tls=tls,
                      timeout=s.datastore_timeout_seconds)
    try:
        store.revision()
    except errors.ApiError as exc:
        store.close()
        where = ", ".join(s.datastore_endpoints)
        raise ConnectionError(f"cannot use the etcd datastore at {where}: {exc.message}") from None
    return store


def _freeze_startup_heap() -> None:
    """Exempt what start-up built (modules, schemas, the catalog, informer caches: ~50,000 objects) from
    Python's cyclic garbage collector. A full collection walks every tracked object while holding the
    GIL, so with them it stalled every request for 40-50 ms about twice a minute under load; without
    them it takes 2-3 ms (bench/RESULTS.md). They live as long as the process, so nothing is lost."""
    gc.collect()
    gc.freeze()
