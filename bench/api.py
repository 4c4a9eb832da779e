"""API benchmark: latency at a fixed request rate, watch fan-out, master memory, idle disk writes.

Starts its own master on loopback, fills it with objects, and prints, in one run:
GET / LIST / CREATE latency p50/p99 at a fixed rate (targets: GET p99 <= 20 ms,
CREATE p99 <= 50 ms), watch event delivery p99 with many watchers, the master's
RSS with 3 nodes and 30 pods (target <= 60 MB), the admin's GET p99 while 200
idle connections and 500 watches are held against the same run's quiet p99
(target <= 2x), and bytes the master wrote while simulated nodes heartbeat
(target <= 1 MB per hour for 5 nodes).

`--idle-etcd` measures the disk writes per hour of an idle cluster of three
masters on a three-member etcd against one master on SQLite, the same five
heartbeating nodes on each, in the same minutes.

`--apply-only` measures server-side apply: PATCH latency p50/p99 of an
`application/apply-patch+yaml` body against a merge patch carrying the same
manifest, both changing one annotation of a paused Deployment (two containers,
env, ports: keyed lists the apply merges and records in managedFields), in
alternating windows of the same rounds (target: apply p99 <= 2x merge p99).

`--compare-stores` runs GET / LIST / CREATE latency and the master's RSS on
SQLite and on a real etcd (Debian's etcd-server, started on loopback) in one run,
side by side, with etcd's own RSS (targets: CREATE p99 on etcd <= 2x SQLite's,
master RSS <= SQLite's + 5 MB).

`--rbac-only` measures what RBAC costs a request: GET p50/p99 by a user whose
rights come from a RoleBinding (RBAC evaluated on every request), and by a
service account's bound token (its checks too), with 100 Roles and 100
RoleBindings present, against the admin certificate's GET in the same rounds
(target <= 1.2x).

Latency is measured in rounds: each round runs /healthz (the baseline: TLS, the
WSGI server and the client, no API work), GET, LIST and CREATE windows one after
the other, and notes the CPU time the hypervisor stole from this machine during
the round (/proc/stat). On a shared virtual machine a burst of steal lands in one
round and inflates everything measured in it, healthz included; so the summary
gives both the p99 of all samples pooled and the median over rounds of each
round's p99, and every round's figures are printed beside its steal.

    .venv/bin/python -m bench.api [--objects 1000] [--rate 100] [--rounds 5] [--seconds 4]
                                  [--watchers 200] [--idle-minutes 10] [--idle-only] [--idle-etcd]
                                  [--pressure-only] [--rbac-only] [--apply-only] [--compare-stores]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import socket
import ssl
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from pikube.dev.localmaster import RunningMaster, start_master

NS = "bench"


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def paced(rate: float, seconds: float, call: Callable[[int], None], workers: int = 16) -> list[float]:
    """Issue `call(i)` at `rate` per second for `seconds`; latency (ms) of each call."""
    latencies: list[float] = []
    lock = threading.Lock()

    def one(i: int, due: float) -> None:
        t0 = time.perf_counter()
        call(i)
        ms = (time.perf_counter() - t0) * 1000
        with lock:
            latencies.append(ms)

    total = int(rate * seconds)
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i, due)
    return latencies


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def configmap(i: int) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}", "labels": {"b": "1"}},
            "data": {"payload": "x" * 512}}


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux"}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": now(),
                                       "lastTransitionTime": now(), "reason": "KubeletReady"}],
                       "capacity": {"cpu": "4", "memory": "1Gi", "pods": "110"}}}


def pod(i: int, node_name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"pod-{i}", "labels": {"app": "bench"}},
            "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "pikube/busybox:1"}]}}


def heartbeat(s: requests.Session, url: str, name: str) -> None:
    body = {"status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": now(),
                                       "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": "KubeletReady"}]}}
    s.patch(f"{url}/api/v1/nodes/{name}/status", data=json.dumps(body),
            headers={"Content-Type": "application/strategic-merge-patch+json"}, timeout=10)
    lease_url = f"{url}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
    lease = {"metadata": {"name": name}, "spec": {"holderIdentity": name, "renewTime": now().replace("Z", ".000000Z"),
                                                  "leaseDurationSeconds": 40}}
    r = s.put(lease_url, json=lease, timeout=10)
    if r.status_code == 404:
        s.post(lease_url.rsplit("/", 1)[0], json=lease, timeout=10)


def bench(args: argparse.Namespace) -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="pikube-bench-") as tmp:
        m: RunningMaster = start_master(Path(tmp) / "data")
        try:
            if args.idle_only:
                raise _SkipLoad
            s = m.session()
            adapter = requests.adapters.HTTPAdapter(pool_connections=64, pool_maxsize=64)
            s.mount("https://", adapter)
            base = f"{m.url}/api/v1/namespaces/{NS}/configmaps"
            s.post(f"{m.url}/api/v1/namespaces", json={"metadata": {"name": NS}})
            for i in range(args.objects):
                s.post(base, json=configmap(i))

            # Memory with 3 nodes and 30 pods (before load inflates caches).
            for n in range(3):
                s.post(f"{m.url}/api/v1/nodes", json=node(f"node-{n}"))
            for i in range(30):
                s.post(f"{m.url}/api/v1/namespaces/{NS}/pods", json=pod(i, f"node-{i % 3}"))
            time.sleep(1)
            results["rss_mb_3_nodes_30_pods"] = rss_mb(m.proc.pid)
            results.update(usage_memory(m, s))

            if args.rbac_only:
                results.update(rbac_latency(args, m, s, base))
                raise _SkipLoad
            if args.apply_only:
                results.update(apply_latency(args, m, s))
                raise _SkipLoad
            if not args.pressure_only:
                results.update(latency_rounds(args, m, s, base))
                results.update(watch_fanout(m, s, args.watchers))
                results["rss_mb_after_load"] = rss_mb(m.proc.pid)
            results.update(under_pressure(args, m, s, base))
        except _SkipLoad:
            pass
        finally:
            m.stop()
        if args.idle_minutes > 0 and not (args.rbac_only or args.apply_only):
            # A fresh master, so nothing from the load above (nodes going NotReady, evictions) is counted.
            idle = start_master(Path(tmp) / "idle")
            try:
                results.update(idle_writes(idle, idle.session(), args.idle_minutes))
            finally:
                idle.stop()
    return results


def usage_memory(m: RunningMaster, s: requests.Session, boards: int = 10, pods: int = 30) -> dict[str, float]:
    """The master's RSS before and after `boards` boards reported usage of `pods` pods each for an hour
    (a full history: 240 reports per board, what agents send every 15 s), through the agents' endpoint."""
    before = rss_mb(m.proc.pid)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for board in range(boards):
        for i in range(240):
            report = {"timestamp": stamp, "window": 15, "node": {"cpu": 10**9 + i, "memory": 500 << 20,
                                                                 "temperature": 50.0, "throttled": 0},
                      "pods": [{"namespace": NS, "name": f"usage-{board}-{p}", "uid": f"uid-{board}-{p}",
                                "containers": [{"name": "app", "cpu": 10**8 + i, "memory": 40 << 20},
                                               {"name": "side", "cpu": 10**6, "memory": 4 << 20}]}
                               for p in range(pods)]}
            s.put(f"{m.url}/pikube/v1/nodes/usage-{board}/metrics", json=report).raise_for_status()
    time.sleep(1)
    after = rss_mb(m.proc.pid)
    print(f"# usage of {boards} boards x {pods} pods, an hour of history: master RSS {before:.1f} -> {after:.1f} MB",
          flush=True)
    return {"rss_mb_before_usage": before, f"rss_mb_usage_{boards}_boards_{boards * pods}_pods": after,
            "usage_rss_delta_mb": after - before}


