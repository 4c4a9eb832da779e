"""Scheduler benchmark: 100 simulated boards, 5,000 pending pods, and a 1,000-replica Deployment.

    .venv/bin/python -m bench.scheduler [--boards 100] [--pods 5000] [--replicas 1000] [--report-pods]
                                        [--claims [--claim-pods 2000]]

A master runs in this process with its scheduler held back; 100 simulated
boards join it over HTTPS with a join token and heartbeat (Leases) as real
agents do. Then:

1. 5,000 pods are created (in-process, so creation is not what is measured),
   the scheduler is started, and the time until the master's pod informer has seen every pod
   bound gives pods bound per second (target >= 1,000/s; kube-scheduler's
   own performance test expects 400/s).
2. A 1,000-replica Deployment is created over HTTPS, like `kubectl apply`;
   the time until all its pods are bound covers the deployment controller,
   the ReplicaSet controller's slow-start batches and the scheduler.

Ratio printed for a noisy machine: the binding rate over the rate at which
the same store takes plain concurrent writes of the same pods in the same run.

With `--claims`, two more rounds after those, timed the same way (from the
first pod's creation to the last binding, the scheduler running): 2,000 pods
without claims, then 2,000 of which half have their own PersistentVolumeClaim
of the default local-path class (WaitForFirstConsumer, so each is bound on the
board its pod is placed on: a PersistentVolume made and the claim updated
before the pod's binding). The ratio printed is the second rate over the first
(target >= 0.5). Mind the boards' room: 110 pods each.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from core.jointoken import ca_hash
from core.kubeconfig import read_kubeconfig
from core.settings import MasterSettings
from master import controllermanager
from master.client import Informer
from master.registry.verbs import Handlers
from master.server import Master
from master.tokens import TokenStore
from pikube.sim import Api, BoardSpec, Credentials, Fleet
from pikube.sim.api import resource_path

Obj = dict[str, Any]


def pod(i: int, claim: str = "") -> Obj:
    made: Obj = {"metadata": {"name": f"bench-{i}", "labels": {"app": "bench"}},
                 "spec": {"containers": [{"name": "c", "image": "busybox:1",
                                          "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}
    if claim:
        made["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        made["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
    return made


def claim(i: int) -> Obj:
    return {"metadata": {"name": f"data-{i}"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}


class BindCounter:
    """Counts bound pods of one namespace from the master's own pod informer (no extra watch to decode)."""

    def __init__(self, informer: Informer, namespace: str) -> None:
        self.bound: set[str] = set()
        self.last = 0.0
        self._namespace = namespace
        self._on = True
        informer.add_handler(self._changed)

    def _changed(self, old: Obj | None, new: Obj | None) -> None:
        if not self._on or new is None or not (new.get("spec") or {}).get("nodeName"):
            return
        m = new.get("metadata") or {}
        if m.get("namespace") == self._namespace and m.get("name") not in self.bound:
            self.bound.add(m.get("name", ""))
            self.last = time.monotonic()

    def wait(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.bound) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return len(self.bound) >= count

    def close(self) -> None:
        self._on = False


def raw_write_rate(master: Master, count: int, threads: int) -> float:
    """Plain concurrent store writes of pod-sized objects: the ceiling for any binding rate."""
    objects = [pod(i) for i in range(count)]

    def write(i: int) -> None:
        master.store.create(f"/bench/raw/{i}", objects[i])

    start = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(write, range(count)))
    return count / (time.monotonic() - start)


def run_boards(server: str, token: str, count: int, report_pods: bool, ready: Connection) -> None:
    """The boards' process: join them all, say so, then heartbeat until terminated."""
    fleet = Fleet(server, token, BoardSpec(name="pi", watch_pods=report_pods))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: fleet.add(f"pi-{i + 1}"), range(count)))
    ready.send(True)
    threading.Event().wait()


