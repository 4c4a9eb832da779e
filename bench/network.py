"""Pod network benchmark: pod-to-pod throughput across boards against the LAN itself, and ClusterIP connection cost.

For each backend (host-gw, vxlan) it brings up two simulated boards with a real
master and `pikube agent --pod-network bridge --backend …` each (the lab of
`pikube.dev.netlab` that `tests/network` runs on, with two boards), a `client`
pod on b1 and a `server` pod on b2, and measures in the same run, interleaved
round by round so a noisy moment hits both sides alike:

- iperf3 TCP throughput board b1 → board b2 over the LAN (the baseline) and pod
  on b1 → pod on b2 (iperf3 is a Debian binary run in the pods' network
  namespaces with `nsenter --net=/proc/<pause pid>/ns/net`; the busybox image
  has none); targets: host-gw >= 0.9 x the LAN, vxlan >= 0.7 x;
- TCP connections per second (connect + close, one after another) from the
  client pod to a ClusterIP whose one endpoint is the server pod, against the
  server pod's IP directly, and to a LoadBalancer Service of the same pod at the
  address the master's servicelb controller gives it (board b2's own address;
  target: >= 0.9 x the ClusterIP) — three client pods on b1, one per target,
  taking turns round by round.

    .venv/bin/python -m bench.network [--seconds 3] [--rounds 9] [--connections 7000] [--docker-host URL]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pikube.dev.netlab import NetCluster, cluster_up, wait_for

BOARDS = ("b1", "b2")
IPERF_PORT = 5201
CONN_PORT = 5000
LB_PORT = 5080
TARGETS = {"host-gw": 0.9, "vxlan": 0.7}

# The server waits for the client to close first, so TIME_WAIT stays on the client side, where the
# client's kernel never reuses such a port towards the same address (no 1 s SYN retransmits).
ACCEPT_LOOP = f"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {CONN_PORT})); s.listen(1024)
while True:
    c, _ = s.accept(); c.recv(1); c.close()
"""

CONNECT_LOOP = """
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0 = time.perf_counter()
for _ in range(n):
    c = socket.create_connection((host, port), timeout=5); c.close()
print(n / (time.perf_counter() - t0))
"""