def cpu_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return fields[7], sum(fields[:8])


def latency_rounds(args: argparse.Namespace, m: RunningMaster, s: requests.Session, base: str) -> dict[str, float]:
    kinds: dict[str, tuple[float, Callable[[int, int], None]]] = {
        "healthz": (args.rate, lambda r, i: s.get(f"{m.url}/healthz").raise_for_status()),
        "get": (args.rate, lambda r, i: s.get(f"{base}/cm-{i % args.objects}").raise_for_status()),
        "list_limit50": (args.rate / 10, lambda r, i: s.get(base, params={"limit": "50"}).raise_for_status()),
        "create": (args.rate, lambda r, i: s.post(
            base, json=configmap(args.objects + r * 1_000_000 + i)).raise_for_status()),
    }
    pooled: dict[str, list[float]] = {k: [] for k in kinds}
    round_p99: dict[str, list[float]] = {k: [] for k in kinds}
    print(f"{'round':>5} {'steal%':>7}  " + "  ".join(f"{k + ' p50/p99':>22}" for k in kinds))
    for r in range(args.rounds):
        steal0, total0 = cpu_ticks()
        cells = []
        for kind, (rate, call) in kinds.items():
            lat = paced(rate, args.seconds, lambda i, call=call, r=r: call(r, i))
            pooled[kind] += lat
            round_p99[kind].append(pct(lat, 99))
            cells.append(f"{statistics.median(lat):10.1f}/{pct(lat, 99):6.1f} ms")
        steal1, total1 = cpu_ticks()
        steal = 100 * (steal1 - steal0) / max(1, total1 - total0)
        print(f"{r + 1:>5} {steal:7.1f}  " + "  ".join(f"{c:>22}" for c in cells), flush=True)
    results: dict[str, float] = {}
    for kind in kinds:
        results[f"{kind}_p50_ms"] = statistics.median(pooled[kind])
        results[f"{kind}_p99_ms_pooled"] = pct(pooled[kind], 99)
        results[f"{kind}_p99_ms_median_of_rounds"] = statistics.median(round_p99[kind])
    results["get_p99_over_healthz_p99"] = (results["get_p99_ms_median_of_rounds"]
                                           / results["healthz_p99_ms_median_of_rounds"])
    return results


