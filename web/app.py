"""The status page's Flask app: built from a state `Source` (`web/source.py`), separate from the API app.

It is a second WSGI app on its own plain-HTTP port (see `web.serve`) so that
the API's authentication, TLS and Status-object errors stay untouched, and so
the page can be switched off or firewalled on its own.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from pathlib import Path

from flask import Flask, Response

from core.settings import MasterSettings
from web import summary
from web.feed import ChangeFeed, SummaryCache
from web.source import (
    DatastoreHealth,
    FirstBootRecord,
    NoUsage,
    Prefixes,
    Source,
    UsageSource,
    no_datastore,
    no_first_boot,
)
from web.stream import Streams
from web.views import StatusPage, blueprint

STATIC = Path(__file__).parent / "static"
ASSET_MAX_AGE = 24 * 3600


def asset_version() -> str:
    """A short hash of the assets, added to their URLs so a browser never mixes old and new."""
    h = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:10]


def _plain(code: int, text: str) -> Response:
    return Response(text + "\n", code, mimetype="text/plain")


def create_web_app(settings: MasterSettings, source: Source, prefixes: Prefixes, stopping: threading.Event,
                   max_streams: int = 8, first_boot: FirstBootRecord = no_first_boot,
                   usage: UsageSource | None = None, datastore: DatastoreHealth = no_datastore) -> Flask:
    """The page over `source`, reading the kinds of `summary.KINDS` under `prefixes`."""
    summary.check_prefixes(prefixes)
    feed = ChangeFeed(source, prefixes.values(), stopping)
    cache = SummaryCache(feed, functools.partial(summary.build, source, prefixes))
    page = StatusPage(token=settings.web_token, feed=feed, cache=cache, streams=Streams(max_streams),
                      stopping=stopping, asset_version=asset_version(), first_boot=first_boot,
                      usage=usage if usage is not None else NoUsage(), datastore=datastore)
    app = Flask("pikube-status", static_folder=None)
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = ASSET_MAX_AGE
    app.register_blueprint(blueprint(page))
    app.register_error_handler(404, lambda e: _plain(404, "Not found."))
    app.register_error_handler(405, lambda e: _plain(405, "This page is read-only: GET only."))
    app.extensions["pikube-status"] = page
    return app
