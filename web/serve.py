"""The status page's own small HTTP server, run inside `pikube master` beside the API server (`pikube/run/master.py`).

Plain HTTP on `settings.web_port` (browsers on a LAN have no way to trust the
cluster's CA), on `core.httpserver` with small caps: `MAX_CONNECTIONS` in all and
`MAX_PER_CLIENT` from one address (a browser opens six), so a dozen slow or idle
connections cost a dozen threads at most and only until their deadlines; at
most `MAX_STREAMS` live viewers (`web/stream.py`). If the port cannot be bound
the master logs why and keeps serving the API: the page is a window, not a pillar.
"""

from __future__ import annotations

import logging
import threading

from core.httpserver import Limits, Server
from core.settings import MasterSettings
from web.app import create_web_app
from web.source import DatastoreHealth, FirstBootRecord, Prefixes, Source, UsageSource, no_datastore, no_first_boot

log = logging.getLogger(__name__)
MAX_STREAMS = 8
MAX_CONNECTIONS = 64
MAX_PER_CLIENT = 16


class StatusServer:
    def __init__(self, settings: MasterSettings, source: Source, prefixes: Prefixes,
                 stopping: threading.Event, first_boot: FirstBootRecord = no_first_boot,
                 usage: UsageSource | None = None, datastore: DatastoreHealth = no_datastore) -> None:
        self.settings = settings
        self.stopping = stopping
        self.app = create_web_app(settings, source, prefixes, stopping, MAX_STREAMS, first_boot, usage, datastore)
        self._server: Server | None = None

    def start(self) -> bool:
        """Listen and serve in a thread; False (logged) if the port cannot be bound."""
        s = self.settings
        server = Server(self.app, s.web_bind, s.web_port, name="status-page",
                        limits=Limits(max_connections=MAX_CONNECTIONS, max_per_client=MAX_PER_CLIENT,
                                      idle_timeout=30.0, body_timeout=10.0, max_header_bytes=64 * 1024))
        try:
            server.bind()
        except OSError as exc:
            log.error("status page: cannot listen on %s:%d (%s); the API keeps serving without it",
                      s.web_bind, s.web_port, exc)
            return False
        server.start()
        self._server = server
        log.info("status page on http://%s:%d/%s", s.web_bind, s.web_port,
                 " (access token required)" if s.web_token else "")
        return True

    def stop(self) -> None:
        page = self.app.extensions["pikube-status"]
        page.feed.wake()
        if self._server is not None:
            self._server.stop()
        page.feed.join(2.0)