def compare_stores(args: argparse.Namespace) -> dict[str, float]:
    from pikube.dev.etcd import start_etcd

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="pikube-bench-stores-") as tmp:
        etcd = start_etcd(Path(tmp) / "etcd")
        try:
            for name, extra in (("sqlite", ()), ("etcd", ("--datastore-endpoint", etcd.client_url))):
                m = start_master(Path(tmp) / name, extra_args=extra)
                try:
                    s = m.session()
                    s.mount("https://", requests.adapters.HTTPAdapter(pool_connections=64, pool_maxsize=64))
                    base = f"{m.url}/api/v1/namespaces/{NS}/configmaps"
                    s.post(f"{m.url}/api/v1/namespaces", json={"metadata": {"name": NS}})
                    for i in range(args.objects):
                        s.post(base, json=configmap(i))
                    print(f"--- {name}")
                    for key, value in latency_rounds(args, m, s, base).items():
                        out[f"{name}_{key}"] = value
                    out[f"{name}_master_rss_mb"] = rss_mb(m.proc.pid)
                finally:
                    m.stop()
            out["etcd_own_rss_mb"] = rss_mb(etcd.proc.pid)
        finally:
            etcd.stop()
    out["etcd_over_sqlite_create_p99"] = (out["etcd_create_p99_ms_median_of_rounds"]
                                          / out["sqlite_create_p99_ms_median_of_rounds"])
    out["etcd_minus_sqlite_master_rss_mb"] = out["etcd_master_rss_mb"] - out["sqlite_master_rss_mb"]
    return out


def rbac_session(m: RunningMaster, user: str) -> requests.Session:
    """An HTTPS session with a client certificate for `user` (no groups), from the master's CA."""
    from master.pki import issue_client_cert, pki_paths

    cert, key = issue_client_cert(pki_paths(m.data_dir), user, [])
    folder = m.data_dir / f"bench-{user}"
    folder.mkdir(exist_ok=True)
    (folder / "c.pem").write_bytes(cert)
    (folder / "k.pem").write_bytes(key)
    s = requests.Session()
    s.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override the cluster's CA
    s.verify = str(m.ca)
    s.cert = (str(folder / "c.pem"), str(folder / "k.pem"))
    s.mount("https://", requests.adapters.HTTPAdapter(pool_connections=64, pool_maxsize=64))
    return s


