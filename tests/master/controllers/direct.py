"""Driving one controller by hand: an in-process store, caches that relist when told, `sync(key)` called directly.

No master process, no threads, no Docker: the test builds the store's state through
the same client the controllers write with, decides when each informer's cache
relists (delivering the differences to the controller's handlers, as a real relist
does), and then runs the keys the handlers queued. A lagging cache is therefore a
state a test builds on purpose, not a timing it hopes for (`test_gc.py` is the
first of these tests).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from core.settings import MasterSettings
from master.client import Client, Env, InformerFactory, Kinds, Recorder
from master.controllers.base import Controller
from master.registry.catalog import Catalog, builtin_resources
from master.registry.context import ApiContext
from master.registry.verbs import Handlers
from master.store.sqlite import SqliteStore

Obj = dict[str, Any]
C = TypeVar("C", bound=Controller)


@dataclass
class Harness:
    """The parts a controller is built from, with the clock of every cache in the test's hands."""

    env: Env
    store: SqliteStore

    @property
    def client(self) -> Client:
        return self.env.client

    @property
    def kinds(self) -> Kinds:
        return self.env.kinds

    def build(self, make: Callable[[Env], C]) -> C:
        """The controller, wired to this harness's informers (never started)."""
        return make(self.env)

    def catch_up(self, *plurals: str) -> None:
        """Relist these types' caches (every cache when none is named) from the store."""
        for inf in self.env.informers._informers.values():
            if not plurals or inf.rt.plural in plurals:
                inf._relist()

    def run(self, controller: Controller, limit: int = 100) -> list[str]:
        """Sync every key the controller has queued (and any its syncs queue again at once); the keys run."""
        ran: list[str] = []
        while len(controller.queue) and len(ran) < limit:
            key = controller.queue.get(timeout=0)
            if key is None:
                break
            try:
                controller.sync(key)
            finally:
                controller.queue.done(key)
            ran.append(key)
        return ran

    def settle(self, controller: Controller, rounds: int = 20) -> None:
        """Catch every cache up and sync until a round changes nothing in the store."""
        for _ in range(rounds):
            before = self.store.revision()
            self.catch_up()
            for key in controller.resync_keys():
                controller.queue.add(key)
            self.run(controller)
            if self.store.revision() == before:
                return
        raise AssertionError(f"{controller.name} did not settle in {rounds} rounds")


@contextmanager
def harness(tmp_path: Path, namespaces: tuple[str, ...] = ("default",), **settings: Any) -> Iterator[Harness]:
    """A fresh store in `tmp_path` holding `namespaces`, and a controller environment over it."""
    store = SqliteStore(tmp_path / "state.db")
    ctx = ApiContext(MasterSettings(data_dir=tmp_path, **settings), store, Catalog(builtin_resources()))
    client = Client(Handlers(ctx))
    for ns in namespaces:
        client.create(client.kinds.namespaces, "", {"metadata": {"name": ns}})
    stopping = threading.Event()
    env = Env(ctx.settings, client, InformerFactory(store, stopping), Recorder(client, stopping), stopping)
    try:
        yield Harness(env, store)
    finally:
        stopping.set()
        store.close()
