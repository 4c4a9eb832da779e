"""The scheduler: binds every pending pod (schedulerName `default-scheduler`) to a node.

One thread places pods one at a time against the incremental `Cache` — fast,
because placement is pure computation — and hands each decision to a pool of
binder threads that write the `binding` subresource concurrently (their
writes share the store's fsyncs). A pod that fits nowhere gets
`PodScheduled=False`, reason `Unschedulable`, with kube-scheduler's message
and a FailedScheduling event, and waits until a node appears or changes, or
a pod goes away, or `scheduler_retry_seconds` pass; retries back off from 1 s
to 10 s per pod.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core import errors
from core.kube import scheduling, timefmt
from core.workqueue import WorkQueue
from master.client import Env, Informer, obj_key, split_key
from master.scheduler.cache import Cache, Usage
from master.scheduler.fit import Fitter, Placement
from master.scheduler.volumes import VolumeBinder, VolumeCheck

log = logging.getLogger(__name__)
Obj = dict[str, Any]
NAME = "default-scheduler"


def _wants_us(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    return not spec.get("nodeName") and (spec.get("schedulerName") or NAME) == NAME and \
        not (pod.get("metadata") or {}).get("deletionTimestamp")


def _node_view(node: Obj) -> tuple[Any, ...]:
    return ((node.get("metadata") or {}).get("labels"), (node.get("spec") or {}).get("unschedulable"),
            (node.get("spec") or {}).get("taints"), scheduling.allocatable(node), scheduling.ready_status(node))


class Scheduler:
    def __init__(self, env: Env) -> None:
        self.env = env
        self.client = env.client
        self.cache = Cache()
        self.fitter = Fitter(self.cache)
        self.queue = WorkQueue("scheduler")
        self.pods: Informer = env.informers.informer(env.kinds.pods)
        self.nodes: Informer = env.informers.informer(env.kinds.nodes)
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[float, int]] = {}  # unschedulable: key -> (last failure, attempts)
        self._binders = ThreadPoolExecutor(max(1, env.settings.scheduler_bind_threads), "scheduler-bind")
        self.volumes = VolumeBinder(env, self._retry_waiting)
        self.nodes.add_handler(self._node_changed)  # last: a running informer calls handlers at once
        self.pods.add_handler(self._pod_changed)

    # --- events -------------------------------------------------------------------------------
    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            assert old is not None
            key = obj_key(old)
            with self._lock:
                self._waiting.pop(key, None)
            if self.cache.remove_pod(key):
                self._retry_waiting()
            return
        key = obj_key(new)
        node = (new.get("spec") or {}).get("nodeName")
        if node:
            with self._lock:
                self._waiting.pop(key, None)
            if predicates_terminal(new):
                if self.cache.remove_pod(key):
                    self._retry_waiting()
            elif not self.cache.has_pod(key, node):
                self.cache.add_pod(key, node, Usage.of(new))
            return
        if not _wants_us(new):
            return
        with self._lock:
            waiting = key in self._waiting
        if not waiting or old is None or (old.get("spec") != new.get("spec")):
            self.queue.add(key)

    def _node_changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            assert old is not None
            self.cache.remove_node(old["metadata"]["name"])
            return
        self.cache.update_node(new)
        if old is None or _node_view(old) != _node_view(new):
            self._retry_waiting()

    def _retry_waiting(self) -> None:
        now = time.monotonic()
        with self._lock:
            waiting = list(self._waiting.items())
        for key, (failed_at, attempts) in waiting:
            self.queue.add_after(key, failed_at + min(2.0 ** (attempts - 1), 10.0) - now)

    # --- the scheduling loop ----------------------------------------------------------------------
    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._loop, name="scheduler", daemon=True),
                   threading.Thread(target=self._flush_loop, name="scheduler-retry", daemon=True)]
        for t in threads:
            t.start()
        return threads

    def _flush_loop(self) -> None:
        while not self.env.stopping.wait(self.env.settings.scheduler_retry_seconds):
            self._retry_waiting()

    def _loop(self) -> None:
        while not self.env.stopping.is_set():
            key = self.queue.get(timeout=0.5)
            if key is None:
                continue
            try:
                self.schedule_one(key)
            except Exception:
                log.exception("scheduling %s failed", key)
                self.queue.add_after(key, 1.0)
            finally:
                self.queue.done(key)
        self._binders.shutdown(wait=False, cancel_futures=True)

    def schedule_one(self, key: str) -> None:
        pod = self.pods.get_key(key)
        if pod is None or not _wants_us(pod) or self.cache.is_placed(key):
            return
        usage = Usage.of(pod)
        volumes = self.volumes.check(pod)
        node_obj: Obj = {}
        with self.cache.lock:
            if volumes.error is not None:
                placement = Placement(None, Counter(), len(self.cache.nodes), volumes.error)
            else:
                placement = self.fitter.place(pod, usage, None if volumes.empty else volumes.reason)
            if placement.node is not None:
                self.cache.assume(key, placement.node, usage)
                node_obj = self.cache.nodes[placement.node].node
        if placement.node is None:
            self._unschedulable(key, pod, placement)
            return
        with self._lock:
            self._waiting.pop(key, None)
        if volumes.delayed:
            self.volumes.assume(pod, volumes, placement.node)
            self._binders.submit(self._bind, key, pod, placement.node, volumes, node_obj)
        else:
            self._binders.submit(self._bind, key, pod, placement.node)

    def _bind(self, key: str, pod: Obj, node: str, volumes: VolumeCheck | None = None,
              node_obj: Obj | None = None) -> None:
        ns, name = split_key(key)
        try:
            if volumes is not None and node_obj is not None:
                self.volumes.bind_claims(pod, volumes, node, node_obj)
            self.client.bind(ns, name, node)
        except errors.NotFound:
            self.cache.forget(key)  # being deleted, or gone
            return
        except errors.Conflict:
            self.cache.forget(key)  # bound by someone else, or its claim bound elsewhere: placed again if not bound
            self.queue.add_after(key, 0.2)
            return
        except Exception as exc:
            log.info("binding %s to %s failed: %s", key, node, exc)
            self.cache.forget(key)
            self.queue.add_after(key, 1.0)
            return
        self.env.recorder.event(pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {node}", NAME)

    def _unschedulable(self, key: str, pod: Obj, placement: Placement) -> None:
        message = placement.message()
        with self._lock:
            _, attempts = self._waiting.get(key, (0.0, 0))
            self._waiting[key] = (time.monotonic(), attempts + 1)
        self.env.recorder.event(pod, "Warning", "FailedScheduling", message, NAME)
        cond = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "PodScheduled"),
                    None)
        if cond is not None and cond.get("status") == "False" and cond.get("message") == message:
            return
        self._binders.submit(self._write_condition, pod, message)

    def _write_condition(self, pod: Obj, message: str) -> None:
        new = copy.deepcopy(pod)
        status = new.setdefault("status", {})
        status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"] + [
            {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
             "lastTransitionTime": timefmt.rfc3339(),
             "reason": "Unschedulable", "message": message}]
        # A conflict means the pod changed meanwhile: its next attempt writes the condition again.
        with contextlib.suppress(errors.Conflict, errors.NotFound):
            self.client.update_status(self.env.kinds.pods, new)


def predicates_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