def rbac_latency(args: argparse.Namespace, m: RunningMaster, s: requests.Session, base: str) -> dict[str, float]:
    rbac = f"{m.url}/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}"
    for i in range(100):  # 100 roles and bindings for other users, as a busy cluster has
        s.post(f"{rbac}/roles", json={"metadata": {"name": f"role-{i}"}, "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": [f"cm-{i}"]}]})
        s.post(f"{rbac}/rolebindings", json={"metadata": {"name": f"binding-{i}"}, "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"role-{i}"}, "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"user-{i}"}]})
    s.post(f"{rbac}/rolebindings", json={"metadata": {"name": "reader"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}, "subjects": [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "reader"}]})
    reader = rbac_session(m, "reader")
    reader.get(f"{base}/cm-0").raise_for_status()
    # A service account's bound token (signature checked once, expiry and the account on every request).
    s.post(f"{m.url}/api/v1/namespaces/{NS}/serviceaccounts", json={"metadata": {"name": "bench-sa"}})
    s.post(f"{rbac}/rolebindings", json={"metadata": {"name": "bench-sa"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}, "subjects": [
        {"kind": "ServiceAccount", "name": "bench-sa", "namespace": NS}]})
    answer = s.post(f"{m.url}/api/v1/namespaces/{NS}/serviceaccounts/bench-sa/token", json={"spec": {}})
    answer.raise_for_status()
    sa = requests.Session()
    sa.trust_env = False
    sa.verify = str(m.ca)
    sa.headers["Authorization"] = "Bearer " + answer.json()["status"]["token"]
    sa.mount("https://", requests.adapters.HTTPAdapter(pool_connections=64, pool_maxsize=64))
    sa.get(f"{base}/cm-0").raise_for_status()
    sessions = {"admin": s, "rbac": reader, "token": sa}
    pooled: dict[str, list[float]] = {k: [] for k in sessions}
    round_p99: dict[str, list[float]] = {k: [] for k in sessions}
    for r in range(args.rounds):
        cells = []
        for who, session in sessions.items():
            lat = paced(args.rate, args.seconds,
                        lambda i, session=session: session.get(f"{base}/cm-{i % args.objects}").raise_for_status())
            pooled[who] += lat
            round_p99[who].append(pct(lat, 99))
            cells.append(f"{who} {statistics.median(lat):6.1f}/{pct(lat, 99):6.1f} ms")
        print(f"round {r + 1}: " + "   ".join(cells), flush=True)
    out: dict[str, float] = {}
    for who in sessions:
        out[f"get_{who}_p50_ms"] = statistics.median(pooled[who])
        out[f"get_{who}_p99_ms_median_of_rounds"] = statistics.median(round_p99[who])
    out["get_rbac_over_admin_p50"] = out["get_rbac_p50_ms"] / out["get_admin_p50_ms"]
    out["get_rbac_over_admin_p99"] = (out["get_rbac_p99_ms_median_of_rounds"]
                                      / out["get_admin_p99_ms_median_of_rounds"])
    out["get_token_over_admin_p50"] = out["get_token_p50_ms"] / out["get_admin_p50_ms"]
    out["get_token_over_admin_p99"] = (out["get_token_p99_ms_median_of_rounds"]
                                       / out["get_admin_p99_ms_median_of_rounds"])
    return out


def deployment(name: str, stamp: int) -> dict[str, object]:
    """A paused Deployment of no replicas (the controllers leave it alone) with keyed lists to merge."""
    env = [{"name": f"VAR_{k}", "value": str(k)} for k in range(5)]
    containers = [{"name": f"c{c}", "image": "pikube/busybox:1", "args": ["sleep", "3600"], "env": env,
                   "ports": [{"containerPort": 8080 + c, "name": f"http{c}"}],
                   "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}} for c in range(2)]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": "bench"}, "annotations": {"bench/stamp": str(stamp)}},
            "spec": {"replicas": 0, "paused": True, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}}}}


