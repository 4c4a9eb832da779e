"""`pikube master`: the API server with its store, scheduler and controllers, and the status page beside it.

The master (`master.server.Master`) knows nothing of the page; the page
(`web.serve.StatusServer`) knows nothing of the master but the three reads it
declares (`web.source.Source`), which the master's store provides. This module
hands the one to the other, with the store key prefix of each kind the page
shows (and a reader of this board's first-boot record, beside the master's data
directory), and runs both until SIGTERM or SIGINT.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
from types import FrameType

from core import firstboot
from core.settings import MasterSettings
from master.registry.catalog import Catalog
from master.server import Master
from web import summary
from web.serve import StatusServer

log = logging.getLogger(__name__)


def page_prefixes(catalog: Catalog) -> dict[str, str]:
    """Plural → store key prefix of every kind the status page shows."""
    out = {}
    for group, version, plural in summary.KINDS:
        rt = catalog.lookup(group, version, plural)
        if rt is None:
            raise LookupError(f"the master serves no {group or 'core'}/{version} {plural}")
        out[plural] = rt.prefix("")
    return out


class MasterProcess:
    """One `pikube master`: `start()` returns once the API (and the page, if enabled) serve."""

    def __init__(self, settings: MasterSettings) -> None:
        self.master = Master(settings)
        first_boot = functools.partial(firstboot.load, settings.data_dir.parent / firstboot.STATE_PATH.name)
        self.web = (StatusServer(settings, self.master.store, page_prefixes(self.master.catalog), self.master.stopping,
                                 first_boot, self.master.ctx.usage, self.master.store.describe)
                    if settings.web_port else None)

    def start(self) -> None:
        if self.web is not None:
            self.web.start()  # before the master freezes its start-up heap out of the cyclic GC
        self.master.start()

    def stop(self) -> None:
        self.master.stopping.set()
        if self.web is not None:
            self.web.stop()  # its watches end before the store closes
        self.master.stop()

    def run_forever(self) -> None:
        done = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            done.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        done.wait()
        log.info("pikube master stopping")
        self.stop()


def run(settings: MasterSettings) -> None:
    MasterProcess(settings).run_forever()
