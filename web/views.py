"""The status page's routes: the page, its JSON summary, its event stream and its assets; GET only."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

from flask import Blueprint, Response, render_template, request

from core.kube.timefmt import rfc3339
from web import access, stream, summary
from web.feed import ChangeFeed, SummaryCache
from web.source import DatastoreHealth, FirstBootRecord, NoUsage, UsageSource, no_datastore, no_first_boot

# The page loads nothing from elsewhere, and nothing may frame it or learn its URL (which may hold the token).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
PUBLIC_ENDPOINTS = {"status.static"}


@dataclass
class StatusPage:
    """What the routes share: the token, the feed and summary, the stream cap."""

    token: str
    feed: ChangeFeed
    cache: SummaryCache
    streams: stream.Streams
    stopping: threading.Event
    asset_version: str
    first_boot: FirstBootRecord = no_first_boot
    usage: UsageSource = field(default_factory=NoUsage)
    datastore: DatastoreHealth = no_datastore


def stamp(body: bytes) -> bytes:
    return summary.stamped(body, rfc3339())


def blueprint(page: StatusPage) -> Blueprint:
    bp = Blueprint("status", __name__, static_folder="static", template_folder="templates")

    @bp.before_app_request
    def check_token() -> Response | None:
        if request.endpoint in PUBLIC_ENDPOINTS:
            return None
        return access.refusal(request, page.token)

    @bp.after_app_request
    def harden(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response

    @bp.get("/")
    def index() -> str:
        return render_template("index.html", v=page.asset_version)

    @bp.get("/api/summary")
    def api_summary() -> Response:
        _, body = page.cache.current()
        return Response(stamp(body), mimetype="application/json", headers={"Cache-Control": "no-store"})

    @bp.get("/api/stream")
    def api_stream() -> Response:
        if not page.streams.try_open():
            return Response("Too many live viewers; this page will poll /api/summary instead.\n", 503,
                            mimetype="text/plain", headers={"Retry-After": "30"})
        try:
            body = stream.events(page.feed, page.cache, page.stopping, stamp)
            response = Response(body, mimetype="text/event-stream",
                                headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        except BaseException:
            page.streams.close()
            raise
        response.call_on_close(page.streams.close)
        return response

    @bp.get("/api/usage")
    def api_usage() -> Response:
        """The last hour of each board's CPU, memory and temperature, and each pod's CPU and memory now."""
        doc = {"boards": {node: [{"at": at, "cpu": cpu, "memory": memory, "temperature": temp,
                                  "throttled": flags} for at, cpu, memory, temp, flags in points]
                          for node, points in page.usage.board_history().items()},
               "pods": {f"{ns}/{name}": {"cpu": cpu, "memory": memory}
                        for (ns, name), (cpu, memory) in page.usage.pod_totals().items()}}
        return Response(json.dumps(doc, separators=(",", ":")), mimetype="application/json",
                        headers={"Cache-Control": "no-store"})

    @bp.get("/api/datastore")
    def api_datastore() -> Response:
        """The cluster's store: SQLite, or an etcd cluster with its members, leader and quorum."""
        try:
            doc = {"datastore": page.datastore() or None}
        except Exception as exc:  # the page keeps serving whatever the store's state
            doc = {"datastore": {"error": f"{type(exc).__name__}: {exc}"}}
        return Response(json.dumps(doc), mimetype="application/json", headers={"Cache-Control": "no-store"})

    @bp.get("/api/firstboot")
    def api_first_boot() -> Response:
        """What first boot did on this board (each step, or why pikube.yaml was not applied); null if nothing."""
        rec = page.first_boot()
        doc = {"record": None if rec is None else json.loads(rec.to_json())}
        return Response(json.dumps(doc), mimetype="application/json", headers={"Cache-Control": "no-store"})

    return bp