def apply_latency(args: argparse.Namespace, m: RunningMaster, s: requests.Session) -> dict[str, float]:
    """Server-side apply against a merge patch of the same manifest, alternating windows per round."""
    base = f"{m.url}/apis/apps/v1/namespaces/{NS}/deployments"
    count = 50
    kinds = {"apply": ("application/apply-patch+yaml", {"fieldManager": "bench"}),
             "merge": ("application/merge-patch+json", {"fieldManager": "bench-merge"})}
    for kind, (ctype, params) in kinds.items():
        for k in range(count):
            name = f"{kind}-{k}"
            if kind == "merge":
                s.post(base, json=deployment(name, 0), params=params).raise_for_status()
            else:
                s.patch(f"{base}/{name}", data=json.dumps(deployment(name, 0)), params=params,
                        headers={"Content-Type": ctype}).raise_for_status()
    pooled: dict[str, list[float]] = {k: [] for k in kinds}
    round_p99: dict[str, list[float]] = {k: [] for k in kinds}
    stamp = iter(range(1, 10**9))
    for r in range(args.rounds):
        cells = []
        for kind, (ctype, params) in kinds.items():
            def call(i: int, kind: str = kind, ctype: str = ctype, params: dict[str, str] = params) -> None:
                name = f"{kind}-{i % count}"
                s.patch(f"{base}/{name}", data=json.dumps(deployment(name, next(stamp))), params=params,
                        headers={"Content-Type": ctype}, timeout=30).raise_for_status()
            lat = paced(args.rate, args.seconds, call)
            pooled[kind] += lat
            round_p99[kind].append(pct(lat, 99))
            cells.append(f"{kind} {statistics.median(lat):6.1f}/{pct(lat, 99):6.1f} ms")
        print(f"round {r + 1}: " + "   ".join(cells), flush=True)
    sample = s.get(f"{base}/apply-0").json()
    out: dict[str, float] = {}
    for kind in kinds:
        out[f"{kind}_p50_ms"] = statistics.median(pooled[kind])
        out[f"{kind}_p99_ms_pooled"] = pct(pooled[kind], 99)
        out[f"{kind}_p99_ms_median_of_rounds"] = statistics.median(round_p99[kind])
    out["apply_over_merge_p50"] = out["apply_p50_ms"] / out["merge_p50_ms"]
    out["apply_over_merge_p99"] = out["apply_p99_ms_median_of_rounds"] / out["merge_p99_ms_median_of_rounds"]
    out["managed_fields_bytes"] = len(json.dumps(sample["metadata"].get("managedFields", [])))
    out["object_bytes"] = len(json.dumps(sample))
    out.update(bookkeeping_us())
    return out


def _discard(_: object) -> None:
    return None


def bookkeeping_us(rounds: int = 2000) -> dict[str, float]:
    """In-process cost (microseconds) of the owner bookkeeping alone, on this Deployment with its status:
    a controller's status write (its Update entry), a create, and a no-change apply."""
    import copy
    import timeit

    from master.registry import fieldmanager

    dep = deployment("d", 1)
    dep["status"] = {"replicas": 3, "readyReplicas": 3, "observedGeneration": 1, "conditions": [
        {"type": t, "status": "True", "reason": "r", "message": "m", "lastUpdateTime": now(),
         "lastTransitionTime": now()} for t in ("Available", "Progressing")]}
    live = fieldmanager.apply({}, dep, "Deployment", "apps/v1", "kubectl", False, "", True)
    first = copy.deepcopy(live)
    fieldmanager.record_update(live, first, "Deployment", "apps/v1", "ctl", "status", True)
    live = json.loads(json.dumps(first))  # as the store hands it out
    status = copy.deepcopy(live)
    status["status"]["readyReplicas"] = 2
    copies = [copy.deepcopy(status) for _ in range(rounds)]
    made = [copy.deepcopy(dep) for _ in range(rounds)]

    def per_call(fn: Callable[[int], None]) -> float:
        counter = iter(range(rounds))
        return timeit.timeit(lambda: fn(next(counter)), number=rounds) / rounds * 1e6

    return {
        "bookkeeping_status_write_us": per_call(lambda i: fieldmanager.record_update(
            live, copies[i], "Deployment", "apps/v1", "ctl", "status", True)),
        "bookkeeping_create_us": per_call(lambda i: fieldmanager.record_update(
            None, made[i], "Deployment", "apps/v1", "ctl", "", True)),
        "bookkeeping_apply_unchanged_us": per_call(lambda i: _discard(fieldmanager.apply(
            live, dep, "Deployment", "apps/v1", "kubectl", False, "", True))),
    }


