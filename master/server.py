"""The master process: PKI, store, bootstrap objects, the API app served over TLS by cheroot.

cheroot is the WSGI server because it runs in-process with a thread pool,
does TLS with client certificates through Python's `ssl`, and streams
chunked responses (watches) without buffering; gunicorn would add worker
processes a 1 GB board cannot spare.
"""

from __future__ import annotations

import gc
import logging
import socket
import ssl
import threading
from dataclasses import dataclass, field

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from flask import Flask

from core.settings import MasterSettings
from master import bootstrap, controllermanager
from master.api.app import create_app
from master.api.join import JoinService
from master.api.streaming import SocketGateway, serve_streams
from master.pki import Pki, ensure_admin_kubeconfig, ensure_pki
from master.registry.catalog import Catalog, builtin_resources
from master.registry.context import ApiContext
from master.registry.verbs import Handlers
from master.store.sqlite import SqliteStore
from master.tokens import TokenStore

log = logging.getLogger(__name__)
POOL_START, POOL_STEP, POOL_SPARE = 8, 8, 2


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
        addresses = [a for a in (s.advertise_address, *s.addresses) if a]
        if s.bind not in ("0.0.0.0", "::", ""):
            addresses.append(s.bind)
        self.pki = ensure_pki(s.data_dir, hostnames, addresses)
        self.tokens = TokenStore.for_pki(s.data_dir, self.pki)
        self.server_url = f"https://{s.advertise_address}:{s.port}"
        ensure_admin_kubeconfig(self.pki, s.data_dir / "admin.kubeconfig", self.server_url)
        self.store = SqliteStore(s.db_path)
        self.catalog = Catalog(builtin_resources(s.default_toleration_seconds))
        self.ctx = ApiContext(settings=s, store=self.store, catalog=self.catalog)
        bootstrap.ensure_defaults(self.ctx)
        self.app: Flask = create_app(self.ctx, JoinService(self.pki, self.tokens), stopping=self.stopping)
        self._server: wsgi.Server | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        s = self.settings
        server = wsgi.Server((s.bind, s.port), serve_streams(self.app), numthreads=POOL_START, max=s.max_threads,
                             server_name="pikube-master", timeout=30)
        server.gateway = SocketGateway  # streams need the socket to see a client leave (master/api/streaming.py)
        adapter = BuiltinSSLAdapter(str(self.pki.serving_cert), str(self.pki.serving_key))
        adapter.context = tls_context(self.pki)
        server.ssl_adapter = adapter
        server.prepare()
        self._server = server
        t = threading.Thread(target=server.serve, name="api-server", daemon=True)
        t.start()
        self._threads.append(t)
        for target, name in ((self._compact_loop, "compactor"), (self._pool_loop, "thread-pool")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        self._threads += controllermanager.start_all(self.ctx, Handlers(self.ctx), self.stopping)
        _freeze_startup_heap()
        log.info("pikube master serving on %s:%d (advertised as %s)", s.bind, s.port, self.server_url)

    def _compact_loop(self) -> None:
        while not self.stopping.wait(60):
            try:
                self.store.compact_older_than(self.settings.history_revisions)
            except Exception:  # a failed compaction only delays the next one
                log.exception("compaction failed")

    def _pool_loop(self) -> None:
        """Grow cheroot's thread pool while requests wait (each watch holds a thread); shrink when idle.

        cheroot starts `numthreads` workers and never grows on its own.
        """
        while not self.stopping.wait(0.1):
            pool = self._server.requests if self._server is not None else None
            if pool is None:
                continue
            idle = pool.idle
            if idle < POOL_SPARE:
                pool.grow(POOL_STEP)
            elif idle > 4 * POOL_STEP:
                pool.shrink(POOL_STEP)

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.stop()
        controllermanager.stop_all(self._threads)
        self.store.close()


def _freeze_startup_heap() -> None:
    """Exempt what start-up built (modules, schemas, the catalog, informer caches: ~50,000 objects) from
    Python's cyclic garbage collector. A full collection walks every tracked object while holding the
    GIL, so with them it stalled every request for 40-50 ms about twice a minute under load; without
    them it takes 2-3 ms (bench/RESULTS.md). They live as long as the process, so nothing is lost."""
    gc.collect()
    gc.freeze()