def say(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


def in_netns(netns: str, argv: list[str]) -> list[str]:
    """`argv` run inside `netns`: a name under /run/netns or a /proc/<pid>/ns/net path."""
    path = netns if "/" in netns else f"/run/netns/{netns}"
    return ["nsenter", f"--net={path}", "--", *argv]


def iperf(server_ns: str, client_ns: str, address: str, seconds: float) -> float:
    """Gbit/s received by a one-off iperf3 server in `server_ns` from a client in `client_ns`."""
    server = subprocess.Popen(in_netns(server_ns, ["iperf3", "-s", "-1", "-p", str(IPERF_PORT)]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):  # until it listens
            probe = subprocess.run(in_netns(client_ns, ["iperf3", "-c", address, "-p", str(IPERF_PORT), "-t",
                                                        str(seconds), "-J"]), capture_output=True, text=True,
                                   timeout=seconds + 30)
            try:
                received = json.loads(probe.stdout)["end"]["sum_received"]
                return float(received["bits_per_second"]) / 1e9
            except (ValueError, KeyError):  # not listening yet: iperf3 reports {"error": ...}
                pass
            time.sleep(0.1)
        raise RuntimeError(f"iperf3 to {address} failed: {probe.stdout[-500:]}{probe.stderr[-500:]}")
    finally:
        server.kill()
        server.wait()


def connection_rate(client_ns: str, address: str, count: int, port: int = CONN_PORT) -> float:
    """Connections per second (connect + close, one after another) from `client_ns` to `address`:`port`."""
    proc = subprocess.run(in_netns(client_ns, [sys.executable, "-c", CONNECT_LOOP, address, str(port),
                                               str(count)]), capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"connections to {address} failed: {proc.stderr[-800:]}")
    return float(proc.stdout)


def measure(c: NetCluster, args: argparse.Namespace) -> dict[str, Any]:
    # Two client pods, one per connection target: a client that reached the pod IP and then the ClusterIP from
    # the same ports would make the second connection clash with the first one's conntrack entry after DNAT.
    for name, board in (("client", "b1"), ("client-svc", "b1"), ("client-lb", "b1"), ("server", "b2")):
        c.create_pod(name, board, {"app": name}, command=["sleep", "86400"])
    c.wait_ready("client", "client-svc", "client-lb", "server")
    cluster_ip = c.service("server", {"app": "server"}, CONN_PORT, CONN_PORT)["spec"]["clusterIP"]
    c.wait_rules("server", CONN_PORT)
    c.service("server-lb", {"app": "server"}, LB_PORT, CONN_PORT, kind="LoadBalancer")
    lb_address = c.address("b2")
    wait_for("the LoadBalancer's ingress", lambda: lb_address in {
        i.get("ip") for i in (((c.get("/api/v1/namespaces/default/services/server-lb") or {}).get("status") or {})
                              .get("loadBalancer") or {}).get("ingress") or []}, 15)
    c.wait_rules("server-lb", LB_PORT)
    client_ns, svc_client_ns, server_ns = c.pod_netns("client"), c.pod_netns("client-svc"), c.pod_netns("server")
    lb_client_ns = c.pod_netns("client-lb")
    server_ip = c.pod_ip("server")
    lan, pods = [], []
    for i in range(args.rounds):
        say(f"{c.backend}: iperf3 round {i + 1}/{args.rounds}")
        lan.append(iperf(c.netns("b2"), c.netns("b1"), c.address("b2"), args.seconds))
        pods.append(iperf(server_ns, client_ns, server_ip, args.seconds))
    acceptor = subprocess.Popen(in_netns(server_ns, [sys.executable, "-c", ACCEPT_LOOP]))
    via_service, direct, via_lb = [], [], []
    try:
        def accepting() -> bool:
            try:
                return connection_rate(client_ns, server_ip, 1) > 0
            except RuntimeError:
                return False

        wait_for("the server accepting", accepting, 10)
        batch = max(1, args.connections // args.rounds)
        for i in range(args.rounds):
            say(f"{c.backend}: connections round {i + 1}/{args.rounds}")
            via_service.append(connection_rate(svc_client_ns, cluster_ip, batch))
            direct.append(connection_rate(client_ns, server_ip, batch))
            via_lb.append(connection_rate(lb_client_ns, lb_address, batch, LB_PORT))
    finally:
        acceptor.kill()
        acceptor.wait()
    lan_gbps, pod_gbps = statistics.median(lan), statistics.median(pods)
    svc_rate, direct_rate = statistics.median(via_service), statistics.median(direct)
    lb_rate = statistics.median(via_lb)
    return {"backend": c.backend, "lan_gbps": lan_gbps, "pod_gbps": pod_gbps,
            # each pod run against the LAN run just before it: slow drifts of a shared machine cancel out
            "ratio": statistics.median(p / b for p, b in zip(pods, lan, strict=True)),
            "target": TARGETS[c.backend], "lan_runs": lan, "pod_runs": pods,
            "clusterip_conn_per_s": svc_rate, "podip_conn_per_s": direct_rate,
            "clusterip_runs": via_service, "podip_runs": direct, "clusterip_over_podip": svc_rate / direct_rate,
            "lb_conn_per_s": lb_rate, "lb_runs": via_lb, "lb_over_clusterip": lb_rate / svc_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one iperf3 run")
    parser.add_argument("--rounds", type=int, default=9, help="iperf3 runs per side (median reported)")
    parser.add_argument("--connections", type=int, default=7000, help="connections per target, over all rounds")
    parser.add_argument("--docker-host", default="", help="use this engine instead of a private one")
    parser.add_argument("--backends", default="host-gw,vxlan")
    args = parser.parse_args()
    for tool in ("iperf3", "nsenter", "nft", "ip"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench.network needs {tool}")
    from agent.runtime import localimages as images
    from pikube.dev import engine as engines

    tmp = Path(tempfile.mkdtemp(prefix="pikube-netbench-"))
    engine = engines.connect(args.docker_host) if args.docker_host else engines.start(tmp / "engine")
    client = engine.client()
    results = []
    try:
        images.ensure(client.api)
        dev_images = argparse.Namespace(busybox=images.BUSYBOX_IMAGE, pause=images.PAUSE_IMAGE)
        for backend in args.backends.split(","):
            workdir = tmp / backend
            workdir.mkdir()
            with cluster_up(backend, workdir, engine.host, client, dev_images, BOARDS) as c:
                results.append(measure(c, args))
    finally:
        client.close()
        if engine.started:
            engines.stop(engine)
            engines.remove_files(tmp / "engine")
        shutil.rmtree(tmp, ignore_errors=True)
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"load average before the end: {load}")
    print("| backend | LAN b1→b2 Gbit/s | pod b1→pod b2 Gbit/s | pod ÷ LAN, paired (target) | ClusterIP conn/s | "
          "pod IP conn/s | ClusterIP ÷ pod IP | LoadBalancer conn/s | LB ÷ ClusterIP (target ≥ 0.9) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        verdict = "ok" if r["ratio"] >= r["target"] else "BELOW"
        print(f"| {r['backend']} | {r['lan_gbps']:.1f} | {r['pod_gbps']:.1f} | {r['ratio']:.2f} "
              f"(≥ {r['target']}, {verdict}) | {r['clusterip_conn_per_s']:,.0f} | {r['podip_conn_per_s']:,.0f} | "
              f"{r['clusterip_over_podip']:.2f} | {r['lb_conn_per_s']:,.0f} | {r['lb_over_clusterip']:.2f} |")
    print(json.dumps(results), file=sys.stderr)


if __name__ == "__main__":
    main()