def watch_fanout(m: RunningMaster, s: requests.Session, watchers: int) -> dict[str, float]:
    url = f"{m.url}/api/v1/namespaces/{NS}/configmaps"
    rv = s.get(url, params={"limit": "1"}).json()["metadata"]["resourceVersion"]
    delays: list[float] = []
    sent: dict[str, float] = {}
    lock = threading.Lock()
    ready = threading.Barrier(watchers + 1, timeout=60)
    events = 20

    def watcher() -> None:
        ws = requests.Session()
        ws.trust_env, ws.verify, ws.cert = False, s.verify, s.cert
        with ws.get(url, params={"watch": "1", "resourceVersion": rv, "labelSelector": "w=1",
                                 "timeoutSeconds": "60"}, stream=True, timeout=90) as resp:
            ready.wait()
            got = 0
            for line in resp.iter_lines():
                if not line:
                    continue
                name = json.loads(line)["object"]["metadata"]["name"]
                t = time.perf_counter()
                with lock:
                    delays.append((t - sent.get(name, t)) * 1000)
                got += 1
                if got == events:
                    return

    threads = [threading.Thread(target=watcher, daemon=True) for _ in range(watchers)]
    for t in threads:
        t.start()
    ready.wait()
    time.sleep(1)
    for i in range(events):
        name = f"watched-{i}"
        sent[name] = time.perf_counter()
        s.post(url, json={"metadata": {"name": name, "labels": {"w": "1"}}})
        time.sleep(0.05)
    for t in threads:
        t.join(60)
    return {"watchers": float(watchers), "watch_delivery_p50_ms": statistics.median(delays),
            "watch_delivery_p99_ms": pct(delays, 99), "watch_events_delivered": float(len(delays)),
            "watch_events_expected": float(watchers * events)}