def start_boards(server: str, token: str, count: int, report_pods: bool) -> multiprocessing.process.BaseProcess:
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("spawn").Process(target=run_boards, args=(server, token, count, report_pods,
                                                                                 child), daemon=True)
    proc.start()
    if not parent.poll(300):
        raise RuntimeError("the boards did not join within 300 s")
    parent.recv()
    return proc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--boards", type=int, default=100)
    p.add_argument("--pods", type=int, default=5000)
    p.add_argument("--replicas", type=int, default=1000)
    p.add_argument("--report-pods", action="store_true", help="boards also watch and report their pods")
    p.add_argument("--claims", action="store_true",
                   help="two more rounds of --claim-pods pods: without claims, then half with a local-path claim each")
    p.add_argument("--claim-pods", type=int, default=2000)
    args = p.parse_args()

    data = Path(tempfile.mkdtemp(prefix="pikube-bench-"))
    # The master's own controllers are replaced by ones started here, so that the scheduler can
    # join them late, on the same informers, once the pending pods exist.
    settings = MasterSettings(data_dir=data, bind="127.0.0.1", port=_free_port(),
                              disabled_controllers=frozenset(controllermanager.CONTROLLERS))
    master = Master(settings)
    master.start()
    handlers = Handlers(master.ctx)
    ctx = dataclasses.replace(master.ctx, settings=dataclasses.replace(
        settings, disabled_controllers=frozenset({"scheduler"})))
    running = controllermanager.start(ctx, handlers, master.stopping)
    boards: multiprocessing.process.BaseProcess | None = None
    admin: Api | None = None
    try:
        ca_pem = master.pki.ca_pem()
        token = TokenStore(data / "tokens.json", ca_hash(ca_pem)).create(3600, "bench")
        cfg = read_kubeconfig(data / "admin.kubeconfig")
        admin = Api(Credentials(master.server_url, ca_pem, cfg.cert_pem or b"", cfg.key_pem or b""))
        t = time.monotonic()
        boards = start_boards(master.server_url, token, args.boards, args.report_pods)
        print(f"{args.boards} boards joined and Ready in {time.monotonic() - t:.1f} s (in a process of their own: "
              f"boards are other machines)")

        pods_rt = master.catalog.by_kind("", "Pod")
        assert pods_rt is not None
        handlers.create(master.catalog.by_kind("", "Namespace"), "", {"metadata": {"name": "bench"}})  # type: ignore[arg-type]
        t = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: handlers.create(pods_rt, "bench", pod(i)), range(args.pods)))
        print(f"{args.pods} pending pods created in {time.monotonic() - t:.1f} s (in-process)")

        pod_informer = running.env.informers.informer(running.env.kinds.pods)
        counter = BindCounter(pod_informer, "bench")
        start, cpu = time.monotonic(), time.process_time()
        running.add("scheduler")
        ok = counter.wait(args.pods, 120)
        elapsed = (counter.last or time.monotonic()) - start
        cpu = time.process_time() - cpu
        counter.close()
        rate = len(counter.bound) / elapsed
        print(f"scheduler: {len(counter.bound)} pods bound in {elapsed:.2f} s = {rate:.0f} pods/s "
              f"(target >= 1000/s){'' if ok else '  [TIMED OUT]'}; this process used {cpu:.2f} CPU s = "
              f"{len(counter.bound) / cpu:.0f} pods per CPU second")
        threads = ctx.settings.scheduler_bind_threads
        raw = raw_write_rate(master, min(args.pods, 5000), threads)
        print(f"store ceiling: {raw:.0f} plain writes/s with {threads} threads; "
              f"binding rate / write rate = {rate / raw:.2f}")

        counter = BindCounter(pod_informer, "default")
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "big"},
                "spec": {"replicas": args.replicas, "selector": {"matchLabels": {"app": "big"}},
                         "template": {"metadata": {"labels": {"app": "big"}}, "spec": {"containers": [
                             {"name": "c", "image": "busybox:1",
                              "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}}
        start = time.monotonic()
        admin.create(resource_path("apps/v1", "deployments", "default"), body)
        ok = counter.wait(args.replicas, 300)
        elapsed = (counter.last or time.monotonic()) - start
        counter.close()
        print(f"deployment: {args.replicas} replicas created and bound {elapsed:.2f} s after the Deployment was "
              f"created{'' if ok else '  [TIMED OUT]'}")
        if args.claims:
            claims_rounds(master, handlers, running, args.claim_pods)
    finally:
        if boards is not None:
            boards.terminate()
            boards.join(10)
        if admin is not None:
            admin.close()
        master.stop()


def timed_round(master: Master, handlers: Handlers, running: controllermanager.Running, namespace: str,
                count: int, with_claims: bool) -> tuple[float, bool]:
    """Create `count` pods in a fresh namespace while the scheduler runs (every other one with its own local-path
    claim, made beforehand, when `with_claims`): pods bound per second, from the first creation to the last
    binding, and whether all were bound."""
    catalog = master.catalog
    ns_rt, pods_rt = catalog.by_kind("", "Namespace"), catalog.by_kind("", "Pod")
    claims_rt = catalog.by_kind("", "PersistentVolumeClaim")
    assert ns_rt is not None and pods_rt is not None and claims_rt is not None
    handlers.create(ns_rt, "", {"metadata": {"name": namespace}})
    if with_claims:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: handlers.create(claims_rt, namespace, claim(i)), range(0, count, 2)))
    counter = BindCounter(running.env.informers.informer(running.env.kinds.pods), namespace)
    start = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: handlers.create(pods_rt, namespace, pod(
            i, f"data-{i}" if with_claims and i % 2 == 0 else "")), range(count)))
    ok = counter.wait(count, 300)
    elapsed = (counter.last or time.monotonic()) - start
    counter.close()
    return len(counter.bound) / elapsed, ok


def claims_rounds(master: Master, handlers: Handlers, running: controllermanager.Running, count: int) -> None:
    """The same number of pods created and bound twice, the same way: without claims, then half with one."""
    plain, ok_plain = timed_round(master, handlers, running, "plain", count, False)
    print(f"created while the scheduler runs: {count} pods without claims bound at {plain:.0f} pods/s"
          f"{'' if ok_plain else '  [TIMED OUT]'}")
    rate, ok = timed_round(master, handlers, running, "claims", count, True)
    volumes = len(master.store.list("/core/persistentvolumes/")[0])
    print(f"with claims: {count} pods ({(count + 1) // 2} with a local-path claim; {volumes} volumes made) bound at "
          f"{rate:.0f} pods/s{'' if ok else '  [TIMED OUT]'}; rate with claims / rate without = {rate / plain:.2f} "
          "(target >= 0.5)")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    main()
