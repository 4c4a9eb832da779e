"""The status page's own small HTTP server, run inside `pikube master` beside the API server (`pikube/run/master.py`).

Plain HTTP on `settings.web_port` (browsers on a LAN have no way to trust the
cluster's CA), a fixed pool of threads: `MAX_STREAMS` for live viewers and a
few more for pages, JSON and assets. If the port cannot be bound the master
logs why and keeps serving the API: the page is a window, not a pillar.
"""

from __future__ import annotations

import logging
import threading

from cheroot import wsgi

from core.settings import MasterSettings
from web.app import create_web_app
from web.source import Prefixes, Source

log = logging.getLogger(__name__)
MAX_STREAMS = 8
SPARE_THREADS = 4


class StatusServer:
    def __init__(self, settings: MasterSettings, source: Source, prefixes: Prefixes,
                 stopping: threading.Event) -> None:
        self.settings = settings
        self.stopping = stopping
        self.app = create_web_app(settings, source, prefixes, stopping, MAX_STREAMS)
        self._server: wsgi.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Listen and serve in a thread; False (logged) if the port cannot be bound."""
        s = self.settings
        threads = MAX_STREAMS + SPARE_THREADS
        server = wsgi.Server((s.web_bind, s.web_port), self.app, numthreads=threads, max=threads,
                             server_name="pikube-status", timeout=30)
        try:
            server.prepare()
        except OSError as exc:
            log.error("status page: cannot listen on %s:%d (%s); the API keeps serving without it",
                      s.web_bind, s.web_port, exc)
            return False
        self._server = server
        self._thread = threading.Thread(target=server.serve, name="status-page", daemon=True)
        self._thread.start()
        log.info("status page on http://%s:%d/%s", s.web_bind, s.web_port,
                 " (access token required)" if s.web_token else "")
        return True

    def stop(self) -> None:
        page = self.app.extensions["pikube-status"]
        page.feed.wake()
        if self._server is not None:
            self._server.stop()
        page.feed.join(2.0)