def _hold(m: RunningMaster, s: requests.Session, source: str, watch: bool) -> socket.socket:
    """A connection from `source` that sits idle, or an admin watch that stays open."""
    raw = socket.create_connection(("127.0.0.1", m.port), timeout=10, source_address=(source, 0))
    if not watch:
        return raw
    ctx = ssl.create_default_context(cafile=str(s.verify))
    cert, key = s.cert if isinstance(s.cert, tuple) else (str(s.cert), None)
    ctx.load_cert_chain(cert, key)
    tls = ctx.wrap_socket(raw, server_hostname="localhost")
    tls.sendall(f"GET /api/v1/namespaces/{NS}/configmaps?watch=1&resourceVersion=0&labelSelector=w%3Dnone "
                "HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = tls.recv(12)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"watch refused: {head!r}")
    return tls


def under_pressure(args: argparse.Namespace, m: RunningMaster, s: requests.Session, base: str) -> dict[str, float]:
    """Admin GET p99 while 200 idle connections and 500 watches are held, against the same run's quiet p99."""
    def get_window() -> float:
        return pct(paced(args.rate, args.seconds, lambda i: s.get(f"{base}/cm-{i % args.objects}")
                         .raise_for_status()), 99)

    get_window()  # warm-up, discarded: the first reads of each object fill caches
    quiet = [get_window() for _ in range(2)]
    held: list[socket.socket] = []
    try:
        held += [_hold(m, s, "127.0.0.2", watch=False) for _ in range(200)]
        held += [_hold(m, s, f"127.0.0.{3 + i % 2}", watch=True) for i in range(500)]
        loaded = [get_window() for _ in range(2)]
    finally:
        for c in held:
            c.close()
    after = get_window()  # while the server tears the 700 connections down: reported, not in the ratio
    q, p = statistics.mean(quiet), statistics.mean(loaded)
    print(f"# admin GET p99 per window: quiet {', '.join(f'{x:.1f}' for x in quiet)} ms; held "
          f"{', '.join(f'{x:.1f}' for x in loaded)} ms; just after closing {after:.1f} ms", flush=True)
    print(f"# admin GET p99 quiet {q:.1f} ms, with 200 idle connections and 500 watches held {p:.1f} ms", flush=True)
    return {"get_p99_ms_quiet": q, "get_p99_ms_200_idle_500_watches": p, "get_p99_pressure_over_quiet": p / q,
            "get_p99_ms_just_after_closing": after}


def idle_writes(m: RunningMaster, s: requests.Session, minutes: float) -> dict[str, float]:
    names = [f"idle-{i}" for i in range(5)]
    for n in names:
        s.post(f"{m.url}/api/v1/nodes", json=node(n))
    # Warm up for a minute: the first heartbeat of each node changes real state (conditions'
    # transition times, the revision reservation) and is written; what follows is the idle cluster.
    warm_end = time.monotonic() + 60
    while time.monotonic() < warm_end:
        for n in names:
            heartbeat(s, m.url, n)
        time.sleep(10)
    before = write_bytes(m.proc.pid)
    end = time.monotonic() + minutes * 60
    beats = 0
    while time.monotonic() < end:
        for n in names:
            heartbeat(s, m.url, n)
            beats += 1
        time.sleep(10)
    written = write_bytes(m.proc.pid) - before
    return {"idle_minutes": minutes, "idle_heartbeats": float(beats), "idle_bytes_written": float(written),
            "idle_mb_per_hour": written / (1 << 20) * 60 / minutes}


def idle_on_etcd(minutes: float) -> dict[str, float]:
    """--idle-etcd: the disk writes per hour of an idle cluster of three masters on a three-member etcd against
    one master on SQLite, the same five heartbeating nodes on each, side by side in the same minutes."""
    import shutil

    from pikube.dev.etcd import start_etcd_cluster

    with tempfile.TemporaryDirectory(prefix="pikube-bench-") as tmp:
        base = Path(tmp)
        members = start_etcd_cluster(base / "etcd", 3)
        endpoints = ",".join(m.client_url for m in members)
        lite = start_master(base / "sqlite")
        masters: list[RunningMaster] = []
        try:
            masters.append(start_master(base / "m0", extra_args=("--datastore-endpoint", endpoints)))
            for i in (1, 2):
                (base / f"m{i}").mkdir()
                shutil.copytree(base / "m0" / "pki", base / f"m{i}" / "pki")
                masters.append(start_master(base / f"m{i}", extra_args=("--datastore-endpoint", endpoints)))
            sessions = [(lite.url, lite.session()), (masters[0].url, masters[0].session())]
            names = [f"idle-{i}" for i in range(5)]
            for url, s in sessions:
                for n in names:
                    s.post(f"{url}/api/v1/nodes", json=node(n))

            def beat(until: float) -> None:
                while time.monotonic() < until:
                    for url, s in sessions:
                        for n in names:
                            heartbeat(s, url, n)
                    time.sleep(10)

            beat(time.monotonic() + 60)  # the first heartbeats change real state; what follows is idle
            etcd_pids = [m.proc.pid for m in members] + [m.proc.pid for m in masters]
            lite_before = write_bytes(lite.proc.pid)
            etcd_before = sum(write_bytes(pid) for pid in etcd_pids)
            beat(time.monotonic() + minutes * 60)
            lite_mb = (write_bytes(lite.proc.pid) - lite_before) / (1 << 20) * 60 / minutes
            etcd_mb = (sum(write_bytes(pid) for pid in etcd_pids) - etcd_before) / (1 << 20) * 60 / minutes
        finally:
            for m in masters:
                m.stop()
            lite.stop()
            for member in members:
                member.stop()
    out = {"idle_minutes": minutes, "idle_sqlite_master_mb_per_hour": lite_mb,
           "idle_3_masters_3_etcd_mb_per_hour_all": etcd_mb, "idle_3_etcd_mb_per_hour_per_member": etcd_mb / 3}
    if lite_mb > 0:  # SQLite keeps heartbeats in memory: an idle master may write nothing at all
        out["idle_etcd_per_member_over_sqlite"] = (etcd_mb / 3) / lite_mb
    return out


class _SkipLoad(Exception):
    """--idle-only: go straight to the idle-writes measurement."""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objects", type=int, default=1000)
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--rounds", type=int, default=5, help="latency rounds (each runs every kind once)")
    p.add_argument("--seconds", type=float, default=4.0, help="length of one kind's window in a round")
    p.add_argument("--watchers", type=int, default=200)
    p.add_argument("--idle-minutes", type=float, default=10.0)
    p.add_argument("--idle-only", action="store_true", help="measure only the idle cluster's disk writes")
    p.add_argument("--pressure-only", action="store_true",
                   help="of the load figures, measure only the admin's GET under held connections and watches")
    p.add_argument("--rbac-only", action="store_true",
                   help="measure only GET by an RBAC-authorized user against the admin's, 100 roles present")
    p.add_argument("--apply-only", action="store_true",
                   help="measure only server-side apply PATCH latency against a merge patch of the same object")
    p.add_argument("--idle-etcd", action="store_true",
                   help="idle disk writes of 3 masters on a 3-member etcd against 1 master on SQLite")
    p.add_argument("--compare-stores", action="store_true",
                   help="GET/LIST/CREATE latency and RSS on SQLite and on etcd, side by side")
    args = p.parse_args()
    results = idle_on_etcd(args.idle_minutes) if args.idle_etcd else \
        compare_stores(args) if args.compare_stores else bench(args)
    for key, value in results.items():
        print(f"{key:38} {value:12.3f}")


if __name__ == "__main__":
    main()
