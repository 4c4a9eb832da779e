"""What every controller and the scheduler are built from: one per master, shared by all of them."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from core.settings import MasterSettings
from master.client.client import Client, Kinds
from master.client.informer import InformerFactory
from master.client.recorder import Recorder
from master.usage import UsageStore


@dataclass
class Env:
    """Everything a controller is built from (one per master)."""

    settings: MasterSettings
    client: Client
    informers: InformerFactory
    recorder: Recorder
    stopping: threading.Event
    # The boards' resource usage (the metrics API's source), for the autoscaler.
    usage: UsageStore = field(default_factory=UsageStore)

    @property
    def kinds(self) -> Kinds:
        return self.client.kinds
