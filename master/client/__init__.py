"""What the master's controllers and scheduler are built on: an in-process client, shared informers, the event recorder.

The names most code needs are importable from here; each lives in its own
module (`client`, `informer`, `recorder`, `env`).
"""

from master.client.client import Client, Kinds, obj_key, split_key
from master.client.env import Env
from master.client.informer import Handler, Indexer, Informer, InformerFactory, project
from master.client.recorder import Recorder

__all__ = ["Client", "Env", "Handler", "Indexer", "Informer", "InformerFactory", "Kinds", "Recorder", "obj_key",
           "project", "split_key"]
