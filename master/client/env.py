"""What every controller and the scheduler are built from: one per master, shared by all of them."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from core.settings import MasterSettings
from master.client.client import Client, Kinds
from master.client.informer import InformerFactory
from master.client.recorder import Recorder


@dataclass
class Env:
    """Everything a controller is built from (one per master)."""

    settings: MasterSettings
    client: Client
    informers: InformerFactory
    recorder: Recorder
    stopping: threading.Event

    @property
    def kinds(self) -> Kinds:
        return self.client.kinds
