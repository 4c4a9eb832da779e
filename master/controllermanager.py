"""The controller manager: the controllers and the scheduler, wired to one set of informers and started together.

`start_all` builds one shared set of informers, the event recorder, every
controller and the scheduler — each can be switched off by name through
`MasterSettings.disabled_controllers` — starts them, and returns their threads;
they all stop when `stopping` is set. `CONTROLLERS` lists the names. It sits
above both `controllers/` and `scheduler/`, which never import each other.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from master.client import Client, Env, InformerFactory, Recorder
from master.controllers.clusterroleaggregation import ClusterRoleAggregationController
from master.controllers.crd import CustomResourceDefinitionController
from master.controllers.cronjob import CronJobController
from master.controllers.daemonset.controller import DaemonSetController
from master.controllers.deployment.controller import DeploymentController
from master.controllers.endpoints import EndpointsController
from master.controllers.gc import GarbageCollector
from master.controllers.hpa.controller import HorizontalPodAutoscalerController
from master.controllers.job.controller import JobController
from master.controllers.namespace import NamespaceController
from master.controllers.nodeipam import NodeIpamController
from master.controllers.nodelifecycle import NodeLifecycleController
from master.controllers.noderoles import NodeRolesController
from master.controllers.replicaset import ReplicaSetController, ReplicationControllerController
from master.controllers.satokens import ServiceAccountTokenController
from master.controllers.serviceaccount import ServiceAccountController
from master.controllers.servicelb import ServiceLBController
from master.controllers.statefulset.controller import StatefulSetController
from master.controllers.volumes.binder import PersistentVolumeController
from master.registry.context import ApiContext
from master.registry.verbs import Handlers
from master.scheduler.scheduler import Scheduler

log = logging.getLogger(__name__)


class _Startable(Protocol):
    def start(self) -> list[threading.Thread]: ...


CONTROLLERS: dict[str, Callable[[Env], _Startable]] = {
    "scheduler": Scheduler,
    "deployment": DeploymentController,
    "replicaset": ReplicaSetController,
    "replicationcontroller": ReplicationControllerController,
    "daemonset": DaemonSetController,
    "statefulset": StatefulSetController,
    "job": JobController,
    "cronjob": CronJobController,
    "endpoints": EndpointsController,
    "nodeipam": NodeIpamController,
    "noderoles": NodeRolesController,
    "nodelifecycle": NodeLifecycleController,
    "garbagecollector": GarbageCollector,
    "namespace": NamespaceController,
    "serviceaccount": ServiceAccountController,
    "serviceaccount-token": ServiceAccountTokenController,
    "servicelb": ServiceLBController,
    "persistentvolume-binder": PersistentVolumeController,
    "horizontalpodautoscaling": HorizontalPodAutoscalerController,
    "clusterroleaggregation": ClusterRoleAggregationController,
    "customresourcedefinitions": CustomResourceDefinitionController,
}


def build_env(ctx: ApiContext, handlers: Handlers, stopping: threading.Event) -> Env:
    client = Client(handlers)
    return Env(ctx.settings, client, InformerFactory(ctx.store, stopping), Recorder(client, stopping), stopping,
               ctx.usage)


class Running:
    """What `start` started: its environment (shared informers, recorder) and threads."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.threads: list[threading.Thread] = []
        self.names: list[str] = []

    def add(self, name: str) -> None:
        """Start one more controller on the same informers (benchmarks start the scheduler late)."""
        controller = CONTROLLERS[name](self.env)
        self.threads += self.env.informers.start()  # informers it is the first to use
        self.env.informers.wait_synced(30.0)
        self.threads += controller.start()
        self.names.append(name)


def start(ctx: ApiContext, handlers: Handlers, stopping: threading.Event,
          only: set[str] | None = None) -> Running:
    """Start every enabled controller (or just those in `only`); their threads end when `stopping` is set."""
    env = build_env(ctx, handlers, stopping)
    disabled = ctx.settings.disabled_controllers
    unknown = set(disabled) - set(CONTROLLERS)
    if unknown:
        log.warning("unknown controllers in disabled_controllers: %s", ", ".join(sorted(unknown)))
    chosen = [name for name in CONTROLLERS if name not in disabled and (only is None or name in only)]
    running = Running(env)
    controllers = [CONTROLLERS[name](env) for name in chosen]
    running.threads += env.informers.start()
    if not env.informers.wait_synced(30.0):
        log.warning("informers did not sync within 30 s; starting controllers anyway")
    running.threads += env.recorder.start()
    for c in controllers:
        running.threads += c.start()
    running.names += chosen
    log.info("controllers running: %s", ", ".join(chosen) or "none")
    return running


def start_all(ctx: ApiContext, handlers: Handlers, stopping: threading.Event,
              only: set[str] | None = None) -> list[threading.Thread]:
    """`start`, for `Master`: the threads to wait for on the way out."""
    return start(ctx, handlers, stopping, only).threads


def stop_all(threads: list[threading.Thread], timeout: float = 5.0) -> None:
    """Wait for controller threads to end (after `stopping` was set)."""
    for t in threads:
        t.join(timeout)
